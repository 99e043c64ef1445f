// Wan 2.1 text-to-video up to the VAE (fixture "e2e_wan_t2v", diffusers 0.33.1 WanPipeline):
// the prompt and negative prompt through the T5 tokenizer and UMT5, then CFG + UniPC on the tiny
// transformer from the recorded initial latents, every step's latents, and the denormalised
// latents the VAE decodes. Settings, prompts and sizes all come from the manifest case.
#include "io/safetensors.h"
#include "io/video.h"
#include "io/weights.h"
#include "core/error.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "models/clip_vision/clip_vision_model.h"
#include "models/umt5/umt5_encoder.h"
#include "models/wan/wan_transformer.h"
#include "nn/state_dict.h"
#include "pipelines/common/diffusion_loop.h"
#include "pipelines/registry.h"
#include "pipelines/wan/wan_sampling.h"
#include "support/test_support.h"
#include "tokenizers/t5_tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

// The folder of a model case's files (its config.json's, or its first file's).
std::string model_folder(const std::string& case_name) {
  const nlohmann::json c = test::fixture_case(case_name);
  std::string folder;
  for (const auto& f : c.at("files")) {
    const std::filesystem::path p = test::fixtures_dir() + "/" + f.get<std::string>();
    if (folder.empty() || p.filename() == "config.json") folder = p.parent_path().string();
  }
  return folder;
}

// One e2e case: its manifest entry, recorded tensors and per-kind tolerances.
struct WanCase {
  explicit WanCase(const std::string& name)
      : c(test::fixture_case(name)), cfg(c.at("config")),
        ref(io::open_weights(test::fixtures_dir() + "/" + c.at("files")[0].get<std::string>())) {}
  test::Tolerance tolerance(const char* kind) const {  // this case's tolerance has one entry per kind
    const auto& t = c.at("tolerance").at(kind);
    return {t.at("max_abs").get<double>(), t.at("rel_l2").get<double>()};
  }
  // Denoise inputs from the config (prompts encoded, recorded initial latents), and (unless
  // `checked` is null) a check of every step's latents against latents_<i+1>.
  WanDenoiseInputs inputs(const models::WanTransformer3DModel& dit, int64_t* checked) const {
    const auto tokenizer = tokenizers::T5Tokenizer::load(model_folder("umt5_tokenizer"));
    auto umt5 = models::load_umt5_encoder(model_folder("umt5_encoder"));
    const int64_t max_len = cfg.at("max_sequence_length");
    WanDenoiseInputs in;
    in.transformer = dit;
    in.cond = wan_encode_prompt(tokenizer, umt5, cfg.at("prompt"), max_len);
    in.uncond = wan_encode_prompt(tokenizer, umt5, cfg.at("negative_prompt"), max_len);
    in.latents = ref->load("init_latents", at::kFloat);
    in.scheduler = schedulers::NoiseScheduleConfig::from_json(cfg.at("scheduler"));
    in.steps = cfg.at("num_inference_steps");
    in.guidance = cfg.at("guidance_scale");
    if (checked) in.options.on_latents = [this, checked, tol = tolerance("latents")](int64_t i, const at::Tensor& x,
                                                                       const at::Tensor&) {
      const std::string key = "latents_" + std::to_string(i + 1);
      test::expect_close(x, ref->load(key, at::kFloat), tol, key);
      ++*checked;
    };
    return in;
  }
  nlohmann::json c, cfg;
  std::shared_ptr<io::WeightReader> ref;
};

models::WanTransformer3DModel load_transformer(const std::string& case_name) {
  return models::load_wan_transformer(model_folder(case_name));
}

