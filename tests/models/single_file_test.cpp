// Single-file checkpoints: configs read off the tensors and every component loaded from one file.
// SD1 uses the fixture file written by diffusers' converter; SD2 and SDXL files are built here from
// the fixture components (UNet/VAE through the inverse LDM key tables, text encoders in the
// family's layout), since the fixtures hold none. Loaded components must reproduce the component
// fixtures' io files within the manifest tolerances.
#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/autoencoder_kl/ldm_keys.h"
#include "models/clip_text/clip_text_loader.h"
#include "models/detect.h"
#include "models/single_file/ldm_export_keys.h"
#include "models/single_file/single_file.h"
#include "models/unet2d_condition/ldm_keys.h"
#include "support/test_support.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <torch/torch.h>

namespace genvis::models {
namespace {

using json = nlohmann::json;

std::string fixture(const std::string& relative) { return test::fixtures_dir() + "/" + relative; }
std::string sd1_file() { return fixture("single_file/sd1_tiny_ldm.safetensors"); }
json read_json(const std::string& path) { return json::parse(read_text_file(path, 1 << 20)); }

// --- comparing configs ------------------------------------------------------------------------

// Equal, or an int against a list of that int (per-block fields may be written either way).
bool same_value(const json& a, const json& b) {
  if (a == b) return true;
  const auto all_are = [](const json& list, const json& v) {
    return list.is_array() && !list.empty() && std::all_of(list.begin(), list.end(), [&](const json& x) { return x == v; });
  };
  return (!b.is_array() && all_are(a, b)) || (!a.is_array() && all_are(b, a));
}

// Every key of the fixture's config.json, except those that do not change the model.
void expect_config_matches(const json& inferred, const json& expected, const std::string& what) {
  static const std::set<std::string> kIgnored = {"_diffusers_version", "sample_size"};
  for (const auto& item : expected.items()) {
    if (kIgnored.count(item.key())) continue;
    ASSERT_TRUE(inferred.contains(item.key())) << what << " lacks " << item.key();
    EXPECT_TRUE(same_value(inferred.at(item.key()), item.value()))
        << what << "." << item.key() << ": inferred " << inferred.at(item.key()).dump() << ", fixture " << item.value().dump();
  }
}

bool has_assumption(const SingleFileConfigs& c, const std::string& key) {
  return std::any_of(c.assumptions.begin(), c.assumptions.end(),
                     [&](const std::string& a) { return a.rfind(key + " = ", 0) == 0; });
}

// --- parity against the component fixtures ------------------------------------------------------

using test::expect_close;
using test::Tolerance;
Tolerance case_tolerance(const std::string& name) { return test::fixture_tolerance(name); }

std::unique_ptr<io::WeightReader> open_io(const std::string& case_name) {
  return io::open_weights(fixture(case_name + "/io.safetensors"));
}

void check_unet(UNet2DConditionModel& unet, const std::string& case_name) {
  torch::NoGradGuard no_grad;
  auto io = open_io(case_name);
  std::optional<UNetAddedConditions> added;
  if (io->contains("text_embeds"))
    added = UNetAddedConditions{io->load("text_embeds", at::kFloat), io->load("time_ids", at::kFloat)};
  const at::Tensor out = unet->forward(io->load("sample", at::kFloat), io->load("timestep", at::kFloat),
                                       io->load("encoder_hidden_states", at::kFloat), added);
  expect_close(out, io->load("out", at::kFloat), case_tolerance(case_name), case_name + " out");
}

void check_vae(AutoencoderKL& vae) {
  torch::NoGradGuard no_grad;
  auto io = open_io("vae");
  const Tolerance tol = case_tolerance("vae");
  const auto posterior = vae->encode(io->load("image", at::kFloat));
  expect_close(posterior.mean, io->load("latent_mean", at::kFloat), tol, "vae latent_mean");
  expect_close(posterior.logvar, io->load("latent_logvar", at::kFloat), tol, "vae latent_logvar");
  expect_close(vae->decode(io->load("z", at::kFloat)), io->load("decoded", at::kFloat), tol, "vae decoded");
  expect_close(vae->decode(posterior.mean), io->load("reconstruction", at::kFloat), tol, "vae reconstruction");
}

void check_clip(const CLIPTextOutput& out, const std::string& case_name) {
  auto io = open_io(case_name);
  const Tolerance tol = case_tolerance(case_name);
  expect_close(out.last_hidden_state, io->load("last_hidden_state", at::kFloat), tol, case_name + " last_hidden_state");
  expect_close(out.pooler_output, io->load("pooler_output", at::kFloat), tol, case_name + " pooler_output");
  expect_close(torch::stack(out.hidden_states), io->load("hidden_states", at::kFloat), tol, case_name + " hidden_states");
  if (io->contains("text_embeds")) {
    ASSERT_TRUE(out.text_embeds.defined()) << case_name;
    expect_close(out.text_embeds, io->load("text_embeds", at::kFloat), tol, case_name + " text_embeds");
  }
}

at::Tensor input_ids(const std::string& case_name) { return open_io(case_name)->load("input_ids"); }

// --- building original-layout checkpoints from the fixture components ----------------------------

using Named = std::vector<std::pair<std::string, at::Tensor>>;

void add_unet(Named& file, const UNet2DConditionConfig& config, const Named& diffusers) {
  for (const auto& [name, t] : diffusers) file.emplace_back(kLdmUNetPrefix + unet_key_to_ldm(name, config), t);
}
void add_unet(Named& file, const std::string& folder) {
  add_unet(file, UNet2DConditionConfig::from_file(fixture(folder + "/config.json")),
           io::open_weights(fixture(folder + "/diffusion_pytorch_model.safetensors"))->load_all());
}
void add_vae(Named& file) {
  const auto config = AutoencoderKLConfig::from_file(fixture("vae/config.json"));
  for (auto& [name, t] : io::open_weights(fixture("vae/diffusion_pytorch_model.safetensors"))->load_all()) {
    const std::string ldm = autoencoder_kl_key_to_ldm(name, config);
    file.emplace_back(kLdmVAEPrefix + ldm, ldm_vae_weight_is_conv(ldm) ? t.reshape({t.size(0), t.size(1), 1, 1}) : t);
  }
}
void add_clip(Named& file, const std::string& folder, const std::string& prefix, CLIPTextLayout layout) {
  Named hf = io::open_weights(fixture(folder + "/model.safetensors"))->load_all();
  if (layout == CLIPTextLayout::OpenCLIP) {
    hf = transformers_to_open_clip(hf);
    hf.emplace_back("logit_scale", torch::tensor(4.6f));  // present in real OpenCLIP files, ignored
  } else {
    hf.emplace_back("text_model.embeddings.position_ids", torch::arange(77, torch::kLong).unsqueeze(0));
  }
  for (auto& [name, t] : hf) file.emplace_back(prefix + name, t);
}

std::vector<io::TensorInfo> infos(const Named& file) {
  std::vector<io::TensorInfo> out;
  for (const auto& [name, t] : file) {
    io::TensorInfo info;
    info.name = name;
    info.dtype = io::from_scalar_type(t.scalar_type());
    info.shape = t.sizes().vec();
    out.push_back(info);
  }
  return out;
}

// SD2: OpenCLIP text encoder under cond_stage_model.model. (clip_g's 3 blocks; the model uses 2).
Named sd2_file() {
  Named file;
  add_unet(file, "unet_sd2");
  add_vae(file);
  add_clip(file, "clip_g", kSD2TextPrefix, CLIPTextLayout::OpenCLIP);
  file.emplace_back("alphas_cumprod", torch::ones({1000}));  // diffusion schedule buffers: not a component
  return file;
}

// SDXL: CLIP-L (transformers names) and bigG (OpenCLIP names) under conditioner.embedders.N.
Named sdxl_file() {
  Named file;
  add_unet(file, "unet_sdxl");
  add_vae(file);
  add_clip(file, "clip_l", kSDXLTextPrefix, CLIPTextLayout::Transformers);
  add_clip(file, "clip_g", kSDXLText2Prefix, CLIPTextLayout::OpenCLIP);
  return file;
}

// The tiny fixtures have 16-channel CLIP heads and 8- or 16-channel UNet heads, not the released 64.
const json kTinyClipHeads = {{"num_attention_heads", 2}};
const json kTinyHeadsSD2 = {{"unet", {{"attention_head_dim", {2, 4}}}}, {"text_encoder", kTinyClipHeads}};
const json kTinyHeadsSDXL = {
    {"unet", {{"attention_head_dim", {2, 4}}}}, {"text_encoder", kTinyClipHeads}, {"text_encoder_2", kTinyClipHeads}};

// --- inverse key tables -------------------------------------------------------------------------

// The inverse tables reproduce the names diffusers' own converter wrote, and invert the forward tables.
TEST(LdmExportKeys, MatchTheConverterAndRoundTrip) {
  GENVIS_REQUIRE_FIXTURES();
  auto ldm = io::open_weights(sd1_file());
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& t : ldm->tensors())
    if (t.name.rfind(kLdmUNetPrefix, 0) == 0 || t.name.rfind(kLdmVAEPrefix, 0) == 0) expected[t.name] = t.shape;
  Named built;
  add_unet(built, "unet_sd1");
  add_vae(built);
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& [name, t] : built) got[name] = t.sizes().vec();
  EXPECT_EQ(got, expected);

