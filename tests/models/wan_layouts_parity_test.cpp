// Wan 2.1's components loaded from the layouts Wan is published in, made from the fixtures
// (support/wan_layouts.h): the release's folder and .pth files, ComfyUI's repackaged single files.
// Each must give the fixture case's outputs within the manifest tolerance. Files in F32/F16 keep
// the fixtures' values exactly; a BF16 file (as the release's text encoder is, and ComfyUI's
// files can be) is checked against the diffusers-layout model with its weights rounded to BF16
// the same way. Broken files get one LoadError line naming the file and the tensor.
#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "models/clip_vision/clip_vision_model.h"
#include "models/umt5/umt5_encoder.h"
#include "models/wan/wan_transformer.h"
#include "support/test_support.h"
#include "support/torch_checkpoint_writer.h"
#include "support/wan_layouts.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;
using test::NamedTensors;

// Rounds every parameter through `dtype` (what a file in that dtype holds).
void round_weights(torch::nn::Module& module, at::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.copy_(p.to(dtype).to(p.scalar_type()));
}

bool has(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return true;
  return false;
}

NamedTensors without(NamedTensors tensors, const std::string& name) {
  const size_t before = tensors.size();
  std::erase_if(tensors, [&](const auto& t) { return t.first == name; });
  EXPECT_EQ(tensors.size() + 1, before) << name << " is not there to leave out";
  return tensors;
}

// A file's tensors, copied out (the file closes with its reader).
NamedTensors read_all(const std::string& path) {
  NamedTensors out;
  for (auto& [name, t] : io::open_weights(path)->load_all()) out.emplace_back(name, t.clone());
  return out;
}

int64_t fixture_heads(const std::string& case_name) {
  return WanTransformer3DConfig::from_file(test::fixture_case_file(case_name, "config.json")).num_attention_heads;
}

void expect_one_line(const std::string& what) { EXPECT_EQ(what.find('\n'), std::string::npos) << what; }

// ---- the transformer ----

at::Tensor run_transformer(WanTransformer3DModel& dit, const std::string& case_name) {
  const auto io = io::open_weights(test::fixture_case_file(case_name, "io.safetensors"));
  torch::NoGradGuard no_grad;
  const at::Tensor image =
      io->contains("encoder_hidden_states_image") ? io->load("encoder_hidden_states_image", at::kFloat) : at::Tensor();
  return dit->forward(io->load("hidden_states", at::kFloat), io->load("timestep"),
                      io->load("encoder_hidden_states", at::kFloat), image);
}

void expect_transformer_output(WanTransformer3DModel& dit, const std::string& case_name, const std::string& how) {
  const auto io = io::open_weights(test::fixture_case_file(case_name, "io.safetensors"));
  test::expect_close(run_transformer(dit, case_name), io->load("out", at::kFloat),
                     test::fixture_tolerance(case_name, "out"), case_name + " " + how);
}

// The release's folder: config.json (WanModel, no text_dim or patch size) and the weights with
// the original names, one file or sharded with an index.
void check_release_folder(const std::string& case_name, bool sharded) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  const NamedTensors tensors = test::wan_transformer_in_release_layout(case_name, at::kFloat);
  for (const char* name : {"patch_embedding.weight", "head.modulation", "head.head.weight", "blocks.0.modulation",
                           "blocks.0.self_attn.q.weight", "blocks.0.cross_attn.o.bias", "blocks.0.norm3.weight",
                           "blocks.0.ffn.0.weight", "time_projection.1.weight", "text_embedding.2.bias"})
    EXPECT_TRUE(has(tensors, name)) << name;
  test::write_bytes(dir.file("config.json"), test::wan_model_config(case_name).dump(2));
  if (sharded) {
    const size_t half = tensors.size() / 2;
    nlohmann::json map = nlohmann::json::object();
    const std::string first = "diffusion_pytorch_model-00001-of-00002.safetensors",
                      second = "diffusion_pytorch_model-00002-of-00002.safetensors";
    io::save_safetensors(dir.file(first), NamedTensors(tensors.begin(), tensors.begin() + static_cast<long>(half)));
    io::save_safetensors(dir.file(second), NamedTensors(tensors.begin() + static_cast<long>(half), tensors.end()));
    for (size_t i = 0; i < tensors.size(); ++i) map[tensors[i].first] = i < half ? first : second;
    test::write_bytes(dir.file("diffusion_pytorch_model.safetensors.index.json"),
                      nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", map}}.dump());
  } else {
    io::save_safetensors(dir.file("diffusion_pytorch_model.safetensors"), tensors);
  }
  auto dit = load_wan_transformer(dir.path());
  const auto expected = WanTransformer3DConfig::from_file(test::fixture_case_file(case_name, "config.json"));
  EXPECT_EQ(dit->config.num_attention_heads, expected.num_attention_heads);
  EXPECT_EQ(dit->config.text_dim, expected.text_dim);
  EXPECT_EQ(dit->config.is_i2v(), expected.is_i2v());
  expect_transformer_output(dit, case_name, sharded ? "release folder (sharded)" : "release folder");
}

