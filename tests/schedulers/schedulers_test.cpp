// Properties of schedules and samplers that hold for any config (no fixtures needed).
#include "core/error.h"
#include "schedulers/registry.h"
#include "schedulers/samplers.h"
#include "support/test_support.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace genvis::schedulers {
namespace {

NoiseScheduleConfig sd_config() { return NoiseScheduleConfig{}; }

void expect_decreasing_to_zero(const std::vector<double>& s, const std::string& what) {
  ASSERT_GE(s.size(), 2u) << what;
  EXPECT_EQ(s.back(), 0.0) << what;
  for (size_t i = 0; i + 1 < s.size(); ++i) EXPECT_GT(s[i], s[i + 1]) << what << " at " << i;
}

TEST(Schedule, SigmaListsDecreaseAndEndInZero) {
  // "leading" with N close to T repeats timesteps (as in diffusers), so use "linspace".
  auto config = sd_config();
  config.timestep_spacing = "linspace";
  const auto table = training_sigmas(config);
  for (int64_t n : {1, 2, 7, 30, 500}) {
    const std::string tag = " n=" + std::to_string(n);
    for (auto spacing : {SigmaSpacing::Default, SigmaSpacing::Karras, SigmaSpacing::Exponential,
                         SigmaSpacing::SGMUniform}) {
      const auto s = euler_schedule(config, n, spacing);
      ASSERT_EQ(s.sigmas.size(), static_cast<size_t>(n + 1));
      ASSERT_EQ(s.timesteps.size(), static_cast<size_t>(n));
      if (n > 1 || spacing == SigmaSpacing::Default) expect_decreasing_to_zero(s.sigmas, "euler" + tag);
    }
    expect_decreasing_to_zero(dpm_solver_schedule(config, n).sigmas, "dpm" + tag);
    expect_decreasing_to_zero(flow_match_schedule(config, n).sigmas, "flow" + tag);
  }
  expect_decreasing_to_zero(sigmas_sgm_uniform(10, table), "sgm_uniform");
}

TEST(Schedule, KarrasEndpoints) {
  const auto s = sigmas_karras(10, 0.03, 14.6);
  ASSERT_EQ(s.size(), 11u);
  EXPECT_NEAR(s.front(), 14.6, 1e-12);
  EXPECT_NEAR(s[9], 0.03, 1e-12);
  EXPECT_EQ(s.back(), 0.0);
  const auto e = sigmas_exponential(5, 0.1, 10.0);
  EXPECT_NEAR(e.front(), 10.0, 1e-12);
  EXPECT_NEAR(e[2], 1.0, 1e-12);  // geometric midpoint
  EXPECT_NEAR(e[4], 0.1, 1e-12);
}

TEST(Schedule, TrainingSigmasRoundTripThroughTimesteps) {
  const auto table = training_sigmas(sd_config());
  ASSERT_EQ(table.size(), 1000u);
  EXPECT_NEAR(table.front(), 0.0292, 1e-4);
  EXPECT_NEAR(table.back(), 14.6146, 1e-3);
  for (int t : {0, 1, 250, 500, 998, 999}) {
    EXPECT_NEAR(sigma_to_timestep(table[t], table), t, 1e-3);
    EXPECT_NEAR(timestep_to_sigma(t, table), table[t], 1e-5 * table[t]);
  }
}

TEST(Schedule, TimestepSpacings) {
  auto config = sd_config();
  EXPECT_EQ(discrete_timesteps(config, 4), (std::vector<int64_t>{751, 501, 251, 1}));
  EXPECT_EQ(plms_timesteps(config, 4), (std::vector<int64_t>{751, 501, 501, 251, 1}));
  config.timestep_spacing = "trailing";
  EXPECT_EQ(discrete_timesteps(config, 4), (std::vector<int64_t>{999, 749, 499, 249}));
  config.timestep_spacing = "linspace";
  EXPECT_EQ(discrete_timesteps(config, 4), (std::vector<int64_t>{999, 666, 333, 0}));
  EXPECT_EQ(lcm_timesteps(sd_config(), 4), (std::vector<int64_t>{999, 759, 499, 259}));
  const auto d = ddim_schedule(sd_config(), 4);
  EXPECT_EQ(d.prev_timesteps, (std::vector<int64_t>{501, 251, 1, -1}));
  EXPECT_FLOAT_EQ(d.final_alpha_cumprod, d.alphas_cumprod[0].item<float>());
}

TEST(Schedule, ZeroOrNegativeStepsRefused) {
  const auto config = sd_config();
  for (int64_t n : {0, -1, 1001}) {
    EXPECT_THROW(euler_schedule(config, n), UsageError) << n;
    EXPECT_THROW(dpm_solver_schedule(config, n), UsageError) << n;
    EXPECT_THROW(flow_match_schedule(config, n), UsageError) << n;
    EXPECT_THROW(discrete_timesteps(config, n), UsageError) << n;
    EXPECT_THROW(ddim_schedule(config, n), UsageError) << n;
  }
  EXPECT_THROW(lcm_schedule(config, 51), UsageError);  // more than original_inference_steps
  EXPECT_THROW(sigmas_karras(0, 0.1, 10), UsageError);
  EXPECT_THROW(sigmas_exponential(-3, 0.1, 10), UsageError);
}

TEST(Config, ParsesDiffusersJsonAndListsIgnoredKeys) {
  const auto json = nlohmann::json::parse(R"({
    "_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085,
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "timestep_spacing": "linspace",
    "prediction_type": "v_prediction", "interpolation_type": "linear", "steps_offset": 1})");
  const auto c = NoiseScheduleConfig::from_json(json);
  EXPECT_EQ(c.timestep_spacing, "linspace");
  EXPECT_EQ(c.prediction_type, "v_prediction");
  EXPECT_EQ(c.ignored_keys, (std::vector<std::string>{"_class_name", "interpolation_type"}));
  const auto flow = NoiseScheduleConfig::from_json(
      nlohmann::json::parse(R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0})"));
  EXPECT_EQ(flow.prediction_type, "flow");
  EXPECT_EQ(flow.shift, 3.0);
}

