// PLMS: the pseudo linear multistep part of PNDM (diffusers PNDMScheduler with skip_prk_steps).
#include "schedulers/samplers.h"

#include "core/error.h"

#include <cmath>
#include <deque>

namespace genvis::schedulers {
namespace {

// PNDM's transfer x_t -> x_prev given an eps estimate (Liu et al. 2022, eq. 11).
at::Tensor prev_sample(const DiscreteSchedule& s, const at::Tensor& x, int64_t t, int64_t prev, const at::Tensor& eps) {
  const float a_t = s.alpha_at(t), a_prev = s.alpha_at(prev);
  const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
  const float sample_coeff = std::sqrt(a_prev / a_t);
  const float denom = a_t * std::sqrt(b_prev) + std::sqrt(a_t * b_t * a_prev);
  return x * sample_coeff - eps * (a_prev - a_t) / denom;
}

}  // namespace

// Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds" (PLMS).
at::Tensor sample_plms(const VPDenoiser& denoise, at::Tensor x, const DiscreteSchedule& schedule,
                       const StepCallback& callback) {
  if (schedule.timesteps.empty() || schedule.timesteps.size() != schedule.prev_timesteps.size())
    throw UsageError("sample_plms: empty or inconsistent timestep schedule");
  std::deque<at::Tensor> ets;  // eps history, newest last; the Heun half-step's eps is not kept
  for (size_t i = 0; i < schedule.timesteps.size(); ++i) {
    const int64_t t = schedule.timesteps[i], prev = schedule.prev_timesteps[i];
    const VPPrediction p = denoise(x, t);
    ets.push_back(p.eps);
    if (ets.size() > 4) ets.pop_front();
    const size_t n = ets.size();
    at::Tensor eps;
    if (n == 1) {
      // First step: Heun-like, eps averaged with a second call at the landing point.
      const at::Tensor x_1 = prev_sample(schedule, x, t, prev, p.eps);
      eps = (denoise(x_1, prev >= 0 ? prev : t).eps + p.eps) / 2;
    } else if (n == 2) {
      eps = (ets[1] * 3 - ets[0]) / 2;
    } else if (n == 3) {
      eps = (ets[2] * 23 - ets[1] * 16 + ets[0] * 5) / 12;
    } else {
      eps = (ets[3] * 55 - ets[2] * 59 + ets[1] * 37 - ets[0] * 9) * (1.0 / 24);
    }
    x = prev_sample(schedule, x, t, prev, eps);
    if (callback) callback(static_cast<int64_t>(i), x, p.x0);
  }
  return x;
}

}  // namespace genvis::schedulers