  for (const std::string folder : {"unet_sd1", "unet_sd2", "unet_sdxl"}) {
    const auto config = UNet2DConditionConfig::from_file(fixture(folder + "/config.json"));
    auto weights = io::open_weights(fixture(folder + "/diffusion_pytorch_model.safetensors"));
    for (const auto& t : weights->tensors())
      EXPECT_EQ(unet_key_from_ldm(unet_key_to_ldm(t.name, config), config), t.name) << folder;
  }
  const auto vae_config = AutoencoderKLConfig::from_file(fixture("vae/config.json"));
  auto vae_weights = io::open_weights(fixture("vae/diffusion_pytorch_model.safetensors"));
  for (const auto& t : vae_weights->tensors())
    EXPECT_EQ(autoencoder_kl_key_from_ldm(autoencoder_kl_key_to_ldm(t.name, vae_config), vae_config), t.name);
  EXPECT_THROW(unet_key_to_ldm("down_blocks.0.resnets.0.unknown.weight", UNet2DConditionConfig{}), LoadError);
}

// --- SD1: the fixture single file -----------------------------------------------------------------

TEST(SingleFile, SD1ConfigsMatchTheFixtureComponents) {
  GENVIS_REQUIRE_FIXTURES();
  const auto tensors = io::open_weights(sd1_file())->tensors();
  const SingleFileConfigs c = infer_single_file_configs(tensors, {{"text_encoder", kTinyClipHeads}});
  EXPECT_EQ(c.family, "sd1");
  EXPECT_TRUE(c.text_encoder_2.is_null());
  expect_config_matches(c.unet, read_json(fixture("unet_sd1/config.json")), "unet");
  expect_config_matches(c.vae, read_json(fixture("vae/config.json")), "vae");
  expect_config_matches(c.text_encoder, read_json(fixture("clip_l/config.json")), "text_encoder");
  EXPECT_EQ(c.unet.at("attention_head_dim"), 8);  // the SD1 default, which the tiny UNet keeps
  EXPECT_EQ(c.unet.at("sample_size"), 64);

  // What the shapes cannot tell is listed, except where an override gave it.
  for (const char* key : {"unet.attention_head_dim", "unet.sample_size", "vae.scaling_factor", "text_encoder.hidden_act"})
    EXPECT_TRUE(has_assumption(c, key)) << key;
  EXPECT_FALSE(has_assumption(c, "text_encoder.num_attention_heads"));
  for (const auto& a : c.assumptions) std::cout << "[assumed] " << a << "\n";

  // Without the override: hidden_size / 64 does not divide 16, so one head, and it says so.
  const SingleFileConfigs plain = infer_single_file_configs(tensors);
  EXPECT_EQ(plain.text_encoder.at("num_attention_heads"), 1);
  EXPECT_TRUE(has_assumption(plain, "text_encoder.num_attention_heads"));
}