TEST(Config, BadValuesAreAllListed) {
  const auto json = nlohmann::json::parse(R"({
    "beta_schedule": "cosine", "timestep_spacing": "middle", "prediction_type": "sample",
    "num_train_timesteps": "1000", "steps_offset": -1, "shift": 0, "thresholding": true})");
  try {
    NoiseScheduleConfig::from_json(json);
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    for (const char* key : {"beta_schedule", "timestep_spacing", "prediction_type", "num_train_timesteps",
                            "steps_offset", "shift", "thresholding"})
      EXPECT_NE(m.find(key), std::string::npos) << key << " missing from: " << m;
  }
  EXPECT_THROW(NoiseScheduleConfig::from_json(nlohmann::json::array()), UsageError);
  auto c = sd_config();
  c.beta_end = 0.0001;
  EXPECT_THROW(betas(c), UsageError);
}

TEST(Config, BetaSchedules) {
  auto c = sd_config();
  const at::Tensor scaled = betas(c);
  EXPECT_EQ(scaled.scalar_type(), at::kFloat);
  EXPECT_NEAR(scaled[0].item<double>(), 0.00085, 1e-9);
  EXPECT_NEAR(scaled[999].item<double>(), 0.012, 1e-8);
  c.beta_schedule = "linear";
  EXPECT_NEAR(betas(c)[500].item<double>(), 0.00085 + (0.012 - 0.00085) * 500 / 999, 1e-7);
  c.beta_schedule = "squaredcos_cap_v2";
  const at::Tensor acp = alphas_cumprod(c);
  EXPECT_GT(acp[0].item<double>(), 0.999);
  EXPECT_LT(acp[999].item<double>(), 1e-3);
}

