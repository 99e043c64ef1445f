// Wan 2.1 text-to-video (fixture "e2e_wan_t2v") from the layouts Wan is published in, made of
// the fixture components (support/wan_layouts.h): the release's folder (config.json "WanModel",
// original-named safetensors, .pth text encoder and VAE, google/umt5-xxl/) and ComfyUI's single
// files assembled with --vae/--text-encoder/--tokenizer. Each gives diffusers' video from the
// recorded initial latents, through the registry and through the binary; `genvis info` names
// every layout. Weights are written in F32/F16, which keep the fixtures' values exactly (BF16
// files are covered by tests/models/wan_layouts_parity_test.cpp).
#include "core/error.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/wan/wan_transformer.h"
#include "pipelines/registry.h"
#include "support/test_support.h"
#include "support/wan_layouts.h"

#include <filesystem>
#include <nlohmann/json.hpp>

namespace genvis::pipelines {
namespace {

namespace fs = std::filesystem;

struct T2VCase {
  nlohmann::json c = test::fixture_case("e2e_wan_t2v"), cfg = c.at("config");
  std::shared_ptr<io::WeightReader> ref = io::open_weights(test::fixtures_dir() + "/" + c.at("files")[0].get<std::string>());
  test::Tolerance video_tolerance() const {
    const auto& t = c.at("tolerance").at("video");
    return {t.at("max_abs").get<double>(), t.at("rel_l2").get<double>()};
  }
  // The case's request; the flow shift is the case's scheduler's (the release's default is Wan's 5).
  Request request(bool with_shift = true) const {
    Request r;
    r.prompt = cfg.at("prompt"), r.negative_prompt = cfg.at("negative_prompt");
    r.steps = cfg.at("num_inference_steps").get<int64_t>();
    r.guidance = cfg.at("guidance_scale").get<double>();
    r.num_frames = cfg.at("num_frames").get<int64_t>();
    r.width = cfg.at("width").get<int64_t>(), r.height = cfg.at("height").get<int64_t>();
    r.extras = {{"max_sequence_length", cfg.at("max_sequence_length")}};
    if (with_shift) r.extras["flow_shift"] = cfg.at("scheduler").at("flow_shift");
    r.init_noise = ref->load("init_latents", at::kFloat);
    return r;
  }
  // The CLI arguments of request() after --model ... .
  std::string cli_args(const test::TempDir& dir) const {
    const auto q = test::shell_quote;
    io::save_safetensors(dir.file("noise.safetensors"), {{"latents", ref->load("init_latents", at::kFloat)}});
    const nlohmann::json extras = {{"max_sequence_length", cfg.at("max_sequence_length")},
                                   {"flow_shift", cfg.at("scheduler").at("flow_shift")}};
    return " -p " + q(cfg.at("prompt")) + " -n " + q(cfg.at("negative_prompt")) + " --steps " +
           std::to_string(cfg.at("num_inference_steps").get<int64_t>()) + " --cfg-scale " +
           cfg.at("guidance_scale").dump() + " --frames " + std::to_string(cfg.at("num_frames").get<int64_t>()) +
           " --width " + std::to_string(cfg.at("width").get<int64_t>()) + " --height " +
           std::to_string(cfg.at("height").get<int64_t>()) + " --extras " + q(extras.dump()) + " --init-noise " +
           q(dir.file("noise.safetensors")) + " --dump " + q(dir.file("dump.safetensors")) + " -o " +
           q(dir.file("out.webp"));
  }
};

// ComfyUI's four files in `dir`: the transformer under model.diffusion_model., the VAE with the
// original names, UMT5 with transformers' names (all fp16), and --model-config's head count.
struct ComfyUIFiles {
  std::string transformer, vae, text_encoder, tokenizer, model_config;
};
ComfyUIFiles write_comfyui_files(const test::TempDir& dir, const std::string& transformer_case = "wan21_transformer") {
  ComfyUIFiles f{dir.file(transformer_case + "_fp16.safetensors"), dir.file("wan_2.1_vae.safetensors"),
                 dir.file("umt5_xxl_fp16.safetensors"),
                 fs::path(test::fixture_case_file("umt5_tokenizer", "spiece.model")).parent_path().string(), ""};
  io::save_safetensors(f.transformer,
                       test::wan_transformer_in_release_layout(transformer_case, at::kHalf, "model.diffusion_model."));
  io::save_safetensors(f.vae, test::wan_vae_in_release_layout(at::kHalf));
  test::NamedTensors umt5;
  for (auto& [name, t] : io::open_weights(test::fixture_case_file("umt5_encoder", "model.safetensors"))->load_all())
    umt5.emplace_back(name, t.clone());
  io::save_safetensors(f.text_encoder, umt5);
  const int64_t heads =
      models::WanTransformer3DConfig::from_file(test::fixture_case_file(transformer_case, "config.json"))
          .num_attention_heads;
  f.model_config = nlohmann::json{{"transformer", {{"num_attention_heads", heads}}}}.dump();
  return f;
}

TEST(WanLayoutsPipelineParity, ReleaseFolderThroughTheRegistry) {
  GENVIS_REQUIRE_FIXTURES();
  const T2VCase w;
  test::TempDir dir;
  const std::string root = test::write_wan_release_folder(dir.path(), "wan21_transformer");
  EXPECT_EQ(pipeline_class_of({.model = root}), "WanPipeline");
  auto pipeline = load_pipeline({.model = root});
  EXPECT_EQ(pipeline->info().class_name, "WanPipeline");
  EXPECT_EQ(pipeline->info().defaults.steps, 50);
  const Result out = pipeline->generate(w.request());
  ASSERT_TRUE(out.is_video());
  test::expect_close(out.samples, w.ref->load("video", at::kFloat), w.video_tolerance(), "release folder video");
  // Without a flow shift the release's default is Wan's generate.py's for text-to-video: 5.
  Request shift5 = w.request(false);
  const at::Tensor by_default = pipeline->generate(shift5).samples;
  shift5.extras["flow_shift"] = 5.0;
  EXPECT_TRUE(at::equal(by_default, pipeline->generate(shift5).samples));
  shift5.extras["flow_shift"] = 3.0;
  EXPECT_FALSE(at::equal(by_default, pipeline->generate(shift5).samples));
}

// Image-to-video (fixture "e2e_wan_i2v") from the release's I2V folder (its CLIP .pth with the
// fused q/k/v and a text tower beside the vision tower). No flow shift is given: at this size the
// release's default is generate.py's 3 for image-to-video at 480p and below, the case's.
TEST(WanLayoutsPipelineParity, ImageToVideoReleaseFolderThroughTheRegistry) {
  GENVIS_REQUIRE_FIXTURES();
  const nlohmann::json c = test::fixture_case("e2e_wan_i2v"), cfg = c.at("config");
  ASSERT_EQ(cfg.at("scheduler").at("flow_shift").get<double>(), 3.0);
  ASSERT_LE(cfg.at("width").get<int64_t>() * cfg.at("height").get<int64_t>(), 832 * 480);
  const auto ref = io::open_weights(test::fixtures_dir() + "/" + c.at("files")[0].get<std::string>());
  test::TempDir dir;
  const std::string root = test::write_wan_release_folder(dir.path(), "wan21_i2v_transformer");
  ModelSource s{.model = root};
  // The fixture's image encoder's heads are not ViT-H's 80 wide: its head count, as --model-config gives it.
  s.model_config = nlohmann::json{{"image_encoder",
                                   {{"num_attention_heads", nlohmann::json::parse(test::read_bytes(
                                                                test::fixture_case_file("clip_vision", "config.json")))
                                                                .at("num_attention_heads")}}}}
                       .dump();
  EXPECT_EQ(pipeline_class_of(s), "WanImageToVideoPipeline");
  auto pipeline = load_pipeline(s);
  EXPECT_EQ(pipeline->info().class_name, "WanImageToVideoPipeline");
  EXPECT_EQ(pipeline->info().defaults.steps, 40);  // generate.py's for image-to-video
  Request r;
  r.prompt = cfg.at("prompt"), r.negative_prompt = cfg.at("negative_prompt");
  r.steps = cfg.at("num_inference_steps").get<int64_t>();
  r.guidance = cfg.at("guidance_scale").get<double>();
  r.num_frames = cfg.at("num_frames").get<int64_t>();
  r.width = cfg.at("width").get<int64_t>(), r.height = cfg.at("height").get<int64_t>();
  r.extras = {{"max_sequence_length", cfg.at("max_sequence_length")}};
  r.init_image = ref->load("image", at::kFloat) * 2 - 1;
  r.init_noise = ref->load("init_latents", at::kFloat);
  const auto& t = c.at("tolerance").at("video");
  const test::Tolerance tolerance{t.at("max_abs").get<double>(), t.at("rel_l2").get<double>()};
  test::expect_close(pipeline->generate(r).samples, ref->load("video", at::kFloat), tolerance, "release I2V folder video");

  // ComfyUI's I2V files: the transformer needs --image-encoder too (clip_vision_h: transformers' names).
  const ComfyUIFiles f = write_comfyui_files(dir, "wan21_i2v_transformer");
  ModelSource comfy{.model = f.transformer, .vae = f.vae, .text_encoder = f.text_encoder, .vocab = f.tokenizer};
  try {
    load_pipeline(comfy);
    ADD_FAILURE() << "loaded an I2V transformer without an image encoder";
  } catch (const UsageError& e) {
    test::expect_contains(e.what(), {"--image-encoder", "clip_vision_h.safetensors"});
  }
  test::NamedTensors clip;
  for (auto& [name, tensor] : io::open_weights(test::fixture_case_file("clip_vision", "model.safetensors"))->load_all())
    clip.emplace_back(name, tensor.clone());
  io::save_safetensors(dir.file("clip_vision_h.safetensors"), clip);
  comfy.image_encoder = dir.file("clip_vision_h.safetensors");
  nlohmann::json config = nlohmann::json::parse(f.model_config);
  config.update(nlohmann::json::parse(s.model_config));
  comfy.model_config = config.dump();
  EXPECT_EQ(pipeline_class_of(comfy), "WanImageToVideoPipeline");
  test::expect_close(load_pipeline(comfy)->generate(r).samples, ref->load("video", at::kFloat), tolerance,
                     "ComfyUI I2V files video");
}

TEST(WanLayoutsPipelineParity, ComfyUIFilesThroughTheRegistry) {
  GENVIS_REQUIRE_FIXTURES();
  const T2VCase w;
  test::TempDir dir;
  const ComfyUIFiles f = write_comfyui_files(dir);
  ModelSource s{.model = f.transformer, .vae = f.vae, .text_encoder = f.text_encoder, .vocab = f.tokenizer};
  s.model_config = f.model_config;
  EXPECT_EQ(pipeline_class_of(s), "WanPipeline");
  auto pipeline = load_pipeline(s);
  const Result out = pipeline->generate(w.request());
  test::expect_close(out.samples, w.ref->load("video", at::kFloat), w.video_tolerance(), "ComfyUI files video");

  // ComfyUI ships no tokenizer: the error says which option and where to get one.
  ModelSource no_tokenizer = s;
  no_tokenizer.vocab.clear();
  try {
    load_pipeline(no_tokenizer);
    ADD_FAILURE() << "loaded without a tokenizer";
  } catch (const UsageError& e) {
    test::expect_contains(e.what(), {"--tokenizer", "google/umt5-xxl", "ComfyUI ships none"});
  }
  ModelSource no_vae = s;
  no_vae.vae.clear();
  try {
    load_pipeline(no_vae);
    ADD_FAILURE() << "loaded without a VAE";
  } catch (const UsageError& e) {
    test::expect_contains(e.what(), {"--vae", "wan_2.1_vae.safetensors"});
  }
  // The transformer alone: every missing option in one error.
  try {
    load_pipeline({.model = f.transformer});
    ADD_FAILURE() << "loaded the transformer file alone";
  } catch (const UsageError& e) {
    test::expect_contains(e.what(), {"--vae", "--text-encoder", "umt5_xxl_fp16.safetensors", "--tokenizer"});
    EXPECT_EQ(std::string(e.what()).find("--image-encoder"), std::string::npos) << "a text-to-video model";
  }
  // A text-to-video model takes no image encoder.
  ModelSource image = s;
  image.image_encoder = f.vae;
  EXPECT_THROW(load_pipeline(image), UsageError);
}

TEST(WanLayoutsPipelineParity, ThroughTheBinary) {
  GENVIS_REQUIRE_FIXTURES();
  if (!fs::exists(GENVIS_CLI)) GTEST_SKIP() << "the genvis binary is not built";
  const T2VCase w;
  test::TempDir dir;
  const auto q = test::shell_quote;
  const std::string root = test::write_wan_release_folder(dir.path(), "wan21_transformer");
  auto r = test::run_command(std::string(GENVIS_CLI) + " generate --model " + q(root) + w.cli_args(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  test::expect_close(io::open_weights(dir.file("dump.safetensors"))->load("image", at::kFloat),
                     w.ref->load("video", at::kFloat), w.video_tolerance(), "binary, release folder");

  const ComfyUIFiles f = write_comfyui_files(dir);
  const std::string comfy = " generate --model " + q(f.transformer) + " --vae " + q(f.vae) + " --text-encoder " +
                            q(f.text_encoder) + " --model-config " + q(f.model_config);
  r = test::run_command(std::string(GENVIS_CLI) + comfy + " --tokenizer " + q(f.tokenizer) + w.cli_args(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  test::expect_close(io::open_weights(dir.file("dump.safetensors"))->load("image", at::kFloat),
                     w.ref->load("video", at::kFloat), w.video_tolerance(), "binary, ComfyUI files");
  // Without --tokenizer: exit 2 and one line naming the option.
  r = test::run_command(std::string(GENVIS_CLI) + comfy + w.cli_args(dir));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--tokenizer"), std::string::npos) << r.err;

  // genvis info names the folder and every file's layout.
  r = test::run_command(std::string(GENVIS_CLI) + " info --json " + q(root));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json folder = nlohmann::json::parse(r.out);
  EXPECT_EQ(folder.at("kind"), "wan-original-folder");
  EXPECT_EQ(folder.at("pipeline"), "WanPipeline");
  std::map<std::string, std::string> layouts;
  for (const auto& file : folder.at("files"))
    layouts[fs::path(file.at("path").get<std::string>()).filename().string()] = file.at("layout");
  EXPECT_EQ(layouts["diffusion_pytorch_model.safetensors"], "wan-original-transformer");
  EXPECT_EQ(layouts["models_t5_umt5-xxl-enc-bf16.pth"], "wan-original-umt5");
  EXPECT_EQ(layouts["Wan2.1_VAE.pth"], "wan-original-vae");
  const std::pair<std::string, const char*> files[] = {
      {f.transformer, "comfyui-wan-transformer"}, {f.vae, "comfyui-wan-vae"}, {f.text_encoder, "transformers-umt5"}};
  for (const auto& [file, layout] : files) {
    r = test::run_command(std::string(GENVIS_CLI) + " info --json " + q(file));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("layout"), layout) << file;
    EXPECT_EQ(j.at("family"), "wan2.1") << file;
  }
}

}  // namespace
}  // namespace genvis::pipelines