TEST(SingleFile, SD1LoadReproducesTheComponentFixtures) {
  GENVIS_REQUIRE_FIXTURES();
  SingleFileModel m = load_single_file(sd1_file(), {{"text_encoder", kTinyClipHeads}}, at::kFloat, at::Device(at::kCPU));
  EXPECT_EQ(m.family, "sd1");
  EXPECT_TRUE(m.text_encoder_2.is_empty());
  EXPECT_FALSE(m.unet->is_training());
  EXPECT_FALSE(m.vae->is_training());
  EXPECT_FALSE(m.text_encoder->is_training());
  check_unet(m.unet, "unet_sd1");
  check_vae(m.vae);
  torch::NoGradGuard no_grad;
  check_clip(m.text_encoder(input_ids("clip_l")), "clip_l");
}

// stable-diffusion.cpp's GGUF checkpoints keep the original key names: the fixture written as an
// F16 GGUF loads to the same models (bit for bit: the weights are F16 values), and as Q8_0 to a
// UNet whose output stays close to the F16 one.
TEST(SingleFile, SD1FromGgufReproducesTheComponentFixtures) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  auto source = io::open_weights(sd1_file());
  const std::string f16 = dir.file("sd1-f16.gguf"), q8 = dir.file("sd1-q8_0.gguf");
  io::write_gguf(f16, *source, {.type = io::GgmlType::F16});
  io::write_gguf(q8, *source, {.type = io::GgmlType::Q8_0, .min_elements = 256});
  SingleFileModel m = load_single_file(f16, {{"text_encoder", kTinyClipHeads}}, at::kFloat, at::Device(at::kCPU));
  EXPECT_EQ(m.family, "sd1");
  check_unet(m.unet, "unet_sd1");
  check_vae(m.vae);
  torch::NoGradGuard no_grad;
  check_clip(m.text_encoder(input_ids("clip_l")), "clip_l");

  auto q8_reader = io::open_weights(q8);
  size_t quantised = 0;
  for (const auto& t : q8_reader->tensors()) quantised += t.storage == "Q8_0";
  EXPECT_GT(quantised, 50u);
  SingleFileModel q = load_single_file(q8, {{"text_encoder", kTinyClipHeads}}, at::kFloat, at::Device(at::kCPU));
  auto io = open_io("unet_sd1");
  const at::Tensor x = io->load("sample", at::kFloat), t = io->load("timestep", at::kFloat);
  const at::Tensor c = io->load("encoder_hidden_states", at::kFloat);
  const at::Tensor ref = m.unet->forward(x, t, c, std::nullopt), out = q.unet->forward(x, t, c, std::nullopt);
  const double rel = ((out - ref).norm() / ref.norm()).item<double>();
  EXPECT_LT(rel, 0.02) << "Q8_0 UNet against F16";
  EXPECT_GT(rel, 0.0) << "Q8_0 should not be bit-identical to F16";
}