TEST(WanSamplingParity, TextToVideoLatents) {
  GENVIS_REQUIRE_FIXTURES();
  const WanCase w("e2e_wan_t2v");
  int64_t checked = 0;
  const WanDenoiseInputs in = w.inputs(load_transformer("wan21_transformer"), &checked);
  const auto tol_text = w.tolerance("prompt_embeds");
  test::expect_close(in.cond, w.ref->load("prompt_embeds", at::kFloat), tol_text, "prompt_embeds");
  test::expect_close(in.uncond, w.ref->load("negative_prompt_embeds", at::kFloat), tol_text, "negative_prompt_embeds");
  const at::Tensor z = wan_denoise(in);
  EXPECT_EQ(checked, in.steps);
  const auto mean = w.cfg.at("latents_mean").get<std::vector<double>>();
  const auto std = w.cfg.at("latents_std").get<std::vector<double>>();
  const at::Tensor denormalized = wan_denormalize(z, mean, std);
  test::expect_close(denormalized, w.ref->load("latents_denormalized", at::kFloat), w.tolerance("latents"),
                     "latents_denormalized");
  // 5. The VAE decode and the video in [0, 1].
  auto vae = models::load_autoencoder_kl_wan(model_folder("wan21_vae"));
  torch::NoGradGuard no_grad;
  const at::Tensor video = (vae->decode(denormalized) / 2 + 0.5).clamp(0, 1);
  test::expect_close(video, w.ref->load("video", at::kFloat), w.tolerance("video"), "video");
}

// Image-to-video up to the VAE (fixture "e2e_wan_i2v"): the CLIP image embeddings, the mask half
// of the recorded condition, then CFG + UniPC on the I2V transformer with the recorded condition.
TEST(WanSamplingParity, ImageToVideoLatents) {
  GENVIS_REQUIRE_FIXTURES();
  const WanCase w("e2e_wan_i2v");
  auto vision = models::load_clip_vision_model(model_folder("clip_vision"));
  torch::NoGradGuard no_grad;
  const auto states = vision->forward(w.ref->load("pixel_values", at::kFloat)).hidden_states;
  const at::Tensor image_embeds = states[states.size() - 2];
  test::expect_close(image_embeds, w.ref->load("image_embeds", at::kFloat), w.tolerance("latents"), "image_embeds");
  const at::Tensor condition = w.ref->load("condition", at::kFloat);
  // The condition from the image: [first frame, zeros] through the VAE encoder, normalised, after the mask.
  auto vae = models::load_autoencoder_kl_wan(model_folder("wan21_vae"));
  const at::Tensor image = w.ref->load("image", at::kFloat) * 2 - 1;  // [1,3,H,W]
  const int64_t frames = w.cfg.at("num_frames");
  const at::Tensor first = at::cat({image.unsqueeze(2), at::zeros({1, 3, frames - 1, image.size(2), image.size(3)})}, 2);
  const auto& vc = vae->config;
  test::expect_close(wan_i2v_condition(vae->encode(first).mean, vc.latents_mean, vc.latents_std), condition,
                     w.tolerance("condition"), "condition");

  int64_t checked = 0;
  WanDenoiseInputs in = w.inputs(load_transformer("wan21_i2v_transformer"), &checked);
  in.image_embeds = image_embeds;
  in.condition = condition;
  const at::Tensor z = wan_denoise(in);
  EXPECT_EQ(checked, in.steps);
  const at::Tensor video = (vae->decode(wan_denormalize(z, vc.latents_mean, vc.latents_std)) / 2 + 0.5).clamp(0, 1);
  test::expect_close(video, w.ref->load("video", at::kFloat), w.tolerance("video"), "video");
  // Without the condition the I2V transformer's channels do not add up: one clear error.
  in.condition = at::Tensor();
  EXPECT_THROW(wan_denoise(in), UsageError);
}

// A diffusers WanPipeline (or, for an image-to-video case, WanImageToVideoPipeline) folder in
// `dir` made of the fixture components (symlinked) and the case's scheduler config.
std::string assemble_wan_folder(const test::TempDir& dir, const WanCase& w, bool i2v = false) {
  const std::filesystem::path root = dir.file(i2v ? "wan-i2v" : "wan");
  std::filesystem::create_directories(root / "scheduler");
  std::vector<std::pair<const char*, const char*>> parts = {{"tokenizer", "umt5_tokenizer"},
                                                            {"text_encoder", "umt5_encoder"},
                                                            {"transformer", i2v ? "wan21_i2v_transformer" : "wan21_transformer"},
                                                            {"vae", "wan21_vae"}};
  if (i2v) parts.push_back({"image_encoder", "clip_vision"});
  for (const auto& [sub, case_name] : parts)
    std::filesystem::create_directory_symlink(std::filesystem::absolute(model_folder(case_name)), root / sub);
  test::write_bytes((root / "model_index.json").string(),
                    i2v ? R"({"_class_name": "WanImageToVideoPipeline"})" : R"({"_class_name": "WanPipeline"})");
  test::write_bytes((root / "scheduler" / "scheduler_config.json").string(), w.cfg.at("scheduler").dump());
  return root.string();
}

