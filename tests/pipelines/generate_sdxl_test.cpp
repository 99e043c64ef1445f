// SDXL through the pipeline, on a tiny SDXL assembled from the fixture components (CLIP-L 16 +
// bigG 16 = the UNet's 32-wide context; 6 time ids x 8 + 16 pooled = its 64-wide added input).
// One Euler step is checked against the UNet called by hand with independently built inputs.
#include "core/error.h"
#include "core/rng.h"
#include "pipelines/stable_diffusion.h"
#include "schedulers/schedule.h"
#include "support/test_support.h"

#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

ModelSource sdxl_source() {
  ModelSource source;
  const std::string f = test::fixtures_dir();
  source.text_encoder = f + "/clip_l";
  source.text_encoder_2 = f + "/clip_g";
  source.unet = f + "/unet_sdxl";
  source.vae = f + "/vae";
  source.vocab = test::clip_vocab();
  return source;
}

GenerateOptions one_step(const StableDiffusion& model) {
  GenerateOptions o;
  o.prompt = "a red apple";
  o.negative_prompt = "blurry";
  o.sampler = "euler";
  o.steps = 1;
  o.width = 32;
  o.height = 24;
  o.cfg_scale = 1.0;  // the conditional prediction only
  o.init_noise = Rng(3).randn({1, model.vae->config.latent_channels, 3, 4}, at::TensorOptions());
  return o;
}

TEST(GenerateSdxl, OneEulerStepEqualsTheUnetCalledByHand) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = load_stable_diffusion(sdxl_source());
  ASSERT_TRUE(model.is_sdxl());
  const GenerateOptions o = one_step(model);
  const GenerateResult r = generate(model, o);

  torch::NoGradGuard no_grad;
  // Inputs built without the pipeline's chunking code: plain 77-token rows, pad EOS / pad 0.
  const auto ids = [&](int64_t pad) {
    return torch::tensor(model.tokenizer->encode_padded(o.prompt, pad), at::kLong).unsqueeze(0);
  };
  const auto l = model.text_encoder(ids(tokenizers::CLIPTokenizer::kEosId));
  const auto g = model.text_encoder_2(ids(0));
  const at::Tensor context = at::cat({l.hidden_states[l.hidden_states.size() - 2],
                                      g.hidden_states[g.hidden_states.size() - 2]}, -1);
  const at::Tensor time_ids = torch::tensor({24.f, 32.f, 0.f, 0.f, 24.f, 32.f}).unsqueeze(0);
  const auto schedule = schedulers::euler_schedule(model.scheduler, 1, schedulers::SigmaSpacing::Default);
  const double sigma = schedule.sigmas.front();
  const at::Tensor x = o.init_noise * schedule.init_noise_sigma;
  const at::Tensor eps = model.unet->forward(x / std::sqrt(sigma * sigma + 1),
                                             torch::tensor({static_cast<float>(schedule.timesteps.front())}),
                                             context, models::UNetAddedConditions{g.text_embeds, time_ids});
  const at::Tensor expected = x - sigma * eps;  // Euler to sigma 0 lands on the denoised estimate
  EXPECT_LE((r.latents - expected).abs().max().item<float>(), 1e-4 * (1 + expected.abs().max().item<float>()));
}

TEST(GenerateSdxl, TimeIdsAndEmptyNegativePromptAreUsed) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = load_stable_diffusion(sdxl_source());
  GenerateOptions o = one_step(model);
  o.steps = 2;
  o.cfg_scale = 5.0;
  const at::Tensor base = generate(model, o).latents;
  o.original_size = std::pair<int64_t, int64_t>{1024, 1024};
  EXPECT_GT((generate(model, o).latents - base).abs().max().item<float>(), 1e-5) << "original size ignored";
  o.original_size.reset();
  EXPECT_TRUE(at::equal(generate(model, o).latents, base)) << "not deterministic";

  // An empty negative prompt conditions on zeros unless the model index says otherwise.
  o.negative_prompt = "";
  const at::Tensor zeros = generate(model, o).latents;
  model.force_zeros_for_empty_prompt = false;
  const at::Tensor encoded_empty = generate(model, o).latents;
  EXPECT_GT((zeros - encoded_empty).abs().max().item<float>(), 1e-5);
}

TEST(GenerateSdxl, MismatchedComponentsAreRefused) {
  GENVIS_REQUIRE_FIXTURES();
  ModelSource source = sdxl_source();
  source.text_encoder_2.clear();
  try {
    load_stable_diffusion(source);
    FAIL() << "an SDXL UNet without a second text encoder loaded";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--text-encoder-2"), std::string::npos) << e.what();
  }
  source = sdxl_source();
  source.unet = test::fixtures_dir() + "/unet_sd1";
  EXPECT_THROW(load_stable_diffusion(source), UsageError);  // second encoder but not an SDXL UNet
}

}  // namespace
}  // namespace genvis::pipelines
