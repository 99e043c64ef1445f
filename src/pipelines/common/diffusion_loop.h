// The diffusion loop every denoising family shares: schedule choice, sampler by name, progress,
// cancel and preview callbacks. A family supplies only its network (model call with guidance)
// and starting latents; the parameterisation (epsilon / v / flow) comes from the scheduler config
// through schedulers/denoiser.h.
//
//   DiffusionPlan plan = plan_diffusion(config, "dpmpp_2m", "karras", 30);   // 2. schedule
//   plan.skip_for_strength(0.6);                                             // img2img
//   at::Tensor x0 = run_diffusion(plan, config, network, noise * plan.init_noise_sigma(), noise_source, callbacks);
#pragma once
#include "pipelines/pipeline.h"
#include "schedulers/registry.h"

#include <functional>
#include <string>
#include <vector>

namespace genvis::pipelines {

struct DiffusionPlan {
  std::string sampler;
  schedulers::SamplerInfo info;
  schedulers::SigmaSpacing spacing = schedulers::SigmaSpacing::Default;
  int64_t steps = 0;
  schedulers::SigmaSchedule schedule;  // sigma and flow spaces (timestep space: its sigmas too)
  std::vector<double> sigmas;          // what runs: schedule.sigmas less the skipped start
  bool timestep_space() const { return info.space == schedulers::SamplerSpace::Timestep; }
  // What the starting latents are multiplied by (timestep space starts from unit noise).
  double init_noise_sigma() const { return timestep_space() ? 1.0 : schedule.init_noise_sigma; }
  // img2img: drops the first steps - int(steps * strength) sigmas (diffusers); the init latents
  // are noised to sigmas.front(). UsageError for a timestep-space sampler.
  void skip_for_strength(double strength);
  // Model calls reported to progress callbacks: steps in timestep space, else sigmas - 1.
  int64_t total() const;
};

// 2. Schedule for `config`: DPM samplers get the DPM-Solver sigmas, the others Euler's; flow
// samplers need a flow-matching config. UsageError naming `sampler`/`schedule` otherwise.
DiffusionPlan plan_diffusion(const schedulers::NoiseScheduleConfig& config, const std::string& sampler,
                             const std::string& schedule, int64_t steps);

struct DiffusionLoopOptions {
  // Wraps the denoiser built from the network (sigma space only), e.g. inpainting's latent blend.
  std::function<schedulers::Denoiser(schedulers::Denoiser)> wrap_denoiser;
  // Turns the current x0 estimate into preview samples [B,3,...] in [0,1] for Callbacks::on_preview.
  std::function<at::Tensor(const at::Tensor& denoised)> preview;
  double eta = 0.0;  // DDIM
  // Sees each step's new latents and x0 estimate (exact-reproduction checks, latent dumps).
  schedulers::StepCallback on_latents;
};

// 4. Denoise loop: runs the plan's sampler from x. Callbacks: on_step(i, total) after each step,
// cancelled() before each step (throws Cancelled), on_preview every preview_every steps.
at::Tensor run_diffusion(const DiffusionPlan& plan, const schedulers::NoiseScheduleConfig& config,
                         const schedulers::Network& network, at::Tensor x, const schedulers::NoiseSource& noise,
                         const Callbacks& callbacks, const DiffusionLoopOptions& options = {});

}  // namespace genvis::pipelines