// `genvis generate` arguments for a case: prompts, steps, guidance, frames, size, extras.
std::string generate_args(const WanCase& w) {
  const auto q = test::shell_quote;
  return " generate -p " + q(w.cfg.at("prompt")) + " -n " + q(w.cfg.at("negative_prompt")) + " --steps " +
         std::to_string(w.cfg.at("num_inference_steps").get<int64_t>()) + " --cfg-scale " +
         w.cfg.at("guidance_scale").dump() + " --frames " + std::to_string(w.cfg.at("num_frames").get<int64_t>()) +
         " --width " + std::to_string(w.cfg.at("width").get<int64_t>()) + " --height " +
         std::to_string(w.cfg.at("height").get<int64_t>()) + " --extras " +
         q(nlohmann::json{{"max_sequence_length", w.cfg.at("max_sequence_length")}}.dump());
}

// The registered WanPipeline on a diffusers folder assembled from the fixture components
// (model_index.json, tokenizer/, text_encoder/, transformer/, vae/, scheduler/): the same video as
// diffusers from the recorded initial latents.
TEST(WanPipelineParity, TextToVideoThroughTheRegistry) {
  GENVIS_REQUIRE_FIXTURES();
  const WanCase w("e2e_wan_t2v");
  test::TempDir dir;
  const std::string root = assemble_wan_folder(dir, w);
  auto pipeline = load_pipeline({.model = root});
  EXPECT_EQ(pipeline->info().class_name, "WanPipeline");
  Request r;
  r.prompt = w.cfg.at("prompt"), r.negative_prompt = w.cfg.at("negative_prompt");
  r.steps = w.cfg.at("num_inference_steps").get<int64_t>();
  r.guidance = w.cfg.at("guidance_scale").get<double>();
  r.num_frames = w.cfg.at("num_frames").get<int64_t>();
  r.width = w.cfg.at("width").get<int64_t>(), r.height = w.cfg.at("height").get<int64_t>();
  r.extras = {{"max_sequence_length", w.cfg.at("max_sequence_length")}};
  r.init_noise = w.ref->load("init_latents", at::kFloat);
  const Result out = pipeline->generate(r);
  ASSERT_TRUE(out.is_video());
  test::expect_close(out.samples, w.ref->load("video", at::kFloat), w.tolerance("video"), "pipeline video");
  // Frame counts the VAE cannot make are refused, naming the nearest valid ones.
  r.num_frames = 8;
  try {
    pipeline->generate(r);
    ADD_FAILURE() << "8 frames accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("nearest 5 or 9"), std::string::npos) << e.what();
  }
}

