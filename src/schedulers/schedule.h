// Noise schedules: the training schedule (betas, alphas_cumprod), timestep spacings and sigma
// lists, matching diffusers 0.31 value for value.
//
//   auto config = genvis::schedulers::NoiseScheduleConfig::from_json(scheduler_config_json);
//   SigmaSchedule s = euler_schedule(config, 20, SigmaSpacing::Karras);
//   at::Tensor x = noise * s.init_noise_sigma;            // then sample_euler(denoise, x, s.sigmas)
//
// Precision follows the reference: betas and alphas_cumprod are float32 (torch), spacings and
// interpolation float64 (numpy), and every sigma list is rounded to float32 at the end, so the
// doubles returned here hold float32 values wherever diffusers stores float32.
#pragma once
#include <ATen/ATen.h>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace genvis::schedulers {

// Field names and meanings equal to diffusers' scheduler_config.json. Defaults are those of the
// Stable Diffusion 1.x scheduler configs, not of any one diffusers class.
struct NoiseScheduleConfig {
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.00085;
  double beta_end = 0.012;
  std::string beta_schedule = "scaled_linear";  // "scaled_linear", "linear", "squaredcos_cap_v2"
  std::string prediction_type = "epsilon";      // "epsilon", "v_prediction", "flow"
  std::string timestep_spacing = "leading";     // "leading", "linspace", "trailing"
  int64_t steps_offset = 1;
  bool set_alpha_to_one = false;
  bool skip_prk_steps = true;
  bool clip_sample = false;
  bool thresholding = false;
  bool rescale_betas_zero_snr = false;
  bool use_karras_sigmas = false;
  bool use_exponential_sigmas = false;
  std::string final_sigmas_type = "zero";  // only "zero" is supported
  int64_t original_inference_steps = 50;   // LCM
  double timestep_scaling = 10.0;          // LCM
  double shift = 1.0;                      // flow matching
  bool use_dynamic_shifting = false;       // flow matching (resolution-dependent mu): unsupported
  // UniPCMultistepScheduler (Wan's default). prediction_type "flow_prediction" is read as "flow";
  // with use_flow_sigmas a config that gives no `shift` uses flow_shift for flow_euler too.
  bool use_flow_sigmas = false;
  double flow_shift = 1.0;
  int64_t solver_order = 2;                // 1..3
  std::string solver_type = "bh2";         // "bh1", "bh2" (DPMSolver's "midpoint", "heun", "logrho": bh2)
  bool lower_order_final = true;
  std::vector<int64_t> disable_corrector;  // step indices whose following corrector is skipped

  // Keys present in the JSON that this struct does not read (diffusers has many per class).
  std::vector<std::string> ignored_keys;

  // Every problem, empty when valid.
  std::vector<std::string> validate() const;
  // Parses and validates; throws UsageError listing every bad field at once.
  static NoiseScheduleConfig from_json(const nlohmann::json& json);
};

// float32 [num_train_timesteps].
at::Tensor betas(const NoiseScheduleConfig& config);
// float32 [num_train_timesteps] = cumprod(1 - betas), in float32 like diffusers.
at::Tensor alphas_cumprod(const NoiseScheduleConfig& config);
// float32 values of sqrt((1 - acp) / acp) per training timestep (ascending in t and sigma).
std::vector<float> training_sigmas(const NoiseScheduleConfig& config);

// Fractional timestep of a sigma by linear interpolation of log(sigma) over the training
// sigmas (diffusers _sigma_to_t / k-diffusion sigma_to_t); clamped to [0, T-1].
double sigma_to_timestep(double sigma, const std::vector<float>& training_sigmas);
// Inverse: sigma of a fractional timestep by log-linear interpolation (k-diffusion t_to_sigma).
double timestep_to_sigma(double timestep, const std::vector<float>& training_sigmas);

// Integer timesteps of DDIM/DDPM/PNDM-style schedulers (descending) per timestep_spacing.
// Throws UsageError for num_inference_steps outside [1, num_train_timesteps].
std::vector<int64_t> discrete_timesteps(const NoiseScheduleConfig& config, int64_t num_inference_steps);
// LCM: num_inference_steps evenly skipped from the original_inference_steps distillation grid.
std::vector<int64_t> lcm_timesteps(const NoiseScheduleConfig& config, int64_t num_inference_steps);

