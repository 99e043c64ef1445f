#include "schedulers/registry.h"

#include "core/error.h"

namespace genvis::schedulers {
namespace {

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

struct ScheduleName {
  const char* name;
  const char* display;
  SigmaSpacing spacing;
};
constexpr ScheduleName kSchedules[] = {
    {"default", "Automatic", SigmaSpacing::Default},
    {"karras", "Karras", SigmaSpacing::Karras},
    {"exponential", "Exponential", SigmaSpacing::Exponential},
    {"sgm_uniform", "SGM Uniform", SigmaSpacing::SGMUniform},
};

}  // namespace

const std::vector<SamplerInfo>& samplers() {
  static const std::vector<SamplerInfo> kSamplers = {
      {"euler", "Euler", SamplerSpace::Sigma, false, 1},
      {"euler_a", "Euler a", SamplerSpace::Sigma, true, 1},
      {"heun", "Heun", SamplerSpace::Sigma, false, 2},
      {"dpm2", "DPM2", SamplerSpace::Sigma, false, 2},
      {"dpmpp_2m", "DPM++ 2M", SamplerSpace::Sigma, false, 1},
      {"dpmpp_2m_sde", "DPM++ 2M SDE", SamplerSpace::Sigma, true, 1},
      {"dpmpp_2s_a", "DPM++ 2S a", SamplerSpace::Sigma, true, 2},
      {"ddim", "DDIM", SamplerSpace::Timestep, false, 1},
      {"ddpm", "DDPM", SamplerSpace::Timestep, true, 1},
      {"plms", "PLMS", SamplerSpace::Timestep, false, 1},
      {"lms", "LMS", SamplerSpace::Sigma, false, 1},
      {"lcm", "LCM", SamplerSpace::Timestep, true, 1},
      {"flow_euler", "Euler (flow)", SamplerSpace::Flow, false, 1},
      {"unipc", "UniPC", SamplerSpace::Flow, false, 1},
  };
  return kSamplers;
}

std::vector<std::string> sampler_names() {
  std::vector<std::string> out;
  for (const auto& s : samplers()) out.push_back(s.name);
  return out;
}

const SamplerInfo& sampler_info(const std::string& name) {
  for (const auto& s : samplers())
    if (s.name == name || s.display == name) return s;
  throw UsageError("unknown sampler \"" + name + "\" (valid: " + join_names(sampler_names()) + ")");
}

at::Tensor sample_by_name(const std::string& name, const Denoiser& denoise, at::Tensor x,
                          const std::vector<double>& sigmas, const NoiseSource& noise, const StepCallback& callback,
                          const UniPCOptions& unipc) {
  const std::string& n = sampler_info(name).name;
  if (n == "euler") return sample_euler(denoise, std::move(x), sigmas, callback);
  if (n == "euler_a") return sample_euler_ancestral(denoise, std::move(x), sigmas, noise, 1.0, callback);
  if (n == "heun") return sample_heun(denoise, std::move(x), sigmas, callback);
  if (n == "dpm2") return sample_dpm_2(denoise, std::move(x), sigmas, callback);
  if (n == "lms") return sample_lms(denoise, std::move(x), sigmas, 4, callback);
  if (n == "dpmpp_2m") return sample_dpmpp_2m(denoise, std::move(x), sigmas, callback);
  if (n == "dpmpp_2m_sde") return sample_dpmpp_2m_sde(denoise, std::move(x), sigmas, noise, 1.0, callback);
  if (n == "dpmpp_2s_a") return sample_dpmpp_2s_ancestral(denoise, std::move(x), sigmas, noise, 1.0, callback);
  if (n == "flow_euler") return sample_flow_match_euler(denoise, std::move(x), sigmas, callback);
  if (n == "unipc") return sample_unipc(denoise, std::move(x), sigmas, unipc, callback);
  throw UsageError("sampler \"" + n + "\" works on timesteps, not sigmas");
}

at::Tensor sample_by_name(const std::string& name, const VPDenoiser& denoise, at::Tensor x,
                          const DiscreteSchedule& schedule, const NoiseSource& noise, const StepCallback& callback,
                          double eta, double timestep_scaling) {
  const std::string& n = sampler_info(name).name;
  if (n == "ddim") return sample_ddim(denoise, std::move(x), schedule, eta, noise, callback);
  if (n == "ddpm") return sample_ddpm(denoise, std::move(x), schedule, noise, callback);
  if (n == "plms") return sample_plms(denoise, std::move(x), schedule, callback);
  if (n == "lcm") return sample_lcm(denoise, std::move(x), schedule, noise, timestep_scaling, callback);
  throw UsageError("sampler \"" + n + "\" works on sigmas, not timesteps");
}

std::vector<std::string> schedule_names() {
  std::vector<std::string> out;
  for (const auto& s : kSchedules) out.push_back(s.name);
  return out;
}

SigmaSpacing schedule_spacing(const std::string& name) {
  for (const auto& s : kSchedules)
    if (name == s.name || name == s.display) return s.spacing;
  throw UsageError("unknown schedule \"" + name + "\" (valid: " + join_names(schedule_names()) + ")");
}

std::string schedule_display_name(SigmaSpacing spacing) {
  for (const auto& s : kSchedules)
    if (s.spacing == spacing) return s.display;
  return "Automatic";
}

}  // namespace genvis::schedulers
