#include "schedulers/denoiser.h"

#include "core/error.h"
#include "schedulers/schedule.h"

#include <cmath>
#include <map>

namespace genvis::schedulers {

NoiseSource noise_from(Rng& rng) {
  return [&rng](at::IntArrayRef shape) { return rng.randn(shape); };
}

at::Tensor draw_noise(const NoiseSource& noise, const at::Tensor& like, const char* who) {
  if (!noise) throw UsageError(std::string(who) + ": this setting draws noise but no noise source was given");
  return noise(like.sizes()).to(like.device(), like.scalar_type());
}

PredictionType parse_prediction_type(const std::string& name) {
  if (name == "epsilon") return PredictionType::Epsilon;
  if (name == "v_prediction") return PredictionType::VPrediction;
  if (name == "flow") return PredictionType::Flow;
  throw UsageError("unknown prediction_type \"" + name + "\" (valid: epsilon, v_prediction, flow)");
}

std::function<double(double)> timestep_map(const SigmaSchedule& schedule, std::vector<float> training_sigmas,
                                           int64_t num_train_timesteps) {
  std::map<double, double> exact;
  for (size_t i = 0; i < schedule.timesteps.size() && i < schedule.sigmas.size(); ++i)
    exact.emplace(schedule.sigmas[i], schedule.timesteps[i]);
  return [exact = std::move(exact), table = std::move(training_sigmas), num_train_timesteps](double sigma) {
    if (const auto it = exact.find(sigma); it != exact.end()) return it->second;
    if (table.empty()) return sigma * static_cast<double>(num_train_timesteps);
    return sigma_to_timestep(sigma, table);
  };
}

Denoiser make_denoiser(Network network, PredictionType type, std::function<double(double)> timestep_of_sigma) {
  return [network = std::move(network), type, t_of = std::move(timestep_of_sigma)](const at::Tensor& x,
                                                                                    double sigma) {
    const auto s = static_cast<float>(sigma);
    const double t = t_of(sigma);
    if (type == PredictionType::Flow) return x - network(x, t) * s;
    const float c = std::sqrt(s * s + 1.0f);
    const at::Tensor out = network(x / c, t);
    if (type == PredictionType::Epsilon) return x - out * s;
    return out * (-s / c) + x / (s * s + 1.0f);
  };
}

VPDenoiser make_vp_denoiser(Network network, PredictionType type, at::Tensor alphas_cumprod) {
  if (type == PredictionType::Flow) throw UsageError("flow prediction has no alphas_cumprod schedule");
  return [network = std::move(network), type, acp = alphas_cumprod.contiguous()](const at::Tensor& x,
                                                                                 int64_t timestep) {
    const float a = acp[timestep].item<float>();
    const float b = 1.0f - a;
    const float sa = std::sqrt(a), sb = std::sqrt(b);
    const at::Tensor out = network(x, static_cast<double>(timestep));
    if (type == PredictionType::Epsilon) return VPPrediction{(x - out * sb) / sa, out};
    return VPPrediction{x * sa - out * sb, out * sa + x * sb};
  };
}

}  // namespace genvis::schedulers