TEST(WanLayoutsParity, TransformerReleaseFolder) { check_release_folder("wan21_transformer", false); }
TEST(WanLayoutsParity, TransformerReleaseFolderSharded) { check_release_folder("wan21_transformer", true); }
TEST(WanLayoutsParity, ImageToVideoTransformerReleaseFolder) { check_release_folder("wan21_i2v_transformer", false); }

// ComfyUI's diffusion_models/wan2.1_*.safetensors: one file, the original names (bare or under
// model.diffusion_model.), every size read off the shapes; the fixture's 12-wide heads are not
// Wan's 128, so the head count comes as an override (as --model-config gives it).
void check_comfyui_transformer(const std::string& case_name) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  const nlohmann::json overrides = {{"num_attention_heads", fixture_heads(case_name)}};
  const std::string f16 = dir.file("wan2.1_fp16.safetensors");
  io::save_safetensors(f16, test::wan_transformer_in_release_layout(case_name, at::kHalf, "model.diffusion_model."));
  auto dit = load_wan_transformer(f16, at::kFloat, overrides);
  expect_transformer_output(dit, case_name, "ComfyUI fp16 file");
  // Without the head count a hidden size that is no multiple of 128 cannot be split: the error
  // says how to give it.
  if (dit->config.inner_dim() % 128 != 0)
    test::expect_contains(test::load_error([&] { load_wan_transformer(f16); }), {f16.c_str(), "num_attention_heads"});

  const std::string bf16 = dir.file("wan2.1_bf16.safetensors");
  io::save_safetensors(bf16, test::wan_transformer_in_release_layout(case_name, at::kBFloat16));
  auto rounded = load_wan_transformer(test::fixture_case_folder(case_name));
  round_weights(*rounded, at::kBFloat16);
  auto from_bf16 = load_wan_transformer(bf16, at::kFloat, overrides);
  test::expect_close(run_transformer(from_bf16, case_name), run_transformer(rounded, case_name),
                     test::fixture_tolerance(case_name, "out"), case_name + " bf16 file");
}

TEST(WanLayoutsParity, TransformerComfyUIFile) { check_comfyui_transformer("wan21_transformer"); }
TEST(WanLayoutsParity, ImageToVideoTransformerComfyUIFile) { check_comfyui_transformer("wan21_i2v_transformer"); }

// ComfyUI-GGUF's Wan files (city96's wan2.1-*-Q8_0.gguf): the original names, bare; the 5-D
// patch embedding stored 4-D with its shape in comfy.gguf.orig_shape. F16 keeps the fixture's
// values (parity as the safetensors file); Q8_0 stays close to it.
TEST(WanLayoutsParity, TransformerComfyUIGgufFile) {
  GENVIS_REQUIRE_FIXTURES();
  const std::string case_name = "wan21_transformer";
  test::TempDir dir;
  const nlohmann::json overrides = {{"num_attention_heads", fixture_heads(case_name)}};
  const std::string st = dir.file("wan.safetensors");
  io::save_safetensors(st, test::wan_transformer_in_release_layout(case_name, at::kHalf));
  auto source = io::open_weights(st);
  const std::string f16 = dir.file("wan2.1-F16.gguf"), q8 = dir.file("wan2.1-Q8_0.gguf");
  io::write_gguf(f16, *source, {.type = io::GgmlType::F16});
  io::write_gguf(q8, *source, {.type = io::GgmlType::Q8_0, .min_elements = 256});
  EXPECT_EQ(io::open_weights(f16)->metadata().count("comfy.gguf.orig_shape.patch_embedding.weight"), 1u);
  auto dit = load_wan_transformer(f16, at::kFloat, overrides);
  expect_transformer_output(dit, case_name, "ComfyUI-GGUF F16 file");
  auto quantised = load_wan_transformer(q8, at::kFloat, overrides);
  const at::Tensor ref = run_transformer(dit, case_name), out = run_transformer(quantised, case_name);
  const double rel = ((out - ref).norm() / ref.norm()).item<double>();
  EXPECT_GT(rel, 0.0);
  EXPECT_LT(rel, 0.02) << "Q8_0 Wan transformer against F16";
}