// A UNet alone in the original names, as ComfyUI (bare names) and ComfyUI-GGUF store it: the
// config read off the shapes, the weights from either prefix, GGUF Q8_0 close to F16.
TEST(SingleFile, LdmUNetFileAlone) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  auto source = io::open_weights(sd1_file());
  std::vector<std::pair<std::string, at::Tensor>> bare, prefixed;
  for (const auto& t : source->tensors()) {
    if (t.name.rfind(kLdmUNetPrefix, 0) != 0) continue;
    bare.emplace_back(t.name.substr(std::string(kLdmUNetPrefix).size()), source->load(t.name).clone());
    prefixed.emplace_back(t.name, bare.back().second);
  }
  io::save_safetensors(dir.file("unet.safetensors"), bare);
  io::save_safetensors(dir.file("unet-prefixed.safetensors"), prefixed);
  auto bare_reader = io::open_weights(dir.file("unet.safetensors"));
  io::write_gguf(dir.file("unet-Q8_0.gguf"), *bare_reader, {.type = io::GgmlType::Q8_0, .min_elements = 256});

  const LayoutGuess g = detect_layout(bare_reader->tensors());
  EXPECT_EQ(g.layout, "ldm-unet");
  EXPECT_EQ(g.family, "sd1");
  const LdmUNetFile f = infer_ldm_unet_file(dir.file("unet.safetensors"), bare_reader->tensors());
  EXPECT_EQ(f.family, "sd1");
  EXPECT_EQ(f.prefix, "");
  expect_config_matches(f.config, read_json(fixture("unet_sd1/config.json")), "ldm unet file");
  EXPECT_TRUE(std::any_of(f.assumptions.begin(), f.assumptions.end(),
                          [](const std::string& a) { return a.rfind("unet.attention_head_dim", 0) == 0; }));
  const json heads = {{"attention_head_dim", read_json(fixture("unet_sd1/config.json"))["attention_head_dim"]}};
  auto unet = load_ldm_unet_file(dir.file("unet.safetensors"), heads);
  check_unet(unet, "unet_sd1");
  auto from_prefixed = load_ldm_unet_file(dir.file("unet-prefixed.safetensors"), heads);
  check_unet(from_prefixed, "unet_sd1");
  EXPECT_EQ(infer_ldm_unet_file("x", io::open_weights(dir.file("unet-prefixed.safetensors"))->tensors()).prefix, kLdmUNetPrefix);

  auto q8 = load_ldm_unet_file(dir.file("unet-Q8_0.gguf"), heads);
  torch::NoGradGuard no_grad;
  auto io = open_io("unet_sd1");
  const at::Tensor x = io->load("sample", at::kFloat), t = io->load("timestep", at::kFloat);
  const at::Tensor c = io->load("encoder_hidden_states", at::kFloat);
  const at::Tensor ref = unet->forward(x, t, c, std::nullopt), out = q8->forward(x, t, c, std::nullopt);
  const double rel = ((out - ref).norm() / ref.norm()).item<double>();
  EXPECT_GT(rel, 0.0);
  EXPECT_LT(rel, 0.02) << "Q8_0 UNet file against F16";
  // A file that is no LDM UNet says so, naming the file.
  test::expect_contains(test::load_error([&] { load_ldm_unet_file(fixture("vae/diffusion_pytorch_model.safetensors")); }),
                        {"vae/diffusion_pytorch_model.safetensors", "not a UNet in the original (LDM) names"});
}

