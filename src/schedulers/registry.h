// Sampler and schedule names as the CLI, the server and the PNG infotext spell them.
//
//   const SamplerInfo& s = sampler_info("dpmpp_2m");   // s.display == "DPM++ 2M"
//   SigmaSpacing k = schedule_spacing("karras");
#pragma once
#include "schedulers/samplers.h"

#include <string>
#include <vector>

namespace genvis::schedulers {

enum class SamplerSpace {
  Sigma,     // Denoiser + SigmaSchedule (euler_schedule / dpm_solver_schedule)
  Timestep,  // VPDenoiser + DiscreteSchedule (ddim_schedule / lcm_schedule)
  Flow,      // Denoiser with PredictionType::Flow + flow_match_schedule
};

struct SamplerInfo {
  std::string name;     // CLI/JSON name: "euler_a"
  std::string display;  // A1111 infotext name: "Euler a"
  SamplerSpace space;
  bool stochastic;      // draws noise while sampling
  int model_calls_per_step;
};

// Every sampler, in a stable order (append only).
const std::vector<SamplerInfo>& samplers();
std::vector<std::string> sampler_names();
// By CLI name or A1111 display name; UsageError listing the valid names otherwise.
const SamplerInfo& sampler_info(const std::string& name);

// Runs a Sigma- or Flow-space sampler by name; UsageError for a Timestep-space or unknown name.
// `unipc` is UniPC's solver settings (the scheduler config's, through unipc_options).
at::Tensor sample_by_name(const std::string& name, const Denoiser& denoise, at::Tensor x,
                          const std::vector<double>& sigmas, const NoiseSource& noise,
                          const StepCallback& callback = {}, const UniPCOptions& unipc = {});
// Runs a Timestep-space sampler (ddim, ddpm, plms, lcm) by name. eta is DDIM's; LCM uses
// timestep_scaling (scheduler config, default 10).
at::Tensor sample_by_name(const std::string& name, const VPDenoiser& denoise, at::Tensor x,
                          const DiscreteSchedule& schedule, const NoiseSource& noise, const StepCallback& callback = {},
                          double eta = 0.0, double timestep_scaling = 10.0);

// "default", "karras", "exponential", "sgm_uniform".
std::vector<std::string> schedule_names();
SigmaSpacing schedule_spacing(const std::string& name);  // UsageError listing the valid names
// A1111 "Schedule type" values: "Automatic", "Karras", "Exponential", "SGM Uniform".
std::string schedule_display_name(SigmaSpacing spacing);

}  // namespace genvis::schedulers