TEST(WanLayoutsParity, TransformerFilesThatDoNotFit) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  const nlohmann::json overrides = {{"num_attention_heads", fixture_heads("wan21_transformer")}};
  const NamedTensors tensors = test::wan_transformer_in_release_layout("wan21_transformer", at::kHalf);
  // A missing tensor is named as the file would name it.
  const std::string missing = dir.file("missing.safetensors");
  io::save_safetensors(missing, without(tensors, "blocks.0.cross_attn.k.weight"));
  std::string what = test::load_error([&] { load_wan_transformer(missing, at::kFloat, overrides); });
  test::expect_contains(what, {missing.c_str(), "missing 1 [blocks.0.cross_attn.k.weight]"});
  expect_one_line(what);
  // A wrongly-shaped one, with both shapes.
  NamedTensors wrong = tensors;
  std::string shapes;
  for (auto& [name, t] : wrong)
    if (name == "blocks.0.self_attn.o.weight") {
      const auto want = t.sizes().vec();
      t = t.narrow(0, 0, t.size(0) / 2).contiguous();
      shapes = "wrong shape 1 [blocks.0.self_attn.o.weight " + io::shape_string(t.sizes().vec()) + " (expected " +
               io::shape_string(want) + ")]";
    }
  const std::string shaped = dir.file("shape.safetensors");
  io::save_safetensors(shaped, wrong);
  what = test::load_error([&] { load_wan_transformer(shaped, at::kFloat, overrides); });
  test::expect_contains(what, {shaped.c_str(), shapes.c_str()});
  expect_one_line(what);
  // A tensor no rule knows.
  const std::string extra = dir.file("extra.safetensors");
  NamedTensors more = tensors;
  more.emplace_back("blocks.0.self_attn.alpha", at::zeros({1}));
  io::save_safetensors(extra, more);
  test::expect_contains(test::load_error([&] { load_wan_transformer(extra, at::kFloat, overrides); }),
                        {extra.c_str(), "unexpected 1 [blocks.0.self_attn.alpha]"});
  // Not a Wan transformer at all; a diffusers-named file without its folder.
  const std::string other = dir.file("other.safetensors");
  io::save_safetensors(other, {{"conv.weight", at::zeros({1})}});
  what = test::load_error([&] { load_wan_transformer(other); });
  test::expect_contains(what, {other.c_str(), "not a Wan 2.1 transformer", "head.modulation"});
  expect_one_line(what);
  test::expect_contains(test::load_error([&] {
                          load_wan_transformer(test::fixture_case_file("wan21_transformer", "diffusion_pytorch_model.safetensors"));
                        }),
                        {"diffusers-layout", "folder"});
  // A release folder whose config.json contradicts the weights.
  nlohmann::json config = test::wan_model_config("wan21_transformer");
  config["model_type"] = "i2v";
  test::write_bytes(dir.file("config.json"), config.dump());
  io::save_safetensors(dir.file("diffusion_pytorch_model.safetensors"), tensors);
  test::expect_contains(test::load_error([&] { load_wan_transformer(dir.path()); }),
                        {"config.json", "'model_type'", "no image embedding"});
}

// ---- the VAE ----

void expect_vae_outputs(AutoencoderKLWan& vae, const std::string& how, AutoencoderKLWan* reference = nullptr) {
  const auto io = io::open_weights(test::fixture_case_file("wan21_vae", "io.safetensors"));
  const at::Tensor video = io->load("video", at::kFloat), z = io->load("z", at::kFloat);
  torch::NoGradGuard no_grad;
  const auto posterior = vae->encode(video);
  const std::pair<std::string, at::Tensor> outputs[] = {{"latent_mean", posterior.mean},
                                                        {"latent_logvar", posterior.logvar},
                                                        {"decoded_unclamped", vae->decode_unclamped(z)}};
  std::map<std::string, at::Tensor> expected;
  if (reference) {
    const auto p = (*reference)->encode(video);
    expected = {{"latent_mean", p.mean}, {"latent_logvar", p.logvar}, {"decoded_unclamped", (*reference)->decode_unclamped(z)}};
  }
  for (const auto& [name, got] : outputs)
    test::expect_close(got, reference ? expected.at(name) : io->load(name, at::kFloat),
                       test::fixture_tolerance("wan21_vae", name), "wan21_vae " + name + " " + how);
}