// A diffusers component folder may hold its weights as GGUF (genvis convert's output): the UNet
// fixture's F16 weights written to diffusion_pytorch_model.gguf load to the same model.
TEST(SingleFile, DiffusersFolderWithGgufWeights) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  std::filesystem::copy_file(fixture("unet_sd1/config.json"), dir.file("config.json"));
  auto source = io::open_weights(fixture("unet_sd1/diffusion_pytorch_model.safetensors"));
  io::write_gguf(dir.file("diffusion_pytorch_model.gguf"), *source, {.type = io::GgmlType::F16});
  auto unet = load_unet2d_condition(dir.path());
  check_unet(unet, "unet_sd1");
}

TEST(SingleFile, InpaintingUNetHasNineInputChannels) {
  GENVIS_REQUIRE_FIXTURES();
  auto tensors = io::open_weights(sd1_file())->tensors();
  std::string conv_in = kLdmUNetPrefix;
  conv_in += "input_blocks.0.0.weight";
  for (auto& t : tensors)
    if (t.name == conv_in) t.shape[1] = 9;
  EXPECT_EQ(infer_single_file_configs(tensors).unet.at("in_channels"), 9);
}

// --- SD2 and SDXL: built from the fixture components ---------------------------------------------

TEST(SingleFile, SD2Configs) {
  GENVIS_REQUIRE_FIXTURES();
  const SingleFileConfigs c = infer_single_file_configs(infos(sd2_file()), kTinyHeadsSD2);
  EXPECT_EQ(c.family, "sd2");
  EXPECT_TRUE(c.text_encoder_2.is_null());
  EXPECT_EQ(c.unet.at("use_linear_projection"), true);
  expect_config_matches(c.unet, read_json(fixture("unet_sd2/config.json")), "unet");
  expect_config_matches(c.vae, read_json(fixture("vae/config.json")), "vae");
  // OpenCLIP text encoder without projection, one block short of the 3 stored (penultimate layer).
  json clip = read_json(fixture("clip_g/config.json"));
  clip["architectures"] = json::array({"CLIPTextModel"});
  clip["num_hidden_layers"] = 2;
  expect_config_matches(c.text_encoder, clip, "text_encoder");
  EXPECT_TRUE(has_assumption(c, "text_encoder.num_hidden_layers"));
  EXPECT_TRUE(has_assumption(c, "unet.upcast_attention"));

  // Heads default to 64-channel heads: 32 and 64 channels give 1 head each.
  const SingleFileConfigs plain = infer_single_file_configs(infos(sd2_file()));
  EXPECT_EQ(plain.unet.at("attention_head_dim"), json({1, 1}));
  EXPECT_EQ(plain.unet.at("sample_size"), 96);
}