// Timestep-space schedule for the alpha-based samplers (DDIM, DDPM, PLMS, LCM).
// prev_timesteps[i] is where step i lands; -1 means "past the end" (final_alpha_cumprod).
struct DiscreteSchedule {
  std::vector<int64_t> timesteps;
  std::vector<int64_t> prev_timesteps;
  at::Tensor alphas_cumprod;  // float32 [T]
  float final_alpha_cumprod = 1.0f;  // 1 if set_alpha_to_one, else alphas_cumprod[0]

  float alpha_at(int64_t timestep) const;  // alphas_cumprod[t], final_alpha_cumprod for t < 0
};
// DDIM/DDPM/PNDM: discrete_timesteps, prev = t - T / N as diffusers does for every spacing.
DiscreteSchedule ddim_schedule(const NoiseScheduleConfig& config, int64_t num_inference_steps);
// LCM: lcm_timesteps, prev = the next timestep (the last step lands on its own timestep).
DiscreteSchedule lcm_schedule(const NoiseScheduleConfig& config, int64_t num_inference_steps);
// diffusers PNDMScheduler (skip_prk_steps) timesteps as it lists them: N + 1 entries, the
// second repeated, because PLMS's first step costs two model calls.
std::vector<int64_t> plms_timesteps(const NoiseScheduleConfig& config, int64_t num_inference_steps);

// Sigma-space schedule: sigmas has N + 1 entries, decreasing, ending in 0; timesteps[i] is the
// model timestep for sigmas[i]; init_noise_sigma scales unit noise to the first sample.
struct SigmaSchedule {
  std::vector<double> sigmas;
  std::vector<double> timesteps;
  double init_noise_sigma = 1.0;
};

// UsageError unless sigmas has >= 2 entries, is non-increasing, positive, and ends in 0.
void check_sigmas(const std::vector<double>& sigmas, const char* who);

enum class SigmaSpacing { Default, Karras, Exponential, SGMUniform };

// Sigma list endings, all appending 0 (k-diffusion get_sigmas_*). n >= 1.
std::vector<double> sigmas_karras(int64_t n, double sigma_min, double sigma_max, double rho = 7.0);
std::vector<double> sigmas_exponential(int64_t n, double sigma_min, double sigma_max);
// A1111 sgm_uniform: n timesteps uniform between those of sigma_max and sigma_min.
std::vector<double> sigmas_sgm_uniform(int64_t n, const std::vector<float>& training_sigmas);
// diffusers Euler: linear interpolation of the training sigmas at fractional timesteps.
std::vector<double> sigmas_from_timesteps(const std::vector<double>& timesteps,
                                          const std::vector<float>& training_sigmas);

// diffusers EulerDiscreteScheduler / EulerAncestralDiscreteScheduler.set_timesteps: fractional
// float32 timesteps per timestep_spacing; init_noise_sigma = sigma_max, or sqrt(sigma_max^2 + 1)
// for "leading".
SigmaSchedule euler_schedule(const NoiseScheduleConfig& config, int64_t num_inference_steps,
                             SigmaSpacing spacing = SigmaSpacing::Default);
// diffusers DPMSolverMultistepScheduler.set_timesteps: integer timesteps (rounded), sigmas at
// them. init_noise_sigma is the VE-space equivalent of diffusers' 1.0: sqrt(sigma_max^2 + 1).
SigmaSchedule dpm_solver_schedule(const NoiseScheduleConfig& config, int64_t num_inference_steps,
                                  SigmaSpacing spacing = SigmaSpacing::Default);
// diffusers FlowMatchEulerDiscreteScheduler.set_timesteps: sigma in [0, 1], shifted by
// s*x / (1 + (s-1)*x); timesteps = 1000 * sigma; init_noise_sigma 1.
SigmaSchedule flow_match_schedule(const NoiseScheduleConfig& config, int64_t num_inference_steps);
// diffusers UniPCMultistepScheduler.set_timesteps with use_flow_sigmas: sigma = s*x / (1 + (s-1)*x)
// at x = 1 - linspace(1, 1/T, N + 1)[:N] (float64, s = flow_shift), reversed, then 0; timesteps =
// int(1000 * sigma) truncated; init_noise_sigma 1 (the first sigma is just below 1).
SigmaSchedule flow_sigmas_schedule(const NoiseScheduleConfig& config, int64_t num_inference_steps);

}  // namespace genvis::schedulers
