#include "pipelines/wan/wan_sampling.h"

#include "core/error.h"
#include "core/rng.h"
#include "pipelines/common/noise.h"
#include "tokenizers/prompt_clean.h"

#include <torch/torch.h>

namespace genvis::pipelines {

at::Tensor wan_encode_prompt(const tokenizers::T5Tokenizer& tokenizer, models::UMT5EncoderModel& encoder,
                             const std::string& prompt, int64_t max_sequence_length) {
  const auto e = tokenizer.encode_padded(tokenizers::prompt_clean(prompt), max_sequence_length);
  const auto device = encoder->shared->weight.device();
  const at::Tensor ids = at::tensor(e.input_ids, at::kLong).unsqueeze(0).to(device);
  const at::Tensor mask = at::tensor(e.attention_mask, at::kLong).unsqueeze(0).to(device);
  torch::NoGradGuard no_grad;
  return models::wan_prompt_embeds(encoder->forward(ids, mask).last_hidden_state, mask, max_sequence_length);
}

at::Tensor wan_video_latents(models::AutoencoderKLWan& vae, const at::Tensor& init_video,
                             const at::Tensor& posterior_noise, uint64_t seed, const at::Device& device) {
  const auto posterior = vae->encode(init_video.to(at::kFloat).to(device));
  const at::Tensor eps = posterior_noise.defined()
                             ? posterior_noise.to(at::kFloat).to(device)
                             : Rng(sampler_seed(seed)).randn(posterior.mean.sizes(), at::kFloat).to(device);
  if (eps.sizes() != posterior.mean.sizes())
    throw UsageError("posterior_noise must have the latent shape " + c10::str(posterior.mean.sizes()));
  return (posterior.sample(eps) - vae->latents_mean().to(device)) / vae->latents_std().to(device);
}

at::Tensor wan_denoise(const WanDenoiseInputs& in) {
  const auto& config = in.transformer->config;
  if (in.scheduler.prediction_type != "flow")
    throw UsageError("Wan's scheduler must be a flow-matching one (prediction_type flow_prediction), got " +
                     in.scheduler.prediction_type);
  if (in.latents.dim() != 5 || in.latents.size(0) != 1)
    throw UsageError("Wan latents must be [1,C,F,H,W]");
  const bool cfg = in.guidance > 1.0;
  if (cfg && !in.uncond.defined()) throw UsageError("guidance > 1 needs the negative prompt's embeddings");
  const int64_t extra = in.condition.defined() ? in.condition.size(1) : 0;
  if (in.latents.size(1) + extra != config.in_channels)
    throw UsageError("the transformer takes " + std::to_string(config.in_channels) + " channels; latents (" +
                     std::to_string(in.latents.size(1)) + ") and condition (" + std::to_string(extra) +
                     ") give " + std::to_string(in.latents.size(1) + extra) +
                     (config.is_i2v() ? " (an image-to-video model needs an init image)" : ""));

  DiffusionPlan plan = plan_diffusion(in.scheduler, in.sampler, "default", in.steps);
  if (in.strength) plan.skip_for_strength(*in.strength);
  auto dit = in.transformer;
  // The conditional and unconditional passes each keep their own first-block cache.
  models::WanBlockCache cond_cache{in.cache_threshold}, uncond_cache{in.cache_threshold};
  const bool caching = in.cache_threshold > 0;
  const schedulers::Network network = [&](const at::Tensor& x, double t) {
    torch::NoGradGuard no_grad;
    const at::Tensor model_input = in.condition.defined() ? at::cat({x, in.condition.to(x.scalar_type())}, 1) : x;
    const at::Tensor timestep = at::full({1}, t, at::kFloat);
    const at::Tensor cond = dit->forward(model_input, timestep, in.cond, in.image_embeds, caching ? &cond_cache : nullptr);
    if (!cfg) return cond;
    const at::Tensor uncond =
        dit->forward(model_input, timestep, in.uncond, in.image_embeds, caching ? &uncond_cache : nullptr);
    return uncond + (cond - uncond) * in.guidance;  // diffusers: v_u + g * (v_c - v_u)
  };
  const schedulers::NoiseSource no_noise = [](at::IntArrayRef) -> at::Tensor {
    throw UsageError("Wan's samplers draw no noise while sampling");
  };
  return run_diffusion(plan, in.scheduler, network, in.latents * static_cast<float>(plan.init_noise_sigma()), no_noise,
                       in.callbacks, in.options);
}

namespace {

// mean and 1/std as float32 [1, C, 1, ...] for `latents` (diffusers builds both from float32
// tensors of the config's lists).
std::pair<at::Tensor, at::Tensor> mean_and_inv_std(const at::Tensor& latents, const std::vector<double>& latents_mean,
                                                   const std::vector<double>& latents_std) {
  const int64_t c = latents.size(1);
  if (static_cast<int64_t>(latents_mean.size()) != c || static_cast<int64_t>(latents_std.size()) != c)
    throw UsageError("latents_mean/latents_std have " + std::to_string(latents_mean.size()) + "/" +
                     std::to_string(latents_std.size()) + " entries for " + std::to_string(c) + " latent channels");
  std::vector<int64_t> shape(static_cast<size_t>(latents.dim()), 1);
  shape[1] = c;
  const at::Tensor mean = at::tensor(latents_mean, at::kDouble).to(at::kFloat).view(shape);
  const at::Tensor inv_std = 1.0 / at::tensor(latents_std, at::kDouble).to(at::kFloat).view(shape);
  return {mean.to(latents.device()), inv_std.to(latents.device())};
}

}  // namespace

at::Tensor wan_denormalize(const at::Tensor& latents, const std::vector<double>& latents_mean,
                           const std::vector<double>& latents_std) {
  const auto [mean, inv_std] = mean_and_inv_std(latents, latents_mean, latents_std);
  return latents.to(at::kFloat) / inv_std + mean;
}

at::Tensor wan_i2v_mask(int64_t latent_frames, int64_t height, int64_t width) {
  // Channel k of latent frame j covers pixel frame max(0, 4j + k - 3): only frame 0 is known.
  at::Tensor mask = at::zeros({1, 4, latent_frames, height, width}, at::kFloat);
  mask.select(2, 0).fill_(1.0);
  return mask;
}

at::Tensor wan_i2v_condition(const at::Tensor& z, const std::vector<double>& latents_mean,
                             const std::vector<double>& latents_std) {
  const auto [mean, inv_std] = mean_and_inv_std(z, latents_mean, latents_std);
  const at::Tensor normed = (z.to(at::kFloat) - mean) * inv_std;
  return at::cat({wan_i2v_mask(z.size(2), z.size(3), z.size(4)).to(z.device()), normed}, 1);
}

}  // namespace genvis::pipelines
