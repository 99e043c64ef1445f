#include "schedulers/schedule.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace genvis::schedulers {
namespace {

template <typename T>
void read_field(const nlohmann::json& json, const char* key, T& field, std::vector<std::string>& problems) {
  const auto it = json.find(key);
  if (it == json.end() || it->is_null()) return;
  const char* expected = nullptr;
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) expected = "a boolean";
  } else if constexpr (std::is_same_v<T, int64_t>) {
    if (!it->is_number_integer()) expected = "an integer";
  } else if constexpr (std::is_same_v<T, double>) {
    if (!it->is_number()) expected = "a number";
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    const bool ok = it->is_array() && std::all_of(it->begin(), it->end(), [](const auto& v) { return v.is_number_integer(); });
    if (!ok) expected = "a list of integers";
  } else {
    if (!it->is_string()) expected = "a string";
  }
  if (expected) {
    problems.push_back(std::string(key) + ": expected " + expected + " (got " + it->dump() + ")");
    return;
  }
  field = it->get<T>();
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

void check_steps(const NoiseScheduleConfig& config, int64_t n) {
  if (n < 1 || n > config.num_train_timesteps)
    throw UsageError("num_inference_steps must be in [1, " + std::to_string(config.num_train_timesteps) + "] (got " +
                     std::to_string(n) + ")");
}

void check_config(const NoiseScheduleConfig& config) {
  const auto problems = config.validate();
  if (!problems.empty()) throw UsageError("invalid scheduler config: " + join(problems, "; "));
}

// numpy.linspace in float64 (the last value is exactly `stop`).
std::vector<double> np_linspace(double start, double stop, int64_t num) {
  std::vector<double> out(static_cast<size_t>(num));
  const double step = num > 1 ? (stop - start) / static_cast<double>(num - 1) : 0.0;
  for (int64_t i = 0; i < num; ++i) out[i] = static_cast<double>(i) * step + start;
  if (num > 1) out.back() = stop;
  return out;
}

// numpy.round: half to even.
double np_round(double x) { return std::nearbyint(x); }

// numpy.arange(start, 0, -step) with a float step, values as numpy computes them. numpy's
// length is ceil(start / step), which float rounding can make N + 1 (an extra near-zero
// timestep); we keep exactly n entries.
std::vector<double> np_arange_down(double start, double step, int64_t n) {
  const double delta = (start - step) - start;
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = start + static_cast<double>(i) * delta;
  return out;
}

// numpy.interp(x, arange(len(fp)), fp) in float64.
double np_interp(double x, const std::vector<float>& fp) {
  const int64_t n = static_cast<int64_t>(fp.size());
  if (x <= 0.0) return fp.front();
  if (x >= static_cast<double>(n - 1)) return fp.back();
  const auto j = static_cast<int64_t>(std::floor(x));
  if (static_cast<double>(j) == x) return fp[j];
  const double slope = (static_cast<double>(fp[j + 1]) - static_cast<double>(fp[j])) / 1.0;
  return slope * (x - static_cast<double>(j)) + static_cast<double>(fp[j]);
}

std::vector<double> to_float32_values(std::vector<double> v) {
  for (double& x : v) x = static_cast<double>(static_cast<float>(x));
  return v;
}

// A sigma list not taken from the timestep grid (Karras etc.), without its trailing 0.
std::vector<double> spaced_sigmas(SigmaSpacing spacing, int64_t n, double sigma_min, double sigma_max,
                                  const std::vector<float>& table) {
  std::vector<double> s;
  switch (spacing) {
    case SigmaSpacing::Karras: s = sigmas_karras(n, sigma_min, sigma_max); break;
    case SigmaSpacing::Exponential: s = sigmas_exponential(n, sigma_min, sigma_max); break;
    case SigmaSpacing::SGMUniform: s = sigmas_sgm_uniform(n, table); break;
    case SigmaSpacing::Default: break;
  }
  s.pop_back();  // the trailing 0 is re-appended by the caller
  return s;
}

}  // namespace

