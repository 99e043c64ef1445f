// Latent consistency model multistep sampling (diffusers LCMScheduler).
#include "schedulers/samplers.h"

#include "core/error.h"

#include <cmath>

namespace genvis::schedulers {

// Luo et al. 2023, "Latent Consistency Models", Alg. 3 (multistep consistency sampling).
at::Tensor sample_lcm(const VPDenoiser& denoise, at::Tensor x, const DiscreteSchedule& schedule,
                      const NoiseSource& noise, double timestep_scaling, const StepCallback& callback) {
  if (schedule.timesteps.empty() || schedule.timesteps.size() != schedule.prev_timesteps.size())
    throw UsageError("sample_lcm: empty or inconsistent timestep schedule");
  const size_t n = schedule.timesteps.size();
  for (size_t i = 0; i < n; ++i) {
    const int64_t t = schedule.timesteps[i];
    const VPPrediction p = denoise(x, t);
    // Boundary-condition scalings: c_skip(0) = 1, c_out(0) = 0 (sigma_data = 0.5).
    const float scaled = static_cast<float>(t) * static_cast<float>(timestep_scaling);
    const float c_skip = 0.25f / (scaled * scaled + 0.25f);
    const float c_out = scaled / std::sqrt(scaled * scaled + 0.25f);
    const at::Tensor denoised = p.x0 * c_out + x * c_skip;
    if (i + 1 < n) {
      const float a_prev = schedule.alpha_at(schedule.prev_timesteps[i]);
      const at::Tensor z = draw_noise(noise, x, "sample_lcm");
      x = denoised * std::sqrt(a_prev) + z * std::sqrt(1.0f - a_prev);
    } else {
      x = denoised;
    }
    if (callback) callback(static_cast<int64_t>(i), x, denoised);
  }
  return x;
}

}  // namespace genvis::schedulers
