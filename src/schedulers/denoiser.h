// The vocabulary shared by every sampler, and the wrappers that turn a network into a denoiser.
//
// Samplers never see a model. Sigma-space samplers (k-diffusion) take a Denoiser: x in the
// variance-exploding space (x = x0 + sigma * noise) -> denoised x0. Timestep-space samplers
// (DDIM, DDPM, PLMS, LCM) take a VPDenoiser: x in the variance-preserving space
// (x = sqrt(acp) x0 + sqrt(1 - acp) noise) -> {x0, eps}. The parameterisation of the network
// (epsilon / v / flow), the input scaling and the sigma -> timestep map live only in the
// wrappers below.
//
//   Network unet = [&](const at::Tensor& model_input, double t) { return cfg_unet(model_input, t); };
//   SigmaSchedule s = euler_schedule(config, 30, SigmaSpacing::Karras);
//   Denoiser d = make_denoiser(unet, PredictionType::Epsilon, s, training_sigmas(config));
//   at::Tensor latents = sample_euler(d, noise * s.init_noise_sigma, s.sigmas);
#pragma once
#include "core/rng.h"

#include <ATen/ATen.h>
#include <functional>
#include <string>
#include <vector>

namespace genvis::schedulers {

struct SigmaSchedule;
struct DiscreteSchedule;

// Raw network: (scaled model input, timestep) -> model output (eps, v or flow velocity).
using Network = std::function<at::Tensor(const at::Tensor& model_input, double timestep)>;
// Sigma space: (x, sigma) -> denoised x0.
using Denoiser = std::function<at::Tensor(const at::Tensor& x, double sigma)>;

struct VPPrediction {
  at::Tensor x0;   // pred_original_sample
  at::Tensor eps;  // the noise the model sees in x
};
// Timestep space: (x, integer timestep) -> prediction.
using VPDenoiser = std::function<VPPrediction(const at::Tensor& x, int64_t timestep)>;

// Unit Gaussian noise of a shape (CPU float32 is fine: samplers move and cast it).
using NoiseSource = std::function<at::Tensor(at::IntArrayRef shape)>;
NoiseSource noise_from(Rng& rng);
// Noise shaped, placed and typed like `like`; UsageError naming `who` when no source was given.
at::Tensor draw_noise(const NoiseSource& noise, const at::Tensor& like, const char* who);

// Called after step i with the new x and that step's denoised estimate (x0).
using StepCallback = std::function<void(int64_t i, const at::Tensor& x, const at::Tensor& denoised)>;

enum class PredictionType { Epsilon, VPrediction, Flow };
// "epsilon", "v_prediction", "flow"; UsageError listing them otherwise.
PredictionType parse_prediction_type(const std::string& name);

// Sigma -> model timestep: the schedule's own timestep where sigma is one of its sigmas
// (exactly what diffusers feeds the model), otherwise log-sigma interpolation over the training
// sigmas (intermediate sigmas of Heun, DPM2, DPM++ 2S). For flow schedules pass
// training_sigmas empty: off-schedule sigmas then map to sigma * num_train_timesteps.
std::function<double(double)> timestep_map(const SigmaSchedule& schedule, std::vector<float> training_sigmas,
                                           int64_t num_train_timesteps = 1000);

// Epsilon/v: model_input = x / sqrt(sigma^2 + 1); eps: x0 = x - sigma * eps;
// v: x0 = x / (sigma^2 + 1) - v * sigma / sqrt(sigma^2 + 1). Flow: model_input = x, x0 = x - sigma * v.
Denoiser make_denoiser(Network network, PredictionType type, std::function<double(double)> timestep_of_sigma);

// Timestep space wrapper over alphas_cumprod (float32 arithmetic as diffusers).
VPDenoiser make_vp_denoiser(Network network, PredictionType type, at::Tensor alphas_cumprod);

}  // namespace genvis::schedulers