TEST(Registry, NamesAndDisplayNames) {
  const auto names = sampler_names();
  for (const char* n : {"euler", "euler_a", "heun", "dpm2", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_2s_a", "ddim", "ddpm",
                        "plms", "lms", "lcm", "flow_euler", "unipc"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_EQ(sampler_info("euler_a").display, "Euler a");
  EXPECT_EQ(sampler_info("DPM++ 2M").name, "dpmpp_2m");
  EXPECT_EQ(schedule_spacing("karras"), SigmaSpacing::Karras);
  EXPECT_EQ(schedule_display_name(SigmaSpacing::SGMUniform), "SGM Uniform");
  try {
    sampler_info("eulerr");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("dpmpp_2m_sde"), std::string::npos) << e.what();
  }
  EXPECT_THROW(schedule_spacing("cosine"), UsageError);
  EXPECT_THROW(parse_prediction_type("sample"), UsageError);
}

// A denoiser that always answers x0 = target: every deterministic ODE sampler must land on it
// (the final step to sigma 0 returns the denoised estimate).
TEST(Samplers, ConstantDenoiserConvergesToItsTarget) {
  const at::Tensor target = at::full({1, 2, 3, 3}, 0.25f);
  const Denoiser d = [&](const at::Tensor&, double) { return target.clone(); };
  const auto s = euler_schedule(sd_config(), 10, SigmaSpacing::Karras);
  Rng rng(7);
  const at::Tensor x = rng.randn({1, 2, 3, 3}) * static_cast<float>(s.init_noise_sigma);
  auto noise = noise_from(rng);
  const std::vector<std::pair<std::string, at::Tensor>> results = {
      {"euler", sample_euler(d, x, s.sigmas)},
      {"euler_a", sample_euler_ancestral(d, x, s.sigmas, noise)},
      {"heun", sample_heun(d, x, s.sigmas)},
      {"dpm2", sample_dpm_2(d, x, s.sigmas)},
      {"lms", sample_lms(d, x, s.sigmas)},
      {"dpmpp_2m", sample_dpmpp_2m(d, x, s.sigmas)},
      {"dpmpp_2m_sde", sample_dpmpp_2m_sde(d, x, s.sigmas, noise)},
      {"dpmpp_2s_a", sample_dpmpp_2s_ancestral(d, x, s.sigmas, noise)},
  };
  for (const auto& [name, out] : results)
    EXPECT_LE((out - target).abs().max().item<double>(), 1e-4) << name;
}

TEST(Registry, EverySamplerRunsByName) {
  const auto config = sd_config();
  const at::Tensor target = at::full({1, 1, 2, 2}, -0.5f);
  const Denoiser d = [&](const at::Tensor&, double) { return target.clone(); };
  const VPDenoiser vp = [&](const at::Tensor& x, int64_t t) {
    const float a = alphas_cumprod(config)[t].item<float>();
    return VPPrediction{target, (x - target * std::sqrt(a)) / std::sqrt(1 - a)};
  };
  Rng rng(11);
  const NoiseSource noise = noise_from(rng);
  const at::Tensor x = rng.randn({1, 1, 2, 2});
  for (const auto& info : samplers()) {
    int64_t steps = 0;
    const StepCallback count = [&](int64_t, const at::Tensor&, const at::Tensor&) { ++steps; };
    at::Tensor out;
    if (info.space == SamplerSpace::Timestep) {
      const auto s = info.name == "lcm" ? lcm_schedule(config, 6) : ddim_schedule(config, 6);
      out = sample_by_name(info.name, vp, x, s, noise, count);
      EXPECT_THROW(sample_by_name(info.name, d, x, euler_schedule(config, 6).sigmas, noise), UsageError);
    } else {
      NoiseScheduleConfig flow = config;
      flow.prediction_type = "flow", flow.use_flow_sigmas = true, flow.flow_shift = 3;
      const auto s = info.name == "unipc"                 ? flow_sigmas_schedule(flow, 6)
                     : info.space == SamplerSpace::Flow ? flow_match_schedule(config, 6)
                                                        : euler_schedule(config, 6);
      out = sample_by_name(info.name, d, x * static_cast<float>(s.init_noise_sigma), s.sigmas, noise, count);
      EXPECT_LE((out - target).abs().max().item<double>(), 1e-4) << info.name;
      EXPECT_THROW(sample_by_name(info.name, vp, x, ddim_schedule(config, 6), noise), UsageError);
    }
    EXPECT_EQ(steps, 6) << info.name;
    EXPECT_TRUE(out.isfinite().all().item<bool>()) << info.name;
  }
}

// With a zero denoiser Euler is exact for x(sigma) = x0 * sigma / sigma_0 (d = x / sigma).
TEST(Samplers, EulerOnZeroDenoiserScalesLinearly) {
  const Denoiser zero = [](const at::Tensor& x, double) { return at::zeros_like(x); };
  const std::vector<double> sigmas = {10.0, 5.0, 2.0, 1.0, 0.5};
  std::vector<double> seen;
  const auto x = sample_euler(zero, at::ones({4}), {10.0, 5.0, 2.0, 0.0},
                              [&](int64_t, const at::Tensor& xi, const at::Tensor&) { seen.push_back(xi[0].item<double>()); });
  EXPECT_NEAR(seen[0], 0.5, 1e-7);
  EXPECT_NEAR(seen[1], 0.2, 1e-7);
  EXPECT_NEAR(x[0].item<double>(), 0.0, 1e-7);
  EXPECT_THROW(sample_euler(zero, at::ones({4}), sigmas), UsageError);  // does not end in 0
  EXPECT_THROW(sample_euler(zero, at::ones({4}), {0.0}), UsageError);
}

// Timestep samplers with a perfect VP denoiser (knows x0 and the noise) recover x0 exactly.
TEST(Samplers, TimestepSamplersRecoverCleanSampleFromPerfectPrediction) {
  const auto config = sd_config();
  const at::Tensor x0 = at::full({1, 1, 2, 2}, 0.5f);
  Rng rng(3);
  const at::Tensor eps = rng.randn({1, 1, 2, 2});
  const auto s = ddim_schedule(config, 20);
  const VPDenoiser perfect = [&](const at::Tensor& x, int64_t t) {
    const float a = s.alpha_at(t);
    return VPPrediction{x0, (x - x0 * std::sqrt(a)) / std::sqrt(1 - a)};
  };
  const float a0 = s.alpha_at(s.timesteps[0]);
  const at::Tensor x_t = x0 * std::sqrt(a0) + eps * std::sqrt(1 - a0);
  // DDIM eta=0 ends at final_alpha_cumprod = acp[0]: x = sqrt(a) x0 + sqrt(1-a) eps.
  const float af = s.final_alpha_cumprod;
  const at::Tensor expected = x0 * std::sqrt(af) + eps * std::sqrt(1 - af);
  EXPECT_LE((sample_ddim(perfect, x_t, s) - expected).abs().max().item<double>(), 1e-4);
  EXPECT_LE((sample_plms(perfect, x_t, s) - expected).abs().max().item<double>(), 1e-4);
  auto noise = noise_from(rng);
  const auto lcm = lcm_schedule(config, 4);
  EXPECT_LE((sample_lcm(perfect, x_t, lcm, noise) - x0).abs().max().item<double>(), 1e-2);
  EXPECT_THROW(sample_ddim(perfect, x_t, s, 1.0), UsageError);  // eta > 0 needs a noise source
}

TEST(Denoiser, ParameterisationsAgreeOnTheirOwnTargets) {
  // For x = x0 + sigma * eps, an eps model answering eps and a v model answering
  // v = alpha * eps - sigma_vp * x0 (VP quantities) both denoise to x0.
  const double sigma = 2.0;
  const at::Tensor x0 = at::full({3}, 0.3f), eps = at::full({3}, -1.2f);
  const at::Tensor x = x0 + eps * sigma;
  const auto map = [](double) { return 500.0; };
  const double alpha = 1 / std::sqrt(sigma * sigma + 1), sigma_vp = sigma * alpha;
  const Denoiser by_eps = make_denoiser([&](const at::Tensor&, double) { return eps; }, PredictionType::Epsilon, map);
  const Denoiser by_v = make_denoiser([&](const at::Tensor&, double) { return eps * alpha - x0 * sigma_vp; },
                                      PredictionType::VPrediction, map);
  EXPECT_LE((by_eps(x, sigma) - x0).abs().max().item<double>(), 1e-6);
  EXPECT_LE((by_v(x, sigma) - x0).abs().max().item<double>(), 1e-6);
  // Flow: x = (1 - s) x0 + s * noise, v = noise - x0.
  const double s = 0.4;
  const at::Tensor xf = x0 * (1 - s) + eps * s;
  const Denoiser by_flow = make_denoiser([&](const at::Tensor&, double) { return eps - x0; }, PredictionType::Flow, map);
  EXPECT_LE((by_flow(xf, s) - x0).abs().max().item<double>(), 1e-6);
}

// Wan 2.1's scheduler config: flow_prediction is flow, flow_shift also shifts flow_euler, and
// what UniPC cannot do is refused by name.
TEST(Schedule, UniPCFlowConfig) {
  nlohmann::json j = {{"_class_name", "UniPCMultistepScheduler"}, {"prediction_type", "flow_prediction"},
                      {"use_flow_sigmas", true}, {"flow_shift", 5.0}, {"solver_order", 2},
                      {"predict_x0", true}, {"disable_corrector", nlohmann::json::array({2})}};
  const auto c = NoiseScheduleConfig::from_json(j);
  EXPECT_EQ(c.prediction_type, "flow");
  EXPECT_EQ(c.shift, 5.0);
  EXPECT_EQ(unipc_options(c).disable_corrector, std::vector<int64_t>{2});
  const auto s = flow_sigmas_schedule(c, 10);
  ASSERT_EQ(s.sigmas.size(), 11u);
  EXPECT_LT(s.sigmas[0], 1.0);
  EXPECT_EQ(s.sigmas.back(), 0.0);
  for (size_t i = 0; i + 1 < s.timesteps.size(); ++i) EXPECT_EQ(s.timesteps[i], std::trunc(s.timesteps[i]));
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"solver_order", 4}, {"predict_x0", false}, {"solver_type", "bh3"}, {"solver_p", "x"},
           {"disable_corrector", "none"}}) {
    nlohmann::json bad = j;
    bad[key] = value;
    try {
      NoiseScheduleConfig::from_json(bad);
      ADD_FAILURE() << key << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  nlohmann::json eps = j;
  eps["prediction_type"] = "epsilon";
  EXPECT_THROW(NoiseScheduleConfig::from_json(eps), UsageError);  // flow sigmas need a flow model
  EXPECT_THROW(flow_sigmas_schedule(sd_config(), 10), UsageError);
}

// Gaussian data x0 ~ N(mu, s^2) has an exact flow denoiser and an exact ODE solution (each
// sample keeps its quantile z: x_sigma = a mu + sqrt(a^2 s^2 + sigma^2) z, a = 1 - sigma). UniPC
// follows it, and order 2 lands far closer than order 1 in 8 steps.
TEST(Samplers, UniPCOrdersConvergeOnGaussianData) {
  const double mu = 0.7, s2 = 0.25;
  const Denoiser exact = [&](const at::Tensor& x, double sigma) {
    const double a = 1 - sigma;
    return mu + (x - a * mu) * (a * s2 / (a * a * s2 + sigma * sigma));
  };
  NoiseScheduleConfig config;
  config.prediction_type = "flow", config.use_flow_sigmas = true, config.flow_shift = 1;
  const auto sigmas = flow_sigmas_schedule(config, 8).sigmas;
  Rng rng(4);
  const at::Tensor x = rng.randn({1, 2, 4, 4}).to(at::kDouble);
  const double a1 = 1 - sigmas[0];
  const at::Tensor solution = mu + std::sqrt(s2) * (x - a1 * mu) / std::sqrt(a1 * a1 * s2 + sigmas[0] * sigmas[0]);
  std::vector<double> errors;
  for (int64_t order : {1, 2, 3})
    errors.push_back((sample_unipc(exact, x, sigmas, {.order = order}) - solution).abs().max().item<double>());
  EXPECT_LT(errors[1], 0.3 * errors[0]) << errors[0] << " " << errors[1];
  EXPECT_LT(errors[2], 0.3 * errors[0]) << errors[0] << " " << errors[2];
  EXPECT_LT(errors[1], 0.05);
  // x0 from the last step's estimate: a constant denoiser is reached exactly.
  const at::Tensor target = at::full({1, 2, 4, 4}, 0.25);
  const at::Tensor out = sample_unipc([&](const at::Tensor&, double) { return target; }, x,
                                      flow_sigmas_schedule(config, 5).sigmas);
  EXPECT_LE((out - target).abs().max().item<double>(), 1e-6);
}

}  // namespace
}  // namespace genvis::schedulers
