// Wan 2.1's generation steps that do not touch the VAE, as diffusers' WanPipeline does them:
// prompt -> UMT5 embeddings cut to their length and zero-padded, then the flow denoise loop with
// classifier-free guidance (two batch-1 transformer calls, conditional first) under UniPC or
// flow Euler, and the per-channel latent denormalisation before decoding.
//
//   at::Tensor cond = wan_encode_prompt(tokenizer, umt5, "a cat on a beach", 512);      // [1,512,C]
//   at::Tensor uncond = wan_encode_prompt(tokenizer, umt5, negative_prompt, 512);
//   at::Tensor z = wan_denoise({.transformer = dit, .cond = cond, .uncond = uncond, .latents = noise,
//                               .scheduler = config, .steps = 50, .guidance = 5.0});
//   at::Tensor vae_input = wan_denormalize(z, latents_mean, latents_std);
#pragma once
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "models/umt5/umt5_encoder.h"
#include "models/wan/wan_transformer.h"
#include "pipelines/common/diffusion_loop.h"
#include "tokenizers/t5_tokenizer.h"

#include <string>
#include <vector>

namespace genvis::pipelines {

// prompt_clean -> T5 ids padded/truncated to max_sequence_length with the attention mask ->
// UMT5 last_hidden_state, each prompt's rows beyond its length zeroed: [1, max_sequence_length, C].
at::Tensor wan_encode_prompt(const tokenizers::T5Tokenizer& tokenizer, models::UMT5EncoderModel& encoder,
                             const std::string& prompt, int64_t max_sequence_length);

struct WanDenoiseInputs {
  models::WanTransformer3DModel transformer{nullptr};
  at::Tensor cond, uncond;          // [1, L, text_dim] each; uncond unused when guidance <= 1
  at::Tensor image_embeds;          // I2V: CLIP penultimate states [1, I, image_dim]
  at::Tensor condition;             // I2V: mask (4) + condition latents (16), [1, 20, F, H, W]
  at::Tensor latents;               // starting latents [1, 16, F, H, W] (unit noise: init_noise_sigma is 1)
  schedulers::NoiseScheduleConfig scheduler;  // a flow config (Wan's UniPC one)
  std::string sampler = "unipc";    // or "flow_euler"
  int64_t steps = 50;
  double guidance = 5.0;
  std::optional<double> strength;   // video-to-video: part of the schedule that runs
  double cache_threshold = 0;       // first-block cache (models::WanBlockCache; 0: off)
  Callbacks callbacks;
  DiffusionLoopOptions options;
};

// The denoised latents [1, 16, F, H, W]. UsageError for a non-flow scheduler or mismatched shapes.
at::Tensor wan_denoise(const WanDenoiseInputs& in);

// Image-to-video's first-frame mask [1, 4, latent_frames, h, w]: the pixel-frame mask (1 for frame
// 0) with frame 0 repeated 4 times, grouped 4 per latent frame: latent frame 0 all ones, the rest 0.
at::Tensor wan_i2v_mask(int64_t latent_frames, int64_t height, int64_t width);
// cat([mask, (z - mean) * (1 / std)], channels): the 20 channels concatenated to the noisy latents.
// z: the VAE posterior mean of [first frame, zeros...] [1, 16, latent_frames, h, w].
at::Tensor wan_i2v_condition(const at::Tensor& z, const std::vector<double>& latents_mean,
                             const std::vector<double>& latents_std);

// Video-to-video's clean latents: the VAE posterior of init_video [B,3,F,H,W] in [-1,1] sampled as
// diffusers' WanVideoToVideoPipeline does (retrieve_latents' default mode) with posterior_noise,
// or with noise seeded from sampler_seed(seed) when it is undefined, then normalised by the VAE's
// latents_mean/std. UsageError when posterior_noise has another shape than the latents.
at::Tensor wan_video_latents(models::AutoencoderKLWan& vae, const at::Tensor& init_video,
                             const at::Tensor& posterior_noise, uint64_t seed, const at::Device& device);

// latents / (1 / std) + mean per channel (diffusers divides by the float32 reciprocal).
at::Tensor wan_denormalize(const at::Tensor& latents, const std::vector<double>& latents_mean,
                           const std::vector<double>& latents_std);

}  // namespace genvis::pipelines
