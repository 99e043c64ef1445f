// DPM-Solver++ family in sigma space (k-diffusion form); t = -log(sigma), h = t_next - t.
#include "schedulers/samplers.h"

#include <cmath>

namespace genvis::schedulers {

// Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models" (2M).
at::Tensor sample_dpmpp_2m(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                           const StepCallback& callback) {
  check_sigmas(sigmas, "sample_dpmpp_2m");
  at::Tensor old_denoised;
  for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
    const at::Tensor denoised = denoise(x, sigmas[i]);
    if (sigmas[i + 1] == 0) {
      x = denoised;  // the limit h -> inf of the update below
    } else {
      const double h = std::log(sigmas[i]) - std::log(sigmas[i + 1]);
      at::Tensor denoised_d = denoised;
      if (old_denoised.defined()) {
        const double r = (std::log(sigmas[i - 1]) - std::log(sigmas[i])) / h;
        denoised_d = denoised * (1 + 1 / (2 * r)) - old_denoised * (1 / (2 * r));
      }
      x = x * (sigmas[i + 1] / sigmas[i]) - denoised_d * std::expm1(-h);
    }
    old_denoised = denoised;
    if (callback) callback(static_cast<int64_t>(i), x, denoised);
  }
  return x;
}

// Lu et al. 2022, DPM-Solver++(2M) SDE (midpoint), as k-diffusion with Gaussian instead of Brownian-tree noise.
at::Tensor sample_dpmpp_2m_sde(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                               const NoiseSource& noise, double eta, const StepCallback& callback) {
  check_sigmas(sigmas, "sample_dpmpp_2m_sde");
  at::Tensor old_denoised;
  double h_last = 0;
  for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
    const at::Tensor denoised = denoise(x, sigmas[i]);
    if (sigmas[i + 1] == 0) {
      x = denoised;
    } else {
      const double h = std::log(sigmas[i]) - std::log(sigmas[i + 1]), eta_h = eta * h;
      x = x * (sigmas[i + 1] / sigmas[i] * std::exp(-eta_h)) + denoised * -std::expm1(-h - eta_h);
      if (old_denoised.defined())
        x = x + (denoised - old_denoised) * (0.5 * -std::expm1(-h - eta_h) / (h_last / h));
      if (eta > 0) x = x + draw_noise(noise, x, "sample_dpmpp_2m_sde") * (sigmas[i + 1] * std::sqrt(-std::expm1(-2 * eta_h)));
      h_last = h;
    }
    old_denoised = denoised;
    if (callback) callback(static_cast<int64_t>(i), x, denoised);
  }
  return x;
}

// Lu et al. 2022, DPM-Solver++(2S) single-step, with ancestral noise (k-diffusion sample_dpmpp_2s_ancestral).
at::Tensor sample_dpmpp_2s_ancestral(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                                     const NoiseSource& noise, double eta, const StepCallback& callback) {
  check_sigmas(sigmas, "sample_dpmpp_2s_ancestral");
  for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
    const double s = sigmas[i], s_next = sigmas[i + 1];
    const at::Tensor denoised = denoise(x, s);
    const double sigma_up = std::min(s_next, eta * std::sqrt(s_next * s_next * (s * s - s_next * s_next) / (s * s)));
    const double sigma_down = std::sqrt(s_next * s_next - sigma_up * sigma_up);
    if (sigma_down == 0) {
      x = x + (x - denoised) / s * (sigma_down - s);
    } else {
      const double h = std::log(s) - std::log(sigma_down);
      const double s_mid = std::exp(-(-std::log(s) + 0.5 * h));
      const at::Tensor x_2 = x * (s_mid / s) - denoised * std::expm1(-0.5 * h);
      const at::Tensor denoised_2 = denoise(x_2, s_mid);
      x = x * (sigma_down / s) - denoised_2 * std::expm1(-h);
    }
    if (s_next > 0) x = x + draw_noise(noise, x, "sample_dpmpp_2s_ancestral") * sigma_up;
    if (callback) callback(static_cast<int64_t>(i), x, denoised);
  }
  return x;
}

}  // namespace genvis::schedulers