TEST(SingleFile, SD2LoadReproducesTheComponentFixtures) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  io::save_safetensors(dir.file("sd2.safetensors"), sd2_file());
  SingleFileModel m = load_single_file(dir.file("sd2.safetensors"), kTinyHeadsSD2, at::kFloat, at::Device(at::kCPU));
  EXPECT_EQ(m.family, "sd2");
  EXPECT_EQ(m.text_encoder->text_model->config.num_hidden_layers, 2);
  check_unet(m.unet, "unet_sd2");
  check_vae(m.vae);
  // The 2-block encoder's output is clip_g's final LN over its penultimate layer.
  torch::NoGradGuard no_grad;
  const CLIPTextOutput out = m.text_encoder(input_ids("clip_g"));
  auto io = open_io("clip_g");
  const Tolerance tol = case_tolerance("clip_g");
  expect_close(out.last_hidden_state, io->load("penultimate_final_layer_norm", at::kFloat), tol,
               "sd2 text_encoder last_hidden_state");
  expect_close(torch::stack(out.hidden_states), io->load("hidden_states", at::kFloat).slice(0, 0, 3), tol,
               "sd2 text_encoder hidden_states");
}

TEST(SingleFile, SDXLConfigs) {
  GENVIS_REQUIRE_FIXTURES();
  const SingleFileConfigs c = infer_single_file_configs(infos(sdxl_file()), kTinyHeadsSDXL);
  EXPECT_EQ(c.family, "sdxl");
  expect_config_matches(c.unet, read_json(fixture("unet_sdxl/config.json")), "unet");
  EXPECT_EQ(c.unet.at("addition_embed_type"), "text_time");
  EXPECT_EQ(c.unet.at("addition_time_embed_dim"), 8);  // (64 label_emb inputs - 16 pooled) / 6 time ids
  EXPECT_EQ(c.unet.at("transformer_layers_per_block"), json({1, 2}));
  EXPECT_EQ(c.unet.at("down_block_types"), json({"DownBlock2D", "CrossAttnDownBlock2D"}));
  expect_config_matches(c.text_encoder, read_json(fixture("clip_l/config.json")), "text_encoder");
  expect_config_matches(c.text_encoder_2, read_json(fixture("clip_g/config.json")), "text_encoder_2");
  json vae = read_json(fixture("vae/config.json"));
  vae["scaling_factor"] = 0.13025;  // the SDXL VAE's; the fixture VAE is an SD1 one
  expect_config_matches(c.vae, vae, "vae");
  EXPECT_FALSE(has_assumption(c, "unet.addition_time_embed_dim"));
  EXPECT_EQ(infer_single_file_configs(infos(sdxl_file())).unet.at("sample_size"), 128);
}

