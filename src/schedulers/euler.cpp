// First/second-order ODE samplers and the ancestral Euler, in sigma space (k-diffusion form).
// Scalars are float32 like the reference, where sigmas are float32 tensors.
#include "schedulers/samplers.h"

#include "core/error.h"

#include <cmath>

namespace genvis::schedulers {

namespace {

at::Tensor to_d(const at::Tensor& x, float sigma, const at::Tensor& denoised) { return (x - denoised) / sigma; }

}  // namespace

// Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models", Alg. 2 (Euler).
at::Tensor sample_euler(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                        const StepCallback& callback) {
  check_sigmas(sigmas, "sample_euler");
  for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
    const auto s = static_cast<float>(sigmas[i]), s_next = static_cast<float>(sigmas[i + 1]);
    const at::Tensor denoised = denoise(x, sigmas[i]);
    x = x + to_d(x, s, denoised) * (s_next - s);
    if (callback) callback(static_cast<int64_t>(i), x, denoised);
  }
  return x;
}

// Song et al. 2021, "Score-Based Generative Modeling through SDEs" (ancestral step of k-diffusion).
at::Tensor sample_euler_ancestral(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                                  const NoiseSource& noise, double eta, const StepCallback& callback) {
  check_sigmas(sigmas, "sample_euler_ancestral");
  for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
    const auto s = static_cast<float>(sigmas[i]), s_next = static_cast<float>(sigmas[i + 1]);
    const at::Tensor denoised = denoise(x, sigmas[i]);
    const float sigma_up =
        std::min(s_next, static_cast<float>(eta) * std::sqrt(s_next * s_next * (s * s - s_next * s_next) / (s * s)));
    const float sigma_down = std::sqrt(s_next * s_next - sigma_up * sigma_up);
    x = x + to_d(x, s, denoised) * (sigma_down - s);
    if (s_next > 0) x = x + draw_noise(noise, x, "sample_euler_ancestral") * sigma_up;
    if (callback) callback(static_cast<int64_t>(i), x, denoised);
  }
  return x;
}

// Karras et al. 2022, Alg. 2 (Heun's 2nd-order method, no churn).
at::Tensor sample_heun(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                       const StepCallback& callback) {
  check_sigmas(sigmas, "sample_heun");
  for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
    const auto s = static_cast<float>(sigmas[i]), s_next = static_cast<float>(sigmas[i + 1]);
    const at::Tensor denoised = denoise(x, sigmas[i]);
    const at::Tensor d = to_d(x, s, denoised);
    const float dt = s_next - s;
    if (s_next == 0) {
      x = x + d * dt;
    } else {
      const at::Tensor x_2 = x + d * dt;
      const at::Tensor d_2 = to_d(x_2, s_next, denoise(x_2, sigmas[i + 1]));
      x = x + (d + d_2) / 2 * dt;
    }
    if (callback) callback(static_cast<int64_t>(i), x, denoised);
  }
  return x;
}

// Karras et al. 2022, DPM-Solver-2 variant (midpoint in log sigma), as k-diffusion sample_dpm_2.
at::Tensor sample_dpm_2(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                        const StepCallback& callback) {
  check_sigmas(sigmas, "sample_dpm_2");
  for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
    const auto s = static_cast<float>(sigmas[i]), s_next = static_cast<float>(sigmas[i + 1]);
    const at::Tensor denoised = denoise(x, sigmas[i]);
    const at::Tensor d = to_d(x, s, denoised);
    if (s_next == 0) {
      x = x + d * (s_next - s);
    } else {
      const double sigma_mid = std::exp((std::log(sigmas[i]) + std::log(sigmas[i + 1])) / 2);
      const auto mid = static_cast<float>(sigma_mid);
      const at::Tensor x_2 = x + d * (mid - s);
      const at::Tensor d_2 = to_d(x_2, mid, denoise(x_2, mid));
      x = x + d_2 * (s_next - s);
    }
    if (callback) callback(static_cast<int64_t>(i), x, denoised);
  }
  return x;
}

// Liu et al. 2022 / Lipman et al. 2023 (rectified flow / flow matching): Euler on dx/dsigma = v.
at::Tensor sample_flow_match_euler(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                                   const StepCallback& callback) {
  if (!sigmas.empty() && sigmas.front() > 1.0)
    throw UsageError("sample_flow_match_euler: flow sigmas lie in [0, 1] (got " + std::to_string(sigmas.front()) + ")");
  return sample_euler(denoise, std::move(x), sigmas, callback);
}

}  // namespace genvis::schedulers