// The same through the binary: genvis generate --frames ... --init-noise (the recorded latents)
// --dump, on the assembled folder; the dumped video equals diffusers', and an MP4 is written.
TEST(WanPipelineParity, TextToVideoThroughTheBinary) {
  GENVIS_REQUIRE_FIXTURES();
  if (!std::filesystem::exists(GENVIS_CLI)) GTEST_SKIP() << "the genvis binary is not built";
  const WanCase w("e2e_wan_t2v");
  test::TempDir dir;
  const std::string root = assemble_wan_folder(dir, w);
  io::save_safetensors(dir.file("noise.safetensors"), {{"latents", w.ref->load("init_latents", at::kFloat)}});
  const auto q = test::shell_quote;
  const std::string args = generate_args(w) + " --model " + q(root) + " --init-noise " +
                           q(dir.file("noise.safetensors")) + " --dump " + q(dir.file("dump.safetensors")) + " -o " +
                           q(dir.file("out.mp4"));
  const auto r = test::run_command(std::string(GENVIS_CLI) + args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto dump = io::open_weights(dir.file("dump.safetensors"));
  test::expect_close(dump->load("image", at::kFloat), w.ref->load("video", at::kFloat), w.tolerance("video"),
                     "binary video");
  EXPECT_TRUE(std::filesystem::file_size(dir.file("out.mp4")) > 0);
}

// Image-to-video through the registry: WanImageToVideoPipeline on an assembled folder (with
// image_encoder/), the fixture's image as the first frame, the recorded initial latents: the
// CLIP embeddings, the VAE condition and the denoising all inside the pipeline.
TEST(WanPipelineParity, ImageToVideoThroughTheRegistry) {
  GENVIS_REQUIRE_FIXTURES();
  const WanCase w("e2e_wan_i2v");
  test::TempDir dir;
  auto pipeline = load_pipeline({.model = assemble_wan_folder(dir, w, true)});
  EXPECT_EQ(pipeline->info().class_name, "WanImageToVideoPipeline");
  Request r;
  r.prompt = w.cfg.at("prompt"), r.negative_prompt = w.cfg.at("negative_prompt");
  r.steps = w.cfg.at("num_inference_steps").get<int64_t>();
  r.guidance = w.cfg.at("guidance_scale").get<double>();
  r.num_frames = w.cfg.at("num_frames").get<int64_t>();
  r.extras = {{"max_sequence_length", w.cfg.at("max_sequence_length")}};
  r.init_image = w.ref->load("image", at::kFloat) * 2 - 1;  // the size comes from the image
  r.init_noise = w.ref->load("init_latents", at::kFloat);
  const Result out = pipeline->generate(r);
  ASSERT_TRUE(out.is_video());
  test::expect_close(out.samples, w.ref->load("video", at::kFloat), w.tolerance("video"), "pipeline video");
  // A first frame of another size is resized to --width x --height (here the image doubled by
  // repeating pixels: resized back, it is the original softened by the antialiasing filter).
  r.width = w.cfg.at("width").get<int64_t>(), r.height = w.cfg.at("height").get<int64_t>();
  r.init_image = (w.ref->load("image", at::kFloat) * 2 - 1).repeat_interleave(2, 2).repeat_interleave(2, 3);
  const Result resized = pipeline->generate(r);
  ASSERT_EQ(resized.samples.sizes(), out.samples.sizes());
  const double drift = (resized.samples - out.samples).abs().max().item<double>();
  EXPECT_GT(drift, 0);
  EXPECT_LT(drift, 0.1);
  // No first frame: refused before any work.
  r.init_image = at::Tensor();
  try {
    pipeline->generate(r);
    ADD_FAILURE() << "an image-to-video request without an image was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("needs the first frame"), std::string::npos) << e.what();
  }
}

// The same through the binary: --init-image with the fixture's exact image (a .safetensors
// 'image' in [0,1], read without 8-bit rounding), --init-noise, --dump; a WebP is written.
TEST(WanPipelineParity, ImageToVideoThroughTheBinary) {
  GENVIS_REQUIRE_FIXTURES();
  if (!std::filesystem::exists(GENVIS_CLI)) GTEST_SKIP() << "the genvis binary is not built";
  const WanCase w("e2e_wan_i2v");
  test::TempDir dir;
  const std::string root = assemble_wan_folder(dir, w, true);
  io::save_safetensors(dir.file("noise.safetensors"), {{"latents", w.ref->load("init_latents", at::kFloat)}});
  io::save_safetensors(dir.file("image.safetensors"), {{"image", w.ref->load("image", at::kFloat)}});
  const auto q = test::shell_quote;
  const auto r = test::run_command(std::string(GENVIS_CLI) + generate_args(w) + " --model " + q(root) +
                                   " --init-image " + q(dir.file("image.safetensors")) + " --init-noise " +
                                   q(dir.file("noise.safetensors")) + " --dump " + q(dir.file("dump.safetensors")) +
                                   " -o " + q(dir.file("out.webp")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto dump = io::open_weights(dir.file("dump.safetensors"));
  test::expect_close(dump->load("image", at::kFloat), w.ref->load("video", at::kFloat), w.tolerance("video"),
                     "binary video");
  EXPECT_TRUE(std::filesystem::file_size(dir.file("out.webp")) > 0);
}

// Bad input through the binary (issue 16): each refusal is one clear line naming the problem,
// with the documented exit code (2 usage, 3 load), before any sampling.
TEST(WanPipelineParity, BadVideoRequestsThroughTheBinary) {
  GENVIS_REQUIRE_FIXTURES();
  if (!std::filesystem::exists(GENVIS_CLI)) GTEST_SKIP() << "the genvis binary is not built";
  const WanCase t2v("e2e_wan_t2v"), i2v("e2e_wan_i2v");
  test::TempDir dir;
  const std::string t2v_root = assemble_wan_folder(dir, t2v), i2v_root = assemble_wan_folder(dir, i2v, true);
  io::save_safetensors(dir.file("image.safetensors"), {{"image", i2v.ref->load("image", at::kFloat)}});
  test::write_bytes(dir.file("broken.mp4"), std::string("\0\0\0\x18" "ftypmp42 this is not a video", 32));
  // A T2V folder without its tokenizer, an I2V folder without its image encoder.
  const std::string no_tokenizer = dir.file("no-tokenizer"), no_encoder = dir.file("no-encoder");
  for (const auto& [copy, from, drop] : {std::tuple{no_tokenizer, t2v_root, "tokenizer"},
                                         std::tuple{no_encoder, i2v_root, "image_encoder"}}) {
    std::filesystem::create_directory(copy);
    for (const auto& e : std::filesystem::directory_iterator(from))
      if (e.path().filename() != drop)
        std::filesystem::copy(e.path(), std::filesystem::path(copy) / e.path().filename(),
                              std::filesystem::copy_options::copy_symlinks | std::filesystem::copy_options::recursive);
  }
  const auto q = test::shell_quote;
  const std::string quick = " generate -p 'a fox' --steps 1 --extras '{\"max_sequence_length\": 8}' -o " +
                            q(dir.file("x.mp4"));
  struct Case {
    std::string args;
    int exit_code;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases = {
      {" --model " + q(t2v_root) + " --frames 8 --width 32 --height 32", 2, {"4k + 1", "nearest 5 or 9"}},
      {" --model " + q(t2v_root) + " --frames 5 --width 40 --height 32", 2, {"multiples of 16", "40x32"}},
      {" --model " + q(t2v_root) + " --frames 5 --init-image " + q(dir.file("image.safetensors")), 2,
       {"WanPipeline (wan2.1) does not support starting from an image"}},
      {" --model " + q(i2v_root) + " --frames 5 --width 32 --height 32", 2, {"needs the first frame"}},
      {" --model " + q(no_tokenizer) + " --frames 5 --width 32 --height 32", 3, {"no tokenizer/ folder"}},
      {" --model " + q(no_encoder) + " --frames 5 --init-image " + q(dir.file("image.safetensors")), 3,
       {"no image_encoder/ folder"}},
      {" --model " + q(t2v_root) + " --init-video " + q(dir.file("broken.mp4")), 3, {"broken.mp4"}},
  };
  for (const auto& c : cases) {
    const auto r = test::run_command(std::string(GENVIS_CLI) + quick + c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args << "\n" << r.err;
    for (const auto& want : c.says) EXPECT_NE(r.err.find(want), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("x.mp4"))) << c.args;
  }
}

// Video-to-video (diffusers' WanVideoToVideoPipeline): the init video's VAE posterior sampled
// with the given posterior noise, normalised, noised to the first sigma that runs at
// `strength`, then the remaining steps. Built here from the tested parts and compared with the
// registered pipeline; the posterior noise must matter.
TEST(WanPipelineParity, VideoToVideoNoisesThePosteriorSampleToTheFirstSigma) {
  GENVIS_REQUIRE_FIXTURES();
  const WanCase w("e2e_wan_t2v");
  test::TempDir dir;
  auto pipeline = load_pipeline({.model = assemble_wan_folder(dir, w)});
  const at::Tensor video = w.ref->load("video", at::kFloat) * 2 - 1;  // any [1,3,T,H,W] video
  const at::Tensor noise = w.ref->load("init_latents", at::kFloat);
  const double strength = 0.5;
  Request r;
  r.prompt = w.cfg.at("prompt"), r.negative_prompt = w.cfg.at("negative_prompt");
  r.steps = w.cfg.at("num_inference_steps").get<int64_t>();
  r.guidance = w.cfg.at("guidance_scale").get<double>();
  r.extras = {{"max_sequence_length", w.cfg.at("max_sequence_length")}};
  r.init_video = video;
  r.strength = strength;
  r.init_noise = noise;
  r.posterior_noise = at::flip(noise, {4});
  const Result out = pipeline->generate(r);

  auto vae = models::load_autoencoder_kl_wan(model_folder("wan21_vae"));
  torch::NoGradGuard no_grad;
  const auto posterior = vae->encode(video);
  const at::Tensor x0 = (posterior.sample(r.posterior_noise) - vae->latents_mean()) / vae->latents_std();
  WanDenoiseInputs in = w.inputs(load_transformer("wan21_transformer"), nullptr);
  DiffusionPlan plan = plan_diffusion(in.scheduler, in.sampler, "default", in.steps);
  plan.skip_for_strength(strength);
  const double sigma = plan.sigmas.front();
  EXPECT_GT(sigma, 0);
  EXPECT_LT(sigma, 1);
  in.latents = x0 * (1 - sigma) + noise * sigma;
  in.strength = strength;
  test::expect_close(out.latents, wan_denoise(in), w.tolerance("latents"), "video-to-video latents");

  r.posterior_noise = at::Tensor();  // seeded instead: another sample, another result
  const Result seeded = pipeline->generate(r);
  EXPECT_GT((seeded.latents - out.latents).abs().max().item<double>(), 1e-4);
}

// Video-to-video through the binary (the init video a folder of PNG frames, --strength 1, a
// seed for the posterior sample) gives what the registered pipeline gives for the same request.
// At strength 1 the first sigma is flow_shift-mapped 0.999 (diffusers' flow sigmas start at
// 1 - 1/num_train_timesteps), so the result is nearly, not exactly, text-to-video's.
TEST(WanPipelineParity, VideoToVideoThroughTheBinary) {
  GENVIS_REQUIRE_FIXTURES();
  if (!std::filesystem::exists(GENVIS_CLI)) GTEST_SKIP() << "the genvis binary is not built";
  const WanCase w("e2e_wan_t2v");
  test::TempDir dir;
  const std::string root = assemble_wan_folder(dir, w);
  const at::Tensor noise = w.ref->load("init_latents", at::kFloat);
  io::save_safetensors(dir.file("noise.safetensors"), {{"latents", noise}});
  // Any video of the right size and length: the reference video upside down.
  io::write_video(dir.file("init/"), at::flip(w.ref->load("video", at::kFloat)[0], {2}), 16, {});
  const auto q = test::shell_quote;
  const auto r = test::run_command(std::string(GENVIS_CLI) + generate_args(w) + " --model " + q(root) +
                                   " --init-video " + q(dir.file("init")) + " --strength 1 --seed 7 --init-noise " +
                                   q(dir.file("noise.safetensors")) + " --dump " + q(dir.file("dump.safetensors")) +
                                   " -o " + q(dir.file("out")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const at::Tensor binary = io::open_weights(dir.file("dump.safetensors"))->load("image", at::kFloat);
  EXPECT_EQ(io::read_video(dir.file("out")).frames.size(1), w.cfg.at("num_frames").get<int64_t>());

  Request req;
  req.prompt = w.cfg.at("prompt"), req.negative_prompt = w.cfg.at("negative_prompt");
  req.steps = w.cfg.at("num_inference_steps").get<int64_t>();
  req.guidance = w.cfg.at("guidance_scale").get<double>();
  req.extras = {{"max_sequence_length", w.cfg.at("max_sequence_length")}};
  req.init_video = (io::read_video(dir.file("init")).frames * 2 - 1).unsqueeze(0);
  req.strength = 1.0;
  req.seed = 7;
  req.init_noise = noise;
  const Result library = load_pipeline({.model = root})->generate(req);
  test::expect_close(binary, library.samples, w.tolerance("video"), "binary vs library video-to-video");
  const double from_t2v = (binary - w.ref->load("video", at::kFloat)).abs().max().item<double>();
  EXPECT_GT(from_t2v, 0);
  EXPECT_LT(from_t2v, 0.02);
}

}  // namespace
}  // namespace genvis::pipelines