// Real-size heads: a UNet of 64/128 channels built from the SDXL config gives 1 and 2 heads.
TEST(SingleFile, SDXLHeadsAreChannelsOver64) {
  GENVIS_REQUIRE_FIXTURES();
  json config = read_json(fixture("unet_sdxl/config.json"));
  config["block_out_channels"] = {64, 128};
  const auto unet_config = UNet2DConditionConfig::from_json(config);
  UNet2DConditionModel unet(unet_config);
  Named file;
  Named params;
  for (const auto& p : unet->named_parameters()) params.emplace_back(p.key(), p.value());
  add_unet(file, unet_config, params);
  add_vae(file);
  add_clip(file, "clip_l", kSDXLTextPrefix, CLIPTextLayout::Transformers);
  add_clip(file, "clip_g", kSDXLText2Prefix, CLIPTextLayout::OpenCLIP);
  const SingleFileConfigs c = infer_single_file_configs(infos(file));
  EXPECT_EQ(c.unet.at("attention_head_dim"), json({1, 2}));
  EXPECT_EQ(c.unet.at("block_out_channels"), json({64, 128}));
  for (const auto& a : c.assumptions)
    if (a.rfind("unet.attention_head_dim", 0) == 0) {
      EXPECT_EQ(a.find("no multiple of 64"), std::string::npos) << a;
    }
}

TEST(SingleFile, SDXLLoadReproducesTheComponentFixtures) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  io::save_safetensors(dir.file("sdxl.safetensors"), sdxl_file());
  SingleFileModel m = load_single_file(dir.file("sdxl.safetensors"), kTinyHeadsSDXL, at::kFloat, at::Device(at::kCPU));
  EXPECT_EQ(m.family, "sdxl");
  ASSERT_FALSE(m.text_encoder_2.is_empty());
  EXPECT_FALSE(m.text_encoder_2->is_training());
  check_unet(m.unet, "unet_sdxl");
  check_vae(m.vae);
  torch::NoGradGuard no_grad;
  check_clip(m.text_encoder(input_ids("clip_l")), "clip_l");
  check_clip(m.text_encoder_2(input_ids("clip_g")), "clip_g");
}

// --- bad input ------------------------------------------------------------------------------------