TEST(WanLayoutsParity, VAEReleasePthAndComfyUIFile) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  const NamedTensors f32 = test::wan_vae_in_release_layout(at::kFloat);
  for (const char* name : {"encoder.conv1.weight", "conv1.weight", "conv2.bias", "decoder.head.0.gamma",
                           "encoder.middle.1.to_qkv.weight", "decoder.upsamples.0.residual.0.gamma",
                           "encoder.downsamples.0.residual.2.weight"})
    EXPECT_TRUE(has(f32, name)) << name;
  test::save_torch_checkpoint(dir.file("Wan2.1_VAE.pth"), f32);
  auto vae = load_autoencoder_kl_wan(dir.file("Wan2.1_VAE.pth"));
  const auto expected = AutoencoderKLWanConfig::from_file(test::fixture_case_file("wan21_vae", "config.json"));
  EXPECT_EQ(vae->config.dim_mult, expected.dim_mult);
  EXPECT_EQ(vae->config.num_res_blocks, expected.num_res_blocks);
  EXPECT_EQ(vae->config.temperal_downsample, expected.temperal_downsample);
  expect_vae_outputs(vae, "release .pth");

  io::save_safetensors(dir.file("wan_2.1_vae.safetensors"), test::wan_vae_in_release_layout(at::kBFloat16));
  auto comfy = load_autoencoder_kl_wan(dir.file("wan_2.1_vae.safetensors"));
  auto rounded = load_autoencoder_kl_wan(test::fixture_case_folder("wan21_vae"));
  round_weights(*rounded, at::kBFloat16);
  expect_vae_outputs(comfy, "ComfyUI bf16 file", &rounded);

  // Broken files: a missing tensor, a wrong shape, another model.
  // The decoder's first upsampler, wherever the flat list puts it.
  std::string upsampler;
  for (const auto& [name, t] : f32)
    if (upsampler.empty() && name.starts_with("decoder.upsamples.") && name.ends_with(".resample.1.weight")) upsampler = name;
  test::save_torch_checkpoint(dir.file("missing.pth"), without(f32, upsampler));
  std::string what = test::load_error([&] { load_autoencoder_kl_wan(dir.file("missing.pth")); });
  test::expect_contains(what, {"missing.pth", ("missing 1 [" + upsampler + "]").c_str()});
  expect_one_line(what);
  NamedTensors wrong = f32;
  for (auto& [name, t] : wrong)
    if (name == "decoder.middle.1.proj.weight") t = at::cat({t, t}, 1);
  test::save_torch_checkpoint(dir.file("shape.pth"), wrong);
  test::expect_contains(test::load_error([&] { load_autoencoder_kl_wan(dir.file("shape.pth")); }),
                        {"shape.pth", "wrong shape 1 [decoder.middle.1.proj.weight"});
  test::expect_contains(
      test::load_error([&] { load_autoencoder_kl_wan(test::fixture_case_file("wan21_transformer", "diffusion_pytorch_model.safetensors")); }),
      {"not a Wan 2.1 VAE", "encoder.conv1.weight"});
}

// ---- the text encoder ----

UMT5EncoderOutput run_umt5(UMT5EncoderModel& te) {
  const auto io = io::open_weights(test::fixture_case_file("umt5_encoder", "io.safetensors"));
  torch::NoGradGuard no_grad;
  return te(io->load("input_ids"), io->load("attention_mask"));
}

