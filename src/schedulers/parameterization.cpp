#include "schedulers/parameterization.h"

#include "core/error.h"

#include <vector>

namespace genvis::schedulers {

at::Tensor per_sample(const at::Tensor& level, const at::Tensor& like) {
  if (level.dim() != 1 || like.dim() < 2) return level;
  if (level.size(0) != like.size(0) && level.size(0) != 1)
    throw UsageError("noise level has " + std::to_string(level.size(0)) + " values for a batch of " +
                     std::to_string(like.size(0)));
  std::vector<int64_t> shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = level.size(0);
  return level.view(shape);  // [B, 1, ..., 1]
}

at::Tensor add_noise(PredictionType type, const at::Tensor& x0, const at::Tensor& eps, const at::Tensor& level) {
  const at::Tensor l = per_sample(level, x0);
  if (type == PredictionType::Flow) return (1 - l) * x0 + l * eps;
  return l.sqrt() * x0 + (1 - l).sqrt() * eps;
}

at::Tensor training_target(PredictionType type, const at::Tensor& x0, const at::Tensor& eps, const at::Tensor& level) {
  switch (type) {
    case PredictionType::Epsilon: return eps;
    case PredictionType::Flow: return eps - x0;
    case PredictionType::VPrediction: {
      const at::Tensor a = per_sample(level, x0);
      return a.sqrt() * eps - (1 - a).sqrt() * x0;
    }
  }
  throw UsageError("unknown prediction type");
}

at::Tensor min_snr_weight(PredictionType type, const at::Tensor& level, double gamma) {
  if (!(gamma > 0)) throw UsageError("min-SNR gamma must be > 0, got " + std::to_string(gamma));
  if (type == PredictionType::Flow) throw UsageError("min-SNR weighting is defined for epsilon and v_prediction only");
  const at::Tensor snr = level / (1 - level);
  const at::Tensor clipped = at::clamp_max(snr, gamma);
  return type == PredictionType::Epsilon ? clipped / snr : clipped / (snr + 1);
}

FlowSigmaDensity::Kind FlowSigmaDensity::parse(const std::string& name) {
  if (name == "uniform") return Kind::Uniform;
  if (name == "logit_normal") return Kind::LogitNormal;
  throw UsageError("unknown flow sigma density '" + name + "' (known: uniform, logit_normal)");
}

at::Tensor sample_flow_sigmas(int64_t batch, const FlowSigmaDensity& d, Rng& rng) {
  if (batch < 1) throw UsageError("flow sigmas: batch must be >= 1");
  if (d.kind == FlowSigmaDensity::Kind::LogitNormal && !(d.std > 0))
    throw UsageError("flow sigmas: logit_normal std must be > 0, got " + std::to_string(d.std));
  if (!(d.shift > 0)) throw UsageError("flow sigmas: shift must be > 0, got " + std::to_string(d.shift));
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor sigma = d.kind == FlowSigmaDensity::Kind::Uniform
                         ? rng.rand({batch}, f32)
                         : at::sigmoid(rng.randn({batch}, f32) * static_cast<float>(d.std) + static_cast<float>(d.mean));
  if (d.shift != 1.0) sigma = d.shift * sigma / (1 + (d.shift - 1) * sigma);
  // Keep sigma inside (0, 1): at 0 the loss has no noise to remove, at 1 x0 is unrecoverable.
  return sigma.clamp(1e-5, 1 - 1e-5);
}

VPPrediction from_model_output(PredictionType type, const at::Tensor& x_t, const at::Tensor& model_output,
                               const at::Tensor& level) {
  const at::Tensor& o = model_output;
  const at::Tensor l = per_sample(level, x_t);
  switch (type) {
    case PredictionType::Epsilon: return {(x_t - (1 - l).sqrt() * o) / l.sqrt(), o};
    case PredictionType::VPrediction: {
      const at::Tensor sa = l.sqrt(), sb = (1 - l).sqrt();
      return {sa * x_t - sb * o, sa * o + sb * x_t};
    }
    case PredictionType::Flow: return {x_t - l * o, x_t + (1 - l) * o};
  }
  throw UsageError("unknown prediction type");
}

}  // namespace genvis::schedulers