std::vector<std::string> NoiseScheduleConfig::validate() const {
  std::vector<std::string> problems;
  auto one_of = [&](const char* key, const std::string& value, std::initializer_list<const char*> allowed) {
    for (const char* a : allowed)
      if (value == a) return;
    std::string list;
    for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + "\"" + a + "\"";
    problems.push_back(std::string(key) + " must be one of " + list + " (got \"" + value + "\")");
  };
  auto unsupported = [&](const char* key, bool value) {
    if (value) problems.push_back(std::string(key) + "=true is not supported");
  };
  if (num_train_timesteps < 2)
    problems.push_back("num_train_timesteps must be >= 2 (got " + std::to_string(num_train_timesteps) + ")");
  if (!(beta_start > 0.0) || !(beta_end > beta_start) || !(beta_end < 1.0)) {
    std::ostringstream s;
    s << "betas must satisfy 0 < beta_start < beta_end < 1 (got " << beta_start << ", " << beta_end << ")";
    problems.push_back(s.str());
  }
  one_of("beta_schedule", beta_schedule, {"scaled_linear", "linear", "squaredcos_cap_v2"});
  one_of("prediction_type", prediction_type, {"epsilon", "v_prediction", "flow"});
  // DPMSolver configs carry their own solver types; UniPC reads those as bh2, as diffusers does.
  one_of("solver_type", solver_type, {"bh1", "bh2", "midpoint", "heun", "logrho"});
  if (solver_order < 1 || solver_order > 3)
    problems.push_back("solver_order must be 1, 2 or 3 (got " + std::to_string(solver_order) + ")");
  if (!(flow_shift > 0.0)) problems.push_back("flow_shift must be positive");
  if (use_flow_sigmas && prediction_type != "flow")
    problems.push_back("use_flow_sigmas needs prediction_type flow_prediction (got \"" + prediction_type + "\")");
  one_of("timestep_spacing", timestep_spacing, {"leading", "linspace", "trailing"});
  one_of("final_sigmas_type", final_sigmas_type, {"zero"});
  if (steps_offset < 0) problems.push_back("steps_offset must be >= 0 (got " + std::to_string(steps_offset) + ")");
  if (original_inference_steps < 1 || original_inference_steps > num_train_timesteps)
    problems.push_back("original_inference_steps must be in [1, num_train_timesteps] (got " +
                       std::to_string(original_inference_steps) + ")");
  if (!(timestep_scaling > 0.0)) problems.push_back("timestep_scaling must be positive");
  if (!(shift > 0.0)) problems.push_back("shift must be positive");
  if (use_karras_sigmas && use_exponential_sigmas)
    problems.push_back("use_karras_sigmas and use_exponential_sigmas are exclusive");
  unsupported("clip_sample", clip_sample);
  unsupported("thresholding", thresholding);
  unsupported("rescale_betas_zero_snr", rescale_betas_zero_snr);
  unsupported("use_dynamic_shifting", use_dynamic_shifting);
  return problems;
}

