// Samplers: pure functions of a denoiser, a starting x and a schedule. Noise comes only from the
// NoiseSource argument, so a seeded source reproduces a run exactly.
//
// Sigma space (x = x0 + sigma * noise; `sigmas` decreasing and ending in 0; start from
// noise * schedule.init_noise_sigma):
//   at::Tensor x = sample_dpmpp_2m(denoiser, noise * s.init_noise_sigma, s.sigmas);
// Timestep space (x = sqrt(acp) x0 + sqrt(1 - acp) noise; start from unit noise):
//   at::Tensor x = sample_ddim(vp_denoiser, noise, ddim_schedule(config, 50), 0.0);
#pragma once
#include "schedulers/denoiser.h"
#include "schedulers/schedule.h"

namespace genvis::schedulers {

// ---- sigma space (euler.cpp, dpmpp.cpp, lms.cpp) ----
at::Tensor sample_euler(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                        const StepCallback& callback = {});
at::Tensor sample_euler_ancestral(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                                  const NoiseSource& noise, double eta = 1.0, const StepCallback& callback = {});
at::Tensor sample_heun(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                       const StepCallback& callback = {});
at::Tensor sample_dpm_2(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                        const StepCallback& callback = {});
at::Tensor sample_lms(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas, int64_t order = 4,
                      const StepCallback& callback = {});
at::Tensor sample_dpmpp_2m(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                           const StepCallback& callback = {});
at::Tensor sample_dpmpp_2m_sde(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                               const NoiseSource& noise, double eta = 1.0, const StepCallback& callback = {});
at::Tensor sample_dpmpp_2s_ancestral(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                                     const NoiseSource& noise, double eta = 1.0, const StepCallback& callback = {});
// Rectified flow (x = (1 - sigma) x0 + sigma * noise; sigmas from flow_match_schedule).
at::Tensor sample_flow_match_euler(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                                   const StepCallback& callback = {});
// UniPC multistep, data prediction, on flow sigmas (unipc.cpp; Wan 2.1's default sampler, equal to
// diffusers' UniPCMultistepScheduler with use_flow_sigmas). sigmas from flow_sigmas_schedule or
// flow_match_schedule, below 1; one model call per step. on_corrected(i, x, x0) sees each step's
// sample after the UniC corrector, before the predictor.
struct UniPCOptions {
  enum class Solver { BH1, BH2 };
  int64_t order = 2;  // solver_order
  Solver solver = Solver::BH2;
  bool lower_order_final = true;
  std::vector<int64_t> disable_corrector;
};
UniPCOptions unipc_options(const NoiseScheduleConfig& config);
at::Tensor sample_unipc(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                        const UniPCOptions& options = {}, const StepCallback& callback = {},
                        const StepCallback& on_corrected = {});

// ---- timestep space (ddim.cpp, plms.cpp, lcm.cpp) ----
// eta = 0: deterministic DDIM; eta = 1: DDPM-like variance. Noise is drawn only when eta > 0.
at::Tensor sample_ddim(const VPDenoiser& denoise, at::Tensor x, const DiscreteSchedule& schedule, double eta = 0.0,
                       const NoiseSource& noise = {}, const StepCallback& callback = {});
at::Tensor sample_ddpm(const VPDenoiser& denoise, at::Tensor x, const DiscreteSchedule& schedule,
                       const NoiseSource& noise, const StepCallback& callback = {});
// PNDM's PLMS (skip_prk_steps): N steps, N + 1 model calls (the first step is a 2-call Heun step).
at::Tensor sample_plms(const VPDenoiser& denoise, at::Tensor x, const DiscreteSchedule& schedule,
                       const StepCallback& callback = {});
at::Tensor sample_lcm(const VPDenoiser& denoise, at::Tensor x, const DiscreteSchedule& schedule,
                      const NoiseSource& noise, double timestep_scaling = 10.0, const StepCallback& callback = {});

}  // namespace genvis::schedulers
