// End-to-end parity with diffusers 0.31 (fixtures e2e_txt2img and e2e_img2img): the tiny
// clip_l + unet_sd1 + vae models, Euler, CFG 7.5. txt2img runs through the genvis binary exactly
// as a user would; img2img through the library with the fixture's recorded noises.
#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "pipelines/stable_diffusion.h"
#include "support/test_support.h"

#include <fstream>
#include <nlohmann/json.hpp>

namespace genvis::pipelines {
namespace {

struct Deviation {
  double max_abs, rel_l2;
};
Deviation compare(const at::Tensor& a, const at::Tensor& ref) {
  const at::Tensor d = (a.to(at::kDouble) - ref.to(at::kDouble));
  return {d.abs().max().item<double>(), d.norm().item<double>() / ref.to(at::kDouble).norm().item<double>()};
}

nlohmann::json manifest_case(const std::string& name) {
  std::ifstream in(test::fixtures_dir() + "/manifest.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The manifest holds Python's -Infinity, which is not JSON.
  for (size_t p; (p = text.find("-Infinity")) != std::string::npos;) text.replace(p, 9, "-1e308");
  const auto manifest = nlohmann::json::parse(text);
  for (const auto& c : manifest["cases"])
    if (c["name"] == name) return c;
  throw std::runtime_error("no manifest case " + name);
}

std::string vocab() { return test::shared_dir() + "/data/bpe_simple_vocab_16e6.txt.gz"; }

// Runs `genvis generate` on e2e_txt2img's settings with the model given by `model_args` and
// checks the dumped image and latents against the fixture.
void expect_txt2img_parity(const std::string& model_args) {
  const auto c = manifest_case("e2e_txt2img");
  test::TempDir dir;
  {
    std::ofstream(dir.file("scheduler_config.json")) << c["config"]["scheduler"].dump();
  }
  auto ref = io::open_weights(test::fixtures_dir() + "/e2e/txt2img.safetensors");
  io::save_safetensors(dir.file("noise.safetensors"), {{"latents", ref->load("init_noise", at::kFloat)}});
  const auto r = test::run_command(
      std::string(GENVIS_BINARY_DIR) + "/genvis generate --dtype f32 " + model_args + " --vocab " + vocab() +
      " --scheduler-config " + dir.file("scheduler_config.json") + " --init-noise " + dir.file("noise.safetensors") +
      " -p " + test::shell_quote(c["config"]["prompt"]) +
      " --steps 4 --cfg-scale 7.5 --width 64 --height 48 --seed 1 -o " + dir.file("out.png") + " --dump " +
      dir.file("dump.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto dump = io::open_weights(dir.file("dump.safetensors"));
  const Deviation image = compare(dump->load("image"), ref->load("image", at::kFloat));
  EXPECT_LE(image.max_abs, c["tolerance"]["image"]["max_abs"].get<double>());
  EXPECT_LE(image.rel_l2, c["tolerance"]["image"]["rel_l2"].get<double>());
  const Deviation latents = compare(dump->load("latents"), ref->load("latents_4", at::kFloat));
  EXPECT_LE(latents.max_abs, c["tolerance"]["latents"]["max_abs"].get<double>());
  EXPECT_LE(latents.rel_l2, c["tolerance"]["latents"]["rel_l2"].get<double>());
  // The PNG carries the generation parameters.
  const auto info = test::run_command(std::string(GENVIS_BINARY_DIR) + "/genvis info --json " + dir.file("out.png"));
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["parameters"]["prompt"], c["config"]["prompt"]);
  EXPECT_EQ(j["parameters"]["steps"], 4);
  EXPECT_EQ(j["parameters"]["sampler"], "Euler");
  EXPECT_EQ(j["width"], 64);
}

TEST(GenerateParity, Txt2ImgThroughTheCli) {
  GENVIS_REQUIRE_FIXTURES();
  const std::string f = test::fixtures_dir();
  expect_txt2img_parity("--text-encoder " + f + "/clip_l --unet " + f + "/unet_sd1 --vae " + f + "/vae");
}

// The same models as one original LDM-layout file: configs read off the shapes, with the tiny
// CLIP's head count (2, where a real CLIP's 64-wide heads would give 1) given as an override.
TEST(GenerateParity, Txt2ImgFromTheSingleFileThroughTheCli) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  {
    std::ofstream(dir.file("model_config.json")) << R"({"text_encoder": {"num_attention_heads": 2}})";
  }
  expect_txt2img_parity("--model " + test::fixtures_dir() + "/single_file/sd1_tiny_ldm.safetensors --model-config " +
                        dir.file("model_config.json"));
}

// The same file written as GGUF by `genvis convert` (F16, the fixture's own precision, so the
// parity holds exactly as for the safetensors file): the stable-diffusion.cpp layout.
TEST(GenerateParity, Txt2ImgFromAGgufWrittenByConvert) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  {
    std::ofstream(dir.file("model_config.json")) << R"({"text_encoder": {"num_attention_heads": 2}})";
  }
  const auto r = test::run_command(std::string(GENVIS_BINARY_DIR) + "/genvis convert " + test::fixtures_dir() +
                                   "/single_file/sd1_tiny_ldm.safetensors " + dir.file("sd1.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_txt2img_parity("--model " + dir.file("sd1.gguf") + " --model-config " + dir.file("model_config.json"));
}

// ComfyUI-GGUF's way: the UNet alone as a GGUF in the original names (--unet FILE), the text
// encoder and VAE from elsewhere; its config is read off the shapes plus the tiny heads.
TEST(GenerateParity, Txt2ImgWithAGgufUNetFile) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  auto single = io::open_weights(test::fixtures_dir() + "/single_file/sd1_tiny_ldm.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> unet;
  const std::string prefix = "model.diffusion_model.";
  for (const auto& t : single->tensors())
    if (t.name.rfind(prefix, 0) == 0) unet.emplace_back(t.name.substr(prefix.size()), single->load(t.name).clone());
  io::save_safetensors(dir.file("unet.safetensors"), unet);
  const auto r = test::run_command(std::string(GENVIS_BINARY_DIR) + "/genvis convert " + dir.file("unet.safetensors") + " " +
                                   dir.file("unet-F16.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto heads = nlohmann::json::parse(read_text_file(test::fixtures_dir() + "/unet_sd1/config.json", 1 << 20))["attention_head_dim"];
  {
    std::ofstream(dir.file("model_config.json")) << nlohmann::json{{"unet", {{"attention_head_dim", heads}}}}.dump();
  }
  const std::string f = test::fixtures_dir();
  expect_txt2img_parity("--text-encoder " + f + "/clip_l --unet " + dir.file("unet-F16.gguf") + " --vae " + f +
                        "/vae --model-config " + dir.file("model_config.json"));
}

TEST(GenerateParity, Img2ImgWithRecordedNoise) {
  GENVIS_REQUIRE_FIXTURES();
  const auto c = manifest_case("e2e_img2img");
  const auto t2i = manifest_case("e2e_txt2img");
  test::TempDir dir;
  {
    std::ofstream(dir.file("scheduler_config.json")) << t2i["config"]["scheduler"].dump();
  }
  const std::string f = test::fixtures_dir();
  ModelSource source;
  source.text_encoder = f + "/clip_l";
  source.unet = f + "/unet_sd1";
  source.vae = f + "/vae";
  source.vocab = vocab();
  source.scheduler_config = dir.file("scheduler_config.json");
  StableDiffusion model = load_stable_diffusion(source);
  auto ref = io::open_weights(f + "/e2e/img2img.safetensors");
  GenerateOptions o;
  o.prompt = c["config"]["prompt"];
  o.steps = 8;
  o.strength = 0.5;
  o.cfg_scale = 7.5;
  o.width = 64;
  o.height = 48;
  o.init_image = ref->load("init_image", at::kFloat) * 2 - 1;
  o.init_noise = ref->load("noise", at::kFloat);
  o.posterior_noise = ref->load("vae_sample_eps", at::kFloat);
  const GenerateResult r = generate(model, o);
  const Deviation image = compare(r.images, ref->load("image", at::kFloat));
  EXPECT_LE(image.max_abs, c["tolerance"]["image"]["max_abs"].get<double>());
  EXPECT_LE(image.rel_l2, c["tolerance"]["image"]["rel_l2"].get<double>());
  EXPECT_LE(compare(r.latents, ref->load("latents_4", at::kFloat)).max_abs, 5e-3);
}

TEST(GenerateParity, Img2ImgThroughTheCli) {
  GENVIS_REQUIRE_FIXTURES();
  const auto c = manifest_case("e2e_img2img");
  const auto t2i = manifest_case("e2e_txt2img");
  test::TempDir dir;
  {
    std::ofstream(dir.file("scheduler_config.json")) << t2i["config"]["scheduler"].dump();
  }
  const std::string f = test::fixtures_dir();
  auto ref = io::open_weights(f + "/e2e/img2img.safetensors");
  // The fixture's init image is not 8-bit exact: it goes in as a float tensor, as --dump writes.
  io::save_safetensors(dir.file("init.safetensors"), {{"image", ref->load("init_image", at::kFloat)}});
  io::save_safetensors(dir.file("noise.safetensors"), {{"latents", ref->load("noise", at::kFloat)},
                                                       {"posterior_noise", ref->load("vae_sample_eps", at::kFloat)}});
  const auto r = test::run_command(
      std::string(GENVIS_BINARY_DIR) + "/genvis generate --dtype f32 --text-encoder " + f + "/clip_l --unet " + f +
      "/unet_sd1 --vae " + f + "/vae --vocab " + vocab() + " --scheduler-config " + dir.file("scheduler_config.json") +
      " --init-noise " + dir.file("noise.safetensors") + " --init-image " + dir.file("init.safetensors") + " -p " +
      test::shell_quote(c["config"]["prompt"]) + " --steps 8 --strength 0.5 --cfg-scale 7.5 --width 64 --height 48" +
      " --seed 1 -o " + dir.file("out.png") + " --dump " + dir.file("dump.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto dump = io::open_weights(dir.file("dump.safetensors"));
  const Deviation image = compare(dump->load("image"), ref->load("image", at::kFloat));
  EXPECT_LE(image.max_abs, c["tolerance"]["image"]["max_abs"].get<double>());
  EXPECT_LE(image.rel_l2, c["tolerance"]["image"]["rel_l2"].get<double>());
}

TEST(Generate, OptionsAreValidatedTogether) {
  GenerateOptions o;
  o.steps = 0;
  o.width = 65;
  o.cfg_scale = -1;
  o.sampler = "warp";
  try {
    o.validate();
    FAIL() << "accepted";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    for (const char* part : {"--steps", "multiples of 8", "--cfg-scale", "warp"})
      EXPECT_NE(what.find(part), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace genvis::pipelines
