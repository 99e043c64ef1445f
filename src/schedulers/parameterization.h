// The network parameterisations (epsilon, v, flow) in one place: how training noises x0, what
// the network is asked to predict, and how a prediction turns back into x0 and eps. Training
// recipes and denoisers use the same functions, so they agree by construction.
//
//   at::Tensor a = alphas_cumprod.index_select(0, timesteps);          // [B], one per sample
//   at::Tensor xt = add_noise(PredictionType::VPrediction, x0, eps, a);  // a broadcasts over x0
//   at::Tensor loss = at::mse_loss(unet(xt, timesteps), training_target(PredictionType::VPrediction, x0, eps, a));
//   VPPrediction p = from_model_output(PredictionType::VPrediction, xt, model_output, a);  // p.x0, p.eps
//
// `level` is the noise level of each sample: alphas_cumprod at its timestep for the
// variance-preserving types (epsilon, v_prediction), sigma in [0, 1] for flow. It is a tensor
// that broadcasts against x0 (a scalar, or [B, 1, ..., 1]), or a [B] tensor with one value per
// sample, which is viewed as [B, 1, ..., 1] to match x0's rank ([B, C, H, W] images,
// [B, C, T, H, W] videos).
//
//   type          x_t                               target (network output)        x0 from output o
//   epsilon       sqrt(a) x0 + sqrt(1 - a) eps      eps                            (x_t - sqrt(1 - a) o) / sqrt(a)
//   v_prediction  sqrt(a) x0 + sqrt(1 - a) eps      sqrt(a) eps - sqrt(1 - a) x0   sqrt(a) x_t - sqrt(1 - a) o
//   flow          (1 - sigma) x0 + sigma eps        eps - x0                       x_t - sigma o
//
// Arithmetic is in the order written above, in the tensors' dtype (`level` should share x0's
// floating dtype: a float32 `a` with float32 latents reproduces the recipes' training bit for
// bit). Epsilon/v: Ho et al. 2020 (arXiv:2006.11239); v: Salimans & Ho 2022 (arXiv:2202.00512);
// flow (rectified flow): Liu et al. 2022 (arXiv:2209.03003), Esser et al. 2024 (arXiv:2403.03206).
#pragma once
#include "core/rng.h"
#include "schedulers/denoiser.h"

#include <string>

#include <ATen/ATen.h>

namespace genvis::schedulers {

// x_t: the noised sample the network sees at noise level `level`.
at::Tensor add_noise(PredictionType type, const at::Tensor& x0, const at::Tensor& eps, const at::Tensor& level);

// What the network is trained to output for x_t = add_noise(type, x0, eps, level): eps, v, or
// the flow velocity eps - x0 (`level` is not used for epsilon and flow; eps itself is returned
// for epsilon).
at::Tensor training_target(PredictionType type, const at::Tensor& x0, const at::Tensor& eps, const at::Tensor& level);

// The inverse: x0 and eps from the network's output at x_t and `level`. Undefined at a = 0
// (epsilon) and sigma = 1 (flow), as the parameterisations themselves.
VPPrediction from_model_output(PredictionType type, const at::Tensor& x_t, const at::Tensor& model_output,
                               const at::Tensor& level);

// Min-SNR-gamma loss weights (Hang et al. 2023, arXiv:2303.09556), one per sample of `level`
// ([B] alphas_cumprod): with snr = a / (1 - a), min(snr, gamma) / snr for epsilon and
// min(snr, gamma) / (snr + 1) for v_prediction, so that every type weighs the x0 error by
// min(snr, gamma). Multiply each sample's mean squared error by its weight. UsageError for flow
// (its level is sigma, not alphas_cumprod) and for gamma <= 0.
at::Tensor min_snr_weight(PredictionType type, const at::Tensor& level, double gamma);

// Training noise levels for flow matching: sigma per sample in (0, 1) [batch] float32 on the CPU.
//   uniform       sigma ~ U(0, 1)
//   logit_normal  sigma = sigmoid(mean + std * n), n ~ N(0, 1) (Esser et al. 2024, sec. 3.1: more
//                 weight on the middle of the path, where the velocity is hardest to predict)
// then shifted as the samplers shift their schedule (shift s: s * sigma / (1 + (s - 1) * sigma);
// s > 1 moves weight to high noise, which larger latents need). UsageError for std <= 0 or
// shift <= 0.
struct FlowSigmaDensity {
  enum class Kind { Uniform, LogitNormal } kind = Kind::LogitNormal;
  double mean = 0.0, std = 1.0;  // logit_normal
  double shift = 1.0;
  // "uniform" or "logit_normal" (UsageError otherwise).
  static Kind parse(const std::string& name);
};
at::Tensor sample_flow_sigmas(int64_t batch, const FlowSigmaDensity& density, Rng& rng);

// `level` viewed to broadcast per sample over `like`: a [B] tensor (B = like.size(0), like of rank
// >= 2) becomes [B, 1, ..., 1]; anything else is returned as it is. UsageError when a [B] tensor's
// size differs from like's batch.
at::Tensor per_sample(const at::Tensor& level, const at::Tensor& like);

}  // namespace genvis::schedulers