TEST(WanLayoutsParity, UMT5ReleasePthAndComfyUIFile) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  const auto io = io::open_weights(test::fixture_case_file("umt5_encoder", "io.safetensors"));
  const auto tol = test::fixture_tolerance("umt5_encoder");
  // ComfyUI's umt5_xxl_fp16.safetensors: transformers' names, no config.
  const std::string comfy = dir.file("umt5_xxl_fp16.safetensors");
  io::save_safetensors(comfy, read_all(test::fixture_case_file("umt5_encoder", "model.safetensors")));
  auto te = load_umt5_encoder(comfy);
  test::expect_close(run_umt5(te).last_hidden_state, io->load("last_hidden_state", at::kFloat), tol, "umt5 ComfyUI file");

  // The release's models_t5_umt5-xxl-enc-bf16.pth: original names, bf16.
  const NamedTensors bf16 = test::umt5_in_release_layout(at::kBFloat16);
  for (const char* name : {"token_embedding.weight", "norm.weight", "blocks.0.attn.q.weight", "blocks.0.ffn.gate.0.weight",
                           "blocks.0.ffn.fc1.weight", "blocks.0.pos_embedding.embedding.weight"})
    EXPECT_TRUE(has(bf16, name)) << name;
  test::save_torch_checkpoint(dir.file("models_t5_umt5-xxl-enc-bf16.pth"), bf16);
  auto release = load_umt5_encoder(dir.file("models_t5_umt5-xxl-enc-bf16.pth"));
  auto rounded = load_umt5_encoder(test::fixture_case_folder("umt5_encoder"));
  round_weights(*rounded, at::kBFloat16);
  const auto got = run_umt5(release), want = run_umt5(rounded);
  ASSERT_EQ(got.hidden_states.size(), want.hidden_states.size());
  for (size_t i = 0; i < got.hidden_states.size(); ++i)
    test::expect_close(got.hidden_states[i], want.hidden_states[i], tol, "umt5 release bf16 hidden_states[" + std::to_string(i) + "]");
  // The same file in f32 gives the fixture's numbers.
  test::save_torch_checkpoint(dir.file("t5_f32.pth"), test::umt5_in_release_layout(at::kFloat));
  auto exact = load_umt5_encoder(dir.file("t5_f32.pth"));
  test::expect_close(run_umt5(exact).last_hidden_state, io->load("last_hidden_state", at::kFloat), tol, "umt5 release f32");

  test::save_torch_checkpoint(dir.file("missing.pth"), without(bf16, "blocks.0.ffn.fc2.weight"));
  const std::string what = test::load_error([&] { load_umt5_encoder(dir.file("missing.pth")); });
  test::expect_contains(what, {"missing.pth", "missing 1 [blocks.0.ffn.fc2.weight]"});
  expect_one_line(what);
  test::expect_contains(test::load_error([&] { load_umt5_encoder(test::fixture_case_file("wan21_vae", "diffusion_pytorch_model.safetensors")); }),
                        {"not a UMT5 text encoder"});
}

// ---- the image encoder ----

void expect_clip_outputs(CLIPVisionModel& vision, const std::string& how) {
  const auto io = io::open_weights(test::fixture_case_file("clip_vision", "io.safetensors"));
  torch::NoGradGuard no_grad;
  const auto out = vision->forward(io->load("pixel_values", at::kFloat));
  const auto tol = test::fixture_tolerance("clip_vision");
  test::expect_close(out.hidden_states[out.hidden_states.size() - 2], io->load("penultimate_hidden_state", at::kFloat),
                     tol, "clip penultimate " + how);
  test::expect_close(out.pooler_output, io->load("pooler_output", at::kFloat), tol, "clip pooler " + how);
}

TEST(WanLayoutsParity, CLIPVisionReleasePthAndComfyUIFile) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  const int64_t heads = CLIPVisionConfig::from_file(test::fixture_case_file("clip_vision", "config.json")).num_attention_heads;
  const nlohmann::json overrides = {{"num_attention_heads", heads}};  // ViT-H's are 80 wide; the fixture's are not
  // The release's .pth (fp16): open-clip names, fused q/k/v, and a text tower that is skipped.
  const NamedTensors f16 = test::clip_vision_in_release_layout(at::kHalf);
  for (const char* name : {"visual.cls_embedding", "visual.pos_embedding", "visual.transformer.0.attn.to_qkv.weight",
                           "visual.transformer.0.mlp.2.bias", "visual.post_norm.weight", "textual.token_embedding.weight"})
    EXPECT_TRUE(has(f16, name)) << name;
  const std::string pth = dir.file("models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth");
  test::save_torch_checkpoint(pth, f16);
  auto vision = load_clip_vision_model(pth, at::kFloat, overrides);
  expect_clip_outputs(vision, "release .pth");
  // ComfyUI's clip_vision_h.safetensors: transformers' names and the projection (skipped).
  NamedTensors hf = read_all(test::fixture_case_file("clip_vision", "model.safetensors"));
  hf.emplace_back("visual_projection.weight", at::zeros({8, vision->vision_model->config.hidden_size}).to(at::kHalf));
  io::save_safetensors(dir.file("clip_vision_h.safetensors"), hf);
  auto comfy = load_clip_vision_model(dir.file("clip_vision_h.safetensors"), at::kFloat, overrides);
  expect_clip_outputs(comfy, "ComfyUI file");

  NamedTensors broken = f16;
  for (auto& [name, t] : broken)
    if (name == "visual.transformer.0.attn.to_qkv.bias") t = t.narrow(0, 0, t.size(0) - 1).contiguous();
  test::save_torch_checkpoint(dir.file("broken.pth"), broken);
  const std::string what = test::load_error([&] { load_clip_vision_model(dir.file("broken.pth"), at::kFloat, overrides); });
  test::expect_contains(what, {"broken.pth", "visual.transformer.0.attn.to_qkv.bias", "3 parts"});
  expect_one_line(what);
}

}  // namespace
}  // namespace genvis::models
