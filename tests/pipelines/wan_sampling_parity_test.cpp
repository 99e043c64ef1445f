// Wan 2.1 text-to-video up to the VAE (fixture "e2e_wan_t2v", diffusers 0.33.1 WanPipeline):
// the prompt and negative prompt through the T5 tokenizer and UMT5, then CFG + UniPC on the tiny
// transformer from the recorded initial latents, every step's latents, and the denormalised
// latents the VAE decodes. Settings, prompts and sizes all come from the manifest case.
#include "io/weights.h"
#include "core/error.h"
#include "models/clip_vision/clip_vision_model.h"
#include "models/umt5/umt5_encoder.h"
#include "models/wan/wan_transformer.h"
#include "nn/state_dict.h"
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
  // Denoise inputs from the config (prompts encoded, recorded initial latents), and a check of
  // every step's latents against latents_<i+1>.
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
    in.options.on_latents = [this, checked, tol = tolerance("latents")](int64_t i, const at::Tensor& x,
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
  const std::string folder = model_folder(case_name);
  models::WanTransformer3DModel dit(models::WanTransformer3DConfig::from_file(folder + "/config.json"));
  const auto weights = io::open_weights(folder + "/diffusion_pytorch_model.safetensors");
  nn::load_state_dict(*dit, *weights, {.dtype = at::kFloat});
  dit->eval();
  return dit;
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
  test::expect_close(wan_denormalize(z, mean, std), w.ref->load("latents_denormalized", at::kFloat),
                     w.tolerance("latents"), "latents_denormalized");
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
  EXPECT_TRUE(at::equal(wan_i2v_mask(condition.size(2), condition.size(3), condition.size(4)),
                        condition.slice(1, 0, 4)));

  int64_t checked = 0;
  WanDenoiseInputs in = w.inputs(load_transformer("wan21_i2v_transformer"), &checked);
  in.image_embeds = image_embeds;
  in.condition = condition;
  wan_denoise(in);
  EXPECT_EQ(checked, in.steps);
  // Without the condition the I2V transformer's channels do not add up: one clear error.
  in.condition = at::Tensor();
  EXPECT_THROW(wan_denoise(in), UsageError);
}

}  // namespace
}  // namespace genvis::pipelines