template <typename Error, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    std::cout << "[error] " << e.what() << "\n";
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(SingleFile, IncompleteCheckpointsNameWhatIsMissing) {
  GENVIS_REQUIRE_FIXTURES();
  const auto all = io::open_weights(sd1_file())->tensors();
  std::vector<io::TensorInfo> unet_only;
  for (const auto& t : all)
    if (t.name.rfind(kLdmUNetPrefix, 0) == 0) unet_only.push_back(t);
  std::string what = error_of<LoadError>([&] { infer_single_file_configs(unet_only); });
  EXPECT_TRUE(contains(what, "incomplete sd1")) << what;
  EXPECT_TRUE(contains(what, "first_stage_model.")) << what;
  EXPECT_TRUE(contains(what, "cond_stage_model.transformer.")) << what;

  // SDXL without its second encoder.
  std::vector<io::TensorInfo> sdxl_partial;
  for (const auto& t : infos(sdxl_file()))
    if (t.name.rfind(kSDXLText2Prefix, 0) != 0) sdxl_partial.push_back(t);
  sdxl_partial.push_back({std::string(kSDXLText2Prefix) + "logit_scale", io::DType::F32, {}, 4, ""});
  what = error_of<LoadError>([&] { infer_single_file_configs(sdxl_partial); });
  EXPECT_TRUE(contains(what, "text_encoder_2")) << what;
  EXPECT_TRUE(contains(what, "conditioner.embedders.1.model.token_embedding.weight")) << what;

  // A truncated UNet: the missing tensor is named.
  std::vector<io::TensorInfo> no_out;
  for (const auto& t : all)
    if (t.name != std::string(kLdmUNetPrefix) + "out.2.weight") no_out.push_back(t);
  what = error_of<LoadError>([&] { infer_single_file_configs(no_out); });
  EXPECT_TRUE(contains(what, "model.diffusion_model.out.2.weight")) << what;

  // Through load_single_file the file is named too.
  test::TempDir dir;
  Named vae_only;
  add_vae(vae_only);
  add_unet(vae_only, "unet_sd1");
  io::save_safetensors(dir.file("partial.safetensors"), vae_only);
  what = error_of<LoadError>([&] { load_single_file(dir.file("partial.safetensors")); });
  EXPECT_TRUE(contains(what, "partial.safetensors")) << what;
  EXPECT_TRUE(contains(what, "cond_stage_model.transformer.")) << what;
}

TEST(SingleFile, OtherLayoutsAreRejected) {
  GENVIS_REQUIRE_FIXTURES();
  const std::vector<io::TensorInfo> unknown = {{"foo.weight", io::DType::F32, {4, 4}, 64, ""},
                                               {"bar.bias", io::DType::F32, {4}, 16, ""}};
  std::string what = error_of<LoadError>([&] { infer_single_file_configs(unknown); });
  EXPECT_TRUE(contains(what, "not an original single-file")) << what;
  EXPECT_TRUE(contains(what, "model.diffusion_model.input_blocks.0.0.weight")) << what;
  EXPECT_TRUE(contains(what, "'unknown'")) << what;

  what = error_of<LoadError>([&] { load_single_file(fixture("unet_sd1/diffusion_pytorch_model.safetensors")); });
  EXPECT_TRUE(contains(what, "diffusers-unet")) << what;
}

TEST(SingleFile, BadOverridesAreRejected) {
  GENVIS_REQUIRE_FIXTURES();
  const auto tensors = io::open_weights(sd1_file())->tensors();
  std::string what = error_of<UsageError>([&] {
    infer_single_file_configs(tensors, {{"unet", json::object()}, {"scheduler", {{"a", 1}}}, {"vea", json::object()}});
  });
  EXPECT_TRUE(contains(what, "'scheduler'") && contains(what, "'vea'")) << what;
  what = error_of<UsageError>([&] { infer_single_file_configs(tensors, {{"unet", 3}}); });
  EXPECT_TRUE(contains(what, "'unet'")) << what;
  what = error_of<UsageError>([&] { infer_single_file_configs(tensors, json::array({1})); });
  EXPECT_TRUE(contains(what, "JSON object")) << what;
  what = error_of<UsageError>([&] { infer_single_file_configs(tensors, {{"text_encoder_2", kTinyClipHeads}}); });
  EXPECT_TRUE(contains(what, "no text_encoder_2")) << what;
  // An override the config cannot take names the component.
  what = error_of<LoadError>([&] { infer_single_file_configs(tensors, {{"unet", {{"attention_head_dim", 7}}}}); });
  EXPECT_TRUE(contains(what, "single-file unet config")) << what;
  // One the weights do not fit fails the strict load.
  what = error_of<LoadError>(
      [&] { load_single_file(sd1_file(), {{"text_encoder", {{"num_attention_heads", 2}, {"num_hidden_layers", 2}}}}); });
  EXPECT_TRUE(contains(what, "unexpected")) << what;
}

}  // namespace
}  // namespace genvis::models