NoiseScheduleConfig NoiseScheduleConfig::from_json(const nlohmann::json& json) {
  if (!json.is_object()) throw UsageError("scheduler config must be a JSON object");
  NoiseScheduleConfig c;
  std::vector<std::string> problems;
  read_field(json, "num_train_timesteps", c.num_train_timesteps, problems);
  read_field(json, "beta_start", c.beta_start, problems);
  read_field(json, "beta_end", c.beta_end, problems);
  read_field(json, "beta_schedule", c.beta_schedule, problems);
  read_field(json, "prediction_type", c.prediction_type, problems);
  read_field(json, "timestep_spacing", c.timestep_spacing, problems);
  read_field(json, "steps_offset", c.steps_offset, problems);
  read_field(json, "set_alpha_to_one", c.set_alpha_to_one, problems);
  read_field(json, "skip_prk_steps", c.skip_prk_steps, problems);
  read_field(json, "clip_sample", c.clip_sample, problems);
  read_field(json, "thresholding", c.thresholding, problems);
  read_field(json, "rescale_betas_zero_snr", c.rescale_betas_zero_snr, problems);
  read_field(json, "use_karras_sigmas", c.use_karras_sigmas, problems);
  read_field(json, "use_exponential_sigmas", c.use_exponential_sigmas, problems);
  read_field(json, "final_sigmas_type", c.final_sigmas_type, problems);
  read_field(json, "original_inference_steps", c.original_inference_steps, problems);
  read_field(json, "timestep_scaling", c.timestep_scaling, problems);
  read_field(json, "shift", c.shift, problems);
  read_field(json, "use_dynamic_shifting", c.use_dynamic_shifting, problems);
  read_field(json, "use_flow_sigmas", c.use_flow_sigmas, problems);
  read_field(json, "flow_shift", c.flow_shift, problems);
  read_field(json, "solver_order", c.solver_order, problems);
  read_field(json, "solver_type", c.solver_type, problems);
  read_field(json, "lower_order_final", c.lower_order_final, problems);
  read_field(json, "disable_corrector", c.disable_corrector, problems);
  if (c.prediction_type == "flow_prediction") c.prediction_type = "flow";  // UniPC's name for it
  if (c.use_flow_sigmas && !json.contains("shift")) c.shift = c.flow_shift;
  for (const char* key : {"predict_x0", "use_beta_sigmas"}) {
    const auto it = json.find(key);
    const bool wanted = std::string(key) == "predict_x0";  // the only supported value
    if (it != json.end() && it->is_boolean() && it->get<bool>() != wanted)
      problems.push_back(std::string(key) + "=" + (wanted ? "false" : "true") + " is not supported");
  }
  if (const auto it = json.find("solver_p"); it != json.end() && !it->is_null())
    problems.push_back("solver_p is not supported");
  if (const auto it = json.find("trained_betas"); it != json.end() && !it->is_null())
    problems.push_back("trained_betas is not supported");
  // FlowMatchEulerDiscreteScheduler configs carry no prediction_type: the class implies it.
  if (const auto it = json.find("_class_name");
      it != json.end() && it->is_string() && it->get<std::string>().rfind("FlowMatch", 0) == 0 &&
      !json.contains("prediction_type"))
    c.prediction_type = "flow";
  static const std::set<std::string> kRead = {
      "num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type", "timestep_spacing",
      "steps_offset", "set_alpha_to_one", "skip_prk_steps", "clip_sample", "thresholding", "rescale_betas_zero_snr",
      "use_karras_sigmas", "use_exponential_sigmas", "final_sigmas_type", "original_inference_steps",
      "timestep_scaling", "shift", "use_dynamic_shifting", "trained_betas", "use_flow_sigmas", "flow_shift",
      "solver_order", "solver_type", "lower_order_final", "disable_corrector", "predict_x0", "use_beta_sigmas",
      "solver_p"};
  for (const auto& [key, value] : json.items())
    if (!kRead.count(key)) c.ignored_keys.push_back(key);
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) throw UsageError("invalid scheduler config: " + join(problems, "; "));
  return c;
}

at::Tensor betas(const NoiseScheduleConfig& config) {
  check_config(config);
  const int64_t t = config.num_train_timesteps;
  if (config.beta_schedule == "linear") return at::linspace(config.beta_start, config.beta_end, t, at::kFloat);
  if (config.beta_schedule == "scaled_linear")
    return at::linspace(std::pow(config.beta_start, 0.5), std::pow(config.beta_end, 0.5), t, at::kFloat).pow(2);
  // squaredcos_cap_v2 (Nichol & Dhariwal 2021, "Improved DDPM"), in float64 then float32.
  auto alpha_bar = [](double x) { return std::pow(std::cos((x + 0.008) / 1.008 * M_PI / 2), 2); };
  std::vector<float> b(static_cast<size_t>(t));
  for (int64_t i = 0; i < t; ++i) {
    const double t1 = static_cast<double>(i) / t, t2 = static_cast<double>(i + 1) / t;
    b[i] = static_cast<float>(std::min(1 - alpha_bar(t2) / alpha_bar(t1), 0.999));
  }
  return at::tensor(b, at::kFloat);
}

at::Tensor alphas_cumprod(const NoiseScheduleConfig& config) { return at::cumprod(1.0 - betas(config), 0); }

