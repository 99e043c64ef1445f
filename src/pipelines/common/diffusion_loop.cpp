#include "pipelines/common/diffusion_loop.h"

#include "core/error.h"

#include <algorithm>

namespace genvis::pipelines {

namespace s = schedulers;

void DiffusionPlan::skip_for_strength(double strength) {
  if (timestep_space())
    throw UsageError("starting from an image needs a sigma sampler (euler, euler_a, heun, dpm2, dpmpp_2m, ...), not '" +
                     sampler + "'");
  const int64_t t_start = steps - std::min<int64_t>(static_cast<int64_t>(steps * strength), steps);
  sigmas.erase(sigmas.begin(), sigmas.begin() + t_start);
}

int64_t DiffusionPlan::total() const { return timestep_space() ? steps : static_cast<int64_t>(sigmas.size()) - 1; }

DiffusionPlan plan_diffusion(const s::NoiseScheduleConfig& config, const std::string& sampler,
                             const std::string& schedule, int64_t steps) {
  DiffusionPlan p;
  p.sampler = sampler;
  p.info = s::sampler_info(sampler);
  p.spacing = s::schedule_spacing(schedule);
  p.steps = steps;
  const bool flow_model = config.prediction_type == "flow";
  if (p.info.space == s::SamplerSpace::Flow && !flow_model)
    throw UsageError("sampler '" + sampler + "' is for flow-matching models, not this one (prediction type " +
                     config.prediction_type + ")");
  if (p.info.space != s::SamplerSpace::Flow && flow_model)
    throw UsageError("this is a flow-matching model: sampler '" + sampler + "' does not apply (use unipc or flow_euler)");
  if (p.timestep_space() && p.spacing != s::SigmaSpacing::Default)
    throw UsageError("schedule '" + schedule + "' applies to sigma samplers only, not '" + sampler + "'");
  if (p.info.space == s::SamplerSpace::Flow && p.info.name == "unipc") {
    // UniPC's own flow sigmas (they start below 1), with the config's shift when it is a
    // FlowMatchEuler config: as diffusers' UniPCMultistepScheduler(use_flow_sigmas, flow_shift).
    s::NoiseScheduleConfig unipc = config;
    if (!unipc.use_flow_sigmas) unipc.use_flow_sigmas = true, unipc.flow_shift = config.shift;
    p.schedule = s::flow_sigmas_schedule(unipc, steps);
  } else if (p.info.space == s::SamplerSpace::Flow) {
    p.schedule = s::flow_match_schedule(config, steps);
  } else if (sampler.rfind("dpm", 0) == 0) {
    p.schedule = s::dpm_solver_schedule(config, steps, p.spacing);
  } else {
    p.schedule = s::euler_schedule(config, steps, p.spacing);
  }
  p.sigmas = p.schedule.sigmas;
  return p;
}

at::Tensor run_diffusion(const DiffusionPlan& plan, const s::NoiseScheduleConfig& config, const s::Network& network,
                         at::Tensor x, const s::NoiseSource& noise, const Callbacks& callbacks,
                         const DiffusionLoopOptions& options) {
  const auto prediction = s::parse_prediction_type(config.prediction_type);
  const int64_t total = plan.total();
  const auto check_cancel = [&] {
    if (callbacks.cancelled && callbacks.cancelled()) throw Cancelled();
  };
  const s::StepCallback on_step = [&](int64_t i, const at::Tensor& x_i, const at::Tensor& denoised) {
    if (options.on_latents) options.on_latents(i, x_i, denoised);
    if (callbacks.on_step) callbacks.on_step(i + 1, total);
    if (callbacks.on_preview && options.preview && callbacks.preview_every > 0 &&
        ((i + 1) % callbacks.preview_every == 0 || i + 1 == total))
      callbacks.on_preview(i + 1, options.preview(denoised));
    if (i + 1 < total) check_cancel();
  };
  check_cancel();
  if (plan.timestep_space()) {
    const auto discrete = plan.sampler == "lcm" ? s::lcm_schedule(config, plan.steps) : s::ddim_schedule(config, plan.steps);
    const auto vp = s::make_vp_denoiser(network, prediction, s::alphas_cumprod(config));
    return s::sample_by_name(plan.sampler, vp, x, discrete, noise, on_step, options.eta, config.timestep_scaling);
  }
  const bool flow = plan.info.space == s::SamplerSpace::Flow;
  s::Denoiser denoiser = s::make_denoiser(
      network, prediction,
      s::timestep_map(plan.schedule, flow ? std::vector<float>{} : s::training_sigmas(config), config.num_train_timesteps));
  if (options.wrap_denoiser) denoiser = options.wrap_denoiser(std::move(denoiser));
  return s::sample_by_name(plan.sampler, denoiser, x, plan.sigmas, noise, on_step, s::unipc_options(config));
}

}  // namespace genvis::pipelines
