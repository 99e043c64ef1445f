// DDIM and DDPM in timestep space over alphas_cumprod (float32 scalars, as diffusers).
#include "schedulers/samplers.h"

#include "core/error.h"

#include <cmath>

namespace genvis::schedulers {

namespace {

void check_schedule(const DiscreteSchedule& s, const char* who) {
  if (s.timesteps.empty() || s.timesteps.size() != s.prev_timesteps.size() || !s.alphas_cumprod.defined())
    throw UsageError(std::string(who) + ": empty or inconsistent timestep schedule");
}

}  // namespace

// Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12.
at::Tensor sample_ddim(const VPDenoiser& denoise, at::Tensor x, const DiscreteSchedule& schedule, double eta,
                       const NoiseSource& noise, const StepCallback& callback) {
  check_schedule(schedule, "sample_ddim");
  for (size_t i = 0; i < schedule.timesteps.size(); ++i) {
    const VPPrediction p = denoise(x, schedule.timesteps[i]);
    const float a_t = schedule.alpha_at(schedule.timesteps[i]);
    const float a_prev = schedule.alpha_at(schedule.prev_timesteps[i]);
    const float variance = ((1.0f - a_prev) / (1.0f - a_t)) * (1.0f - a_t / a_prev);
    const float std_dev = static_cast<float>(eta) * std::sqrt(variance);
    x = p.x0 * std::sqrt(a_prev) + p.eps * std::sqrt(1.0f - a_prev - std_dev * std_dev);
    if (eta > 0) x = x + draw_noise(noise, x, "sample_ddim") * std_dev;
    if (callback) callback(static_cast<int64_t>(i), x, p.x0);
  }
  return x;
}

// Ho et al. 2020, "Denoising Diffusion Probabilistic Models", eq. 7 (fixed_small variance).
at::Tensor sample_ddpm(const VPDenoiser& denoise, at::Tensor x, const DiscreteSchedule& schedule,
                       const NoiseSource& noise, const StepCallback& callback) {
  check_schedule(schedule, "sample_ddpm");
  for (size_t i = 0; i < schedule.timesteps.size(); ++i) {
    const int64_t t = schedule.timesteps[i], prev = schedule.prev_timesteps[i];
    const VPPrediction p = denoise(x, t);
    const float a_t = schedule.alpha_at(t);
    const float a_prev = prev >= 0 ? schedule.alpha_at(prev) : 1.0f;  // diffusers DDPM ends at alpha 1
    const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    const float current_alpha = a_t / a_prev, current_beta = 1.0f - current_alpha;
    x = p.x0 * (std::sqrt(a_prev) * current_beta / b_t) + x * (std::sqrt(current_alpha) * b_prev / b_t);
    if (t > 0) {
      const float variance = std::max(b_prev / b_t * current_beta, 1e-20f);
      x = x + draw_noise(noise, x, "sample_ddpm") * std::sqrt(variance);
    }
    if (callback) callback(static_cast<int64_t>(i), x, p.x0);
  }
  return x;
}

}  // namespace genvis::schedulers