std::vector<float> training_sigmas(const NoiseScheduleConfig& config) {
  const at::Tensor acp = alphas_cumprod(config);
  const at::Tensor s = ((1 - acp) / acp).pow(0.5).contiguous();
  return std::vector<float>(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
}

double sigma_to_timestep(double sigma, const std::vector<float>& table) {
  const int64_t n = static_cast<int64_t>(table.size());
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  auto log_at = [&](int64_t i) { return static_cast<double>(std::log(table[i])); };
  int64_t low = 0;
  for (int64_t i = 0; i < n; ++i)
    if (log_sigma - log_at(i) >= 0) low = i;
  low = std::min(low, n - 2);
  const double lo = log_at(low), hi = log_at(low + 1);
  const double w = std::clamp((lo - log_sigma) / (lo - hi), 0.0, 1.0);
  return (1 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
}

double timestep_to_sigma(double timestep, const std::vector<float>& table) {
  const double t = std::clamp(timestep, 0.0, static_cast<double>(table.size() - 1));
  const auto low = static_cast<int64_t>(std::floor(t)), high = static_cast<int64_t>(std::ceil(t));
  const double w = t - std::floor(t);
  return std::exp((1 - w) * std::log(table[low]) + w * std::log(table[high]));
}

void check_sigmas(const std::vector<double>& sigmas, const char* who) {
  if (sigmas.size() < 2) throw UsageError(std::string(who) + ": need at least 2 sigmas (one step)");
  if (sigmas.back() != 0.0) throw UsageError(std::string(who) + ": the sigma list must end in 0");
  for (size_t i = 0; i + 1 < sigmas.size(); ++i)
    if (!(sigmas[i] > 0.0) || sigmas[i + 1] > sigmas[i])
      throw UsageError(std::string(who) + ": sigmas must be positive and non-increasing (index " +
                       std::to_string(i) + ")");
}

std::vector<double> sigmas_karras(int64_t n, double sigma_min, double sigma_max, double rho) {
  if (n < 1) throw UsageError("sigmas_karras: n must be >= 1 (got " + std::to_string(n) + ")");
  if (!(sigma_min > 0.0) || !(sigma_max >= sigma_min))
    throw UsageError("sigmas_karras: need 0 < sigma_min <= sigma_max");
  // Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models", eq. 5.
  const auto ramp = np_linspace(0.0, 1.0, n);
  const double min_inv_rho = std::pow(sigma_min, 1 / rho), max_inv_rho = std::pow(sigma_max, 1 / rho);
  std::vector<double> s;
  for (double r : ramp) s.push_back(std::pow(max_inv_rho + r * (min_inv_rho - max_inv_rho), rho));
  s.push_back(0.0);
  return s;
}

std::vector<double> sigmas_exponential(int64_t n, double sigma_min, double sigma_max) {
  if (n < 1) throw UsageError("sigmas_exponential: n must be >= 1 (got " + std::to_string(n) + ")");
  if (!(sigma_min > 0.0) || !(sigma_max >= sigma_min))
    throw UsageError("sigmas_exponential: need 0 < sigma_min <= sigma_max");
  std::vector<double> s;
  for (double l : np_linspace(std::log(sigma_max), std::log(sigma_min), n)) s.push_back(std::exp(l));
  s.push_back(0.0);
  return s;
}

std::vector<double> sigmas_sgm_uniform(int64_t n, const std::vector<float>& table) {
  if (n < 1) throw UsageError("sigmas_sgm_uniform: n must be >= 1 (got " + std::to_string(n) + ")");
  const double start = sigma_to_timestep(table.back(), table), end = sigma_to_timestep(table.front(), table);
  auto ts = np_linspace(start, end, n + 1);
  std::vector<double> s;
  for (int64_t i = 0; i < n; ++i) s.push_back(timestep_to_sigma(ts[i], table));
  s.push_back(0.0);
  return s;
}

std::vector<double> sigmas_from_timesteps(const std::vector<double>& timesteps, const std::vector<float>& table) {
  std::vector<double> s;
  for (double t : timesteps) s.push_back(np_interp(t, table));
  s.push_back(0.0);
  return s;
}

std::vector<int64_t> discrete_timesteps(const NoiseScheduleConfig& config, int64_t n) {
  check_config(config);
  check_steps(config, n);
  const int64_t t = config.num_train_timesteps;
  std::vector<int64_t> out;
  if (config.timestep_spacing == "linspace") {
    for (double v : np_linspace(0, static_cast<double>(t - 1), n)) out.push_back(static_cast<int64_t>(np_round(v)));
    std::reverse(out.begin(), out.end());
  } else if (config.timestep_spacing == "leading") {
    const int64_t ratio = t / n;
    for (int64_t i = n - 1; i >= 0; --i) out.push_back(i * ratio + config.steps_offset);
  } else {
    for (double v : np_arange_down(static_cast<double>(t), static_cast<double>(t) / n, n))
      out.push_back(static_cast<int64_t>(np_round(v)) - 1);
  }
  return out;
}

std::vector<int64_t> lcm_timesteps(const NoiseScheduleConfig& config, int64_t n) {
  check_config(config);
  check_steps(config, n);
  const int64_t original = config.original_inference_steps;
  if (n > original)
    throw UsageError("LCM num_inference_steps must be <= original_inference_steps " + std::to_string(original) +
                     " (got " + std::to_string(n) + ")");
  const int64_t k = config.num_train_timesteps / original;
  std::vector<int64_t> grid;  // descending: original * k - 1, ..., k - 1
  for (int64_t i = original; i >= 1; --i) grid.push_back(i * k - 1);
  std::vector<int64_t> out;
  // np.linspace(0, len, n, endpoint=False) floored.
  const double step = static_cast<double>(grid.size()) / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) out.push_back(grid[static_cast<size_t>(std::floor(static_cast<double>(i) * step))]);
  return out;
}

float DiscreteSchedule::alpha_at(int64_t timestep) const {
  return timestep >= 0 ? alphas_cumprod[timestep].item<float>() : final_alpha_cumprod;
}

DiscreteSchedule ddim_schedule(const NoiseScheduleConfig& config, int64_t n) {
  DiscreteSchedule s;
  s.timesteps = discrete_timesteps(config, n);
  const int64_t ratio = config.num_train_timesteps / n;
  for (int64_t t : s.timesteps) s.prev_timesteps.push_back(t - ratio >= 0 ? t - ratio : -1);
  s.alphas_cumprod = alphas_cumprod(config);
  s.final_alpha_cumprod = config.set_alpha_to_one ? 1.0f : s.alphas_cumprod[0].item<float>();
  return s;
}

DiscreteSchedule lcm_schedule(const NoiseScheduleConfig& config, int64_t n) {
  DiscreteSchedule s;
  s.timesteps = lcm_timesteps(config, n);
  for (size_t i = 0; i < s.timesteps.size(); ++i)
    s.prev_timesteps.push_back(i + 1 < s.timesteps.size() ? s.timesteps[i + 1] : s.timesteps[i]);
  s.alphas_cumprod = alphas_cumprod(config);
  s.final_alpha_cumprod = config.set_alpha_to_one ? 1.0f : s.alphas_cumprod[0].item<float>();
  return s;
}

std::vector<int64_t> plms_timesteps(const NoiseScheduleConfig& config, int64_t n) {
  auto t = discrete_timesteps(config, n);
  if (t.size() >= 2) t.insert(t.begin() + 1, t[1]);
  return t;
}

SigmaSchedule euler_schedule(const NoiseScheduleConfig& config, int64_t n, SigmaSpacing spacing) {
  check_config(config);
  check_steps(config, n);
  const int64_t t = config.num_train_timesteps;
  std::vector<double> timesteps;
  if (config.timestep_spacing == "linspace") {
    for (double v : np_linspace(0, static_cast<double>(t - 1), n)) timesteps.push_back(static_cast<float>(v));
    std::reverse(timesteps.begin(), timesteps.end());
  } else if (config.timestep_spacing == "leading") {
    const int64_t ratio = t / n;
    for (int64_t i = n - 1; i >= 0; --i)
      timesteps.push_back(static_cast<float>(i * ratio) + static_cast<float>(config.steps_offset));
  } else {
    for (double v : np_arange_down(static_cast<double>(t), static_cast<double>(t) / n, n))
      timesteps.push_back(static_cast<float>(np_round(v)) - 1.0f);
  }
  const auto table = training_sigmas(config);
  SigmaSchedule s;
  s.sigmas = sigmas_from_timesteps(timesteps, table);
  if (spacing != SigmaSpacing::Default) {
    const double sigma_min = s.sigmas[s.sigmas.size() - 2], sigma_max = s.sigmas.front();
    s.sigmas = spaced_sigmas(spacing, n, sigma_min, sigma_max, table);
    timesteps.clear();
    for (double sigma : s.sigmas) timesteps.push_back(static_cast<float>(sigma_to_timestep(sigma, table)));
    s.sigmas.push_back(0.0);
  }
  s.sigmas = to_float32_values(s.sigmas);
  s.timesteps = timesteps;
  const float max_sigma = static_cast<float>(*std::max_element(s.sigmas.begin(), s.sigmas.end()));
  s.init_noise_sigma = config.timestep_spacing == "leading" ? std::sqrt(max_sigma * max_sigma + 1.0f) : max_sigma;
  return s;
}

SigmaSchedule dpm_solver_schedule(const NoiseScheduleConfig& config, int64_t n, SigmaSpacing spacing) {
  check_config(config);
  check_steps(config, n);
  const int64_t t = config.num_train_timesteps;  // lambda_min_clipped = -inf keeps every timestep
  std::vector<double> timesteps;
  if (config.timestep_spacing == "linspace") {
    const auto v = np_linspace(0, static_cast<double>(t - 1), n + 1);
    for (int64_t i = n; i >= 1; --i) timesteps.push_back(np_round(v[i]));
  } else if (config.timestep_spacing == "leading") {
    const int64_t ratio = t / (n + 1);
    for (int64_t i = n; i >= 1; --i) timesteps.push_back(static_cast<double>(i * ratio + config.steps_offset));
  } else {
    for (double v : np_arange_down(static_cast<double>(t), static_cast<double>(t) / n, n))
      timesteps.push_back(np_round(v) - 1);
  }
  const auto table = training_sigmas(config);
  SigmaSchedule s;
  if (spacing == SigmaSpacing::Default) {
    s.sigmas = sigmas_from_timesteps(timesteps, table);
  } else {
    s.sigmas = spaced_sigmas(spacing, n, table.front(), table.back(), table);
    timesteps.clear();
    for (double sigma : s.sigmas) timesteps.push_back(np_round(sigma_to_timestep(sigma, table)));
    s.sigmas.push_back(0.0);
  }
  s.sigmas = to_float32_values(s.sigmas);
  s.timesteps = timesteps;
  const float max_sigma = static_cast<float>(s.sigmas.front());
  s.init_noise_sigma = std::sqrt(max_sigma * max_sigma + 1.0f);
  return s;
}

SigmaSchedule flow_match_schedule(const NoiseScheduleConfig& config, int64_t n) {
  check_config(config);
  check_steps(config, n);
  const auto t = static_cast<double>(config.num_train_timesteps);
  // __init__ already shifts the training sigmas in float32, so sigma_min is shift(1/T).
  const float shift_f = static_cast<float>(config.shift);
  const float x_min = 1.0f / static_cast<float>(t);
  const float sigma_min = shift_f * x_min / (1.0f + static_cast<float>(config.shift - 1) * x_min);
  const double sigma_max = 1.0;
  SigmaSchedule s;
  for (double ts : np_linspace(sigma_max * t, static_cast<double>(sigma_min) * t, n)) {
    const double x = ts / t;
    const auto sigma = static_cast<float>(config.shift * x / (1 + (config.shift - 1) * x));
    s.sigmas.push_back(sigma);
    s.timesteps.push_back(sigma * static_cast<float>(t));
  }
  s.sigmas.push_back(0.0);
  s.init_noise_sigma = 1.0;
  return s;
}

SigmaSchedule flow_sigmas_schedule(const NoiseScheduleConfig& config, int64_t n) {
  check_config(config);
  check_steps(config, n);
  if (!config.use_flow_sigmas) throw UsageError("flow_sigmas_schedule needs a scheduler config with use_flow_sigmas");
  const auto t = static_cast<double>(config.num_train_timesteps);
  const double s = config.flow_shift;
  const std::vector<double> alphas = np_linspace(1.0, 1.0 / t, n + 1);
  SigmaSchedule out;
  for (int64_t i = 0; i < n; ++i) {  // reversed: the largest sigma first, sigma(alphas[N]) dropped
    const double x = 1.0 - alphas[static_cast<size_t>(n - i)];
    const double sigma = s * x / (1 + (s - 1) * x);
    out.sigmas.push_back(static_cast<float>(sigma));
    out.timesteps.push_back(std::trunc(sigma * t));
  }
  out.sigmas.push_back(0.0);  // final_sigmas_type "zero"
  out.init_noise_sigma = 1.0;
  return out;
}

}  // namespace genvis::schedulers
