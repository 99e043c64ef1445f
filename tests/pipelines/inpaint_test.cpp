// Inpainting: latent blending for ordinary UNets (the kept region lands exactly on the image's
// latents) and mask + masked-image conditioning for 9-channel inpainting UNets.
#include "core/error.h"
#include "core/rng.h"
#include "pipelines/stable_diffusion.h"
#include "schedulers/schedule.h"
#include "support/test_support.h"
#include "support/tiny_models.h"

#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

StableDiffusion tiny_inpaint_model() { return test::tiny_sd1_model(); }

// 32x24 pixels -> 4x3 latents. The image is smooth so its latents are well defined.
GenerateOptions inpaint_options() {
  GenerateOptions o;
  o.prompt = "a red apple";
  o.sampler = "euler";
  o.steps = 4;
  o.width = 32;
  o.height = 24;
  o.seed = 11;
  o.strength = 1.0;
  o.init_image = at::linspace(-0.8, 0.8, 32).view({1, 1, 1, 32}).expand({1, 3, 24, 32}).contiguous();
  o.posterior_noise = Rng(5).randn({1, 4, 3, 4}, at::TensorOptions());
  o.mask = at::zeros({1, 1, 24, 32});
  return o;
}

at::Tensor image_latents(StableDiffusion& model, const at::Tensor& image, const at::Tensor& eps) {
  torch::NoGradGuard no_grad;
  return model.vae->encode(image).sample(eps) * model.vae->config.scaling_factor;
}

TEST(Inpaint, KeptRegionLandsOnTheImageLatentsAndTheMaskedRegionIsRepainted) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = tiny_inpaint_model();
  GenerateOptions o = inpaint_options();
  o.mask.narrow(3, 0, 16).fill_(1.0);  // repaint the left half = latent columns 0 and 1
  const GenerateResult r = generate(model, o);
  const at::Tensor expected = image_latents(model, o.init_image, o.posterior_noise);
  const at::Tensor kept = (r.latents - expected).narrow(3, 2, 2).abs().max();
  EXPECT_LE(kept.item<float>(), 1e-5);
  const at::Tensor repainted = (r.latents - expected).narrow(3, 0, 2).abs().max();
  EXPECT_GT(repainted.item<float>(), 0.05);
}

TEST(Inpaint, FullMaskAtFullStrengthIsTxt2Img) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = tiny_inpaint_model();
  GenerateOptions o = inpaint_options();
  o.mask.fill_(1.0);
  const GenerateResult inpainted = generate(model, o);
  GenerateOptions t = inpaint_options();
  t.init_image = at::Tensor();
  t.mask = at::Tensor();
  t.posterior_noise = at::Tensor();
  const GenerateResult txt2img = generate(model, t);
  EXPECT_LE((inpainted.latents - txt2img.latents).abs().max().item<float>(), 1e-5);
}

TEST(Inpaint, NineChannelUnetGetsMaskAndMaskedImageLatents) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = tiny_inpaint_model();
  models::UNet2DConditionConfig config = model.unet->config;
  config.in_channels = 9;
  torch::manual_seed(0);
  model.unet = models::UNet2DConditionModel(config);
  model.unet->eval();
  ASSERT_TRUE(model.is_inpainting());

  GenerateOptions o = inpaint_options();
  o.steps = 1;
  o.cfg_scale = 1.0;
  o.mask.narrow(2, 0, 8).fill_(0.7);  // top third (latent row 0), binarised to 1
  o.init_noise = Rng(2).randn({1, 4, 3, 4}, at::TensorOptions());
  const GenerateResult r = generate(model, o);

  torch::NoGradGuard no_grad;
  const at::Tensor latent_mask = at::zeros({1, 1, 3, 4});
  latent_mask.narrow(2, 0, 1).fill_(1.0);
  const at::Tensor masked_image = o.init_image.clone();
  masked_image.narrow(2, 0, 8).zero_();
  const at::Tensor masked_latents = image_latents(model, masked_image, o.posterior_noise);
  const auto ids = torch::tensor(model.tokenizer->encode_padded(o.prompt, tokenizers::CLIPTokenizer::kEosId), at::kLong);
  const at::Tensor context = model.text_encoder(ids.unsqueeze(0)).last_hidden_state;
  const auto schedule = schedulers::euler_schedule(model.scheduler, 1, schedulers::SigmaSpacing::Default);
  const double sigma = schedule.sigmas.front();
  const at::Tensor x = o.init_noise * schedule.init_noise_sigma;  // strength 1: pure noise
  const at::Tensor in = at::cat({x / std::sqrt(sigma * sigma + 1), latent_mask, masked_latents}, 1);
  const at::Tensor eps =
      model.unet->forward(in, torch::tensor({static_cast<float>(schedule.timesteps.front())}), context);
  const at::Tensor expected = x - sigma * eps;
  EXPECT_LE((r.latents - expected).abs().max().item<float>(), 1e-4 * (1 + expected.abs().max().item<float>()));

  GenerateOptions no_mask = inpaint_options();
  no_mask.mask = at::Tensor();
  EXPECT_THROW(generate(model, no_mask), UsageError);  // an inpainting UNet needs a mask
}

TEST(Inpaint, BadMasksAreRefused) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = tiny_inpaint_model();
  GenerateOptions o = inpaint_options();
  o.init_image = at::Tensor();
  EXPECT_THROW(o.validate(), UsageError);  // mask without an image
  o = inpaint_options();
  o.mask = at::zeros({1, 1, 16, 32});
  try {
    o.validate();
    FAIL() << "a 32x16 mask for a 32x24 image was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("32x16"), std::string::npos) << e.what();
  }
  o = inpaint_options();
  o.sampler = "ddim";
  EXPECT_THROW(generate(model, o), UsageError);
}

}  // namespace
}  // namespace genvis::pipelines
