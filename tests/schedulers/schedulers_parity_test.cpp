// Every "scheduler_*" case of the fixture manifest replayed step by step against diffusers 0.31:
// timesteps, sigmas and init_noise_sigma for 4/8/20/50 steps, and the recorded 8-step loop with
// the manifest's fake model, model_output = 0.1 * model_input + (t / 1000) * c.
#include "io/weights.h"
#include "schedulers/registry.h"
#include "schedulers/samplers.h"
#include "support/test_support.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace genvis::schedulers {
namespace {

nlohmann::json manifest_case(const std::string& name) {
  // Python's json writes -Infinity (DPMSolver's lambda_min_clipped), which is not JSON.
  std::string text = test::read_bytes(test::fixtures_dir() + "/manifest.json");
  for (const std::string bad : {"-Infinity", "Infinity", "NaN"})
    for (size_t p = text.find(": " + bad); p != std::string::npos; p = text.find(": " + bad, p))
      text.replace(p, bad.size() + 2, ": null");
  const auto manifest = nlohmann::json::parse(text);
  for (const auto& c : manifest["cases"])
    if (c["name"] == name) return c;
  ADD_FAILURE() << "no manifest case " << name;
  return {};
}

struct Tolerance {
  double max_abs, rel_l2;
};

void expect_close(const at::Tensor& ref, const at::Tensor& got, Tolerance tol, const std::string& what) {
  ASSERT_EQ(ref.sizes(), got.sizes()) << what;
  const at::Tensor r = ref.to(at::kDouble), g = got.to(at::kDouble);
  const double max_abs = (r - g).abs().max().item<double>();
  const double norm = r.norm().item<double>();
  const double rel = norm > 0 ? (r - g).norm().item<double>() / norm : (r - g).norm().item<double>();
  EXPECT_LE(max_abs, tol.max_abs) << what;
  EXPECT_LE(rel, tol.rel_l2) << what;
}

at::Tensor vec(const std::vector<double>& v) { return at::tensor(v, at::kDouble); }
at::Tensor vec(const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).to(at::kDouble); }

// The fixture's fake model; records every call.
struct FakeModel {
  at::Tensor c;
  std::vector<at::Tensor> inputs;
  std::vector<double> timesteps;
  Network network() {
    return [this](const at::Tensor& model_input, double t) {
      inputs.push_back(model_input);
      timesteps.push_back(t);
      return model_input * 0.1 + c * (t / 1000);
    };
  }
};

class SchedulerCase {
public:
  explicit SchedulerCase(const std::string& name) : case_(manifest_case(name)) {
    ref_ = io::open_weights(test::fixtures_dir() + "/" + case_["files"][0].get<std::string>());
    auto inputs = io::open_weights(test::fixtures_dir() + "/schedulers/loop_inputs.safetensors");
    init_noise_ = inputs->load("init_noise");
    model_.c = inputs->load("c");
    config_ = NoiseScheduleConfig::from_json(case_["config"]);
    const auto& t = case_["tolerance"];
    timesteps_abs_ = t["timesteps_max_abs"];
    sigmas_rel_ = t["sigmas_rel"];
    loop_ = {t["loop_max_abs"].get<double>(), t["loop_rel_l2"].get<double>()};
  }

  at::Tensor ref(const std::string& name) { return ref_->load(name); }
  bool has(const std::string& name) const { return ref_->contains(name); }
  double eta() const { return case_["step_kwargs"].value("eta", 0.0); }
  int64_t loop_steps() const { return case_["loop_steps"]; }
  std::vector<int64_t> table_steps() const {
    auto s = case_["table_steps"].get<std::vector<int64_t>>();
    s.push_back(loop_steps());
    return s;
  }

  void check_timesteps(int64_t n, const at::Tensor& got) {
    const at::Tensor r = ref("timesteps_" + std::to_string(n)).to(at::kDouble);
    ASSERT_EQ(r.sizes(), got.sizes()) << "timesteps_" << n;
    EXPECT_LE((r - got).abs().max().item<double>(), timesteps_abs_) << "timesteps_" << n;
  }
  void check_sigmas(int64_t n, const std::vector<double>& sigmas) {
    const at::Tensor r = ref("sigmas_" + std::to_string(n)).to(at::kDouble), g = vec(sigmas);
    ASSERT_EQ(r.sizes(), g.sizes()) << "sigmas_" << n;
    EXPECT_LE(((r - g).abs() / r.abs().clamp_min(1e-12)).max().item<double>(), sigmas_rel_) << "sigmas_" << n;
  }
  void check_init_noise_sigma(int64_t n, double got) {
    const double r = ref("init_noise_sigma_" + std::to_string(n)).item<double>();
    EXPECT_NEAR(got, r, std::abs(r) * sigmas_rel_) << "init_noise_sigma_" << n;
  }

  // Noise replayed from the recorded loop_noise_i, in order.
  NoiseSource recorded_noise() {
    return [this](at::IntArrayRef shape) {
      const std::string name = "loop_noise_" + std::to_string(noise_drawn_++);
      EXPECT_TRUE(has(name)) << "the sampler drew noise the reference did not: " << name;
      const at::Tensor z = has(name) ? ref(name) : at::zeros(shape);
      EXPECT_EQ(z.sizes(), shape);
      return z;
    };
  }

  // Model calls against the recorded inputs and timesteps.
  void check_model_calls() {
    const auto expected_calls = case_["loop_num_model_calls"].get<size_t>();
    ASSERT_EQ(model_.inputs.size(), expected_calls);
    for (size_t i = 0; i < expected_calls; ++i) {
      const std::string k = std::to_string(i);
      expect_close(ref("loop_model_input_" + k), model_.inputs[i], loop_, "loop_model_input_" + k);
      EXPECT_NEAR(model_.timesteps[i], ref("loop_t_" + k).item<double>(), timesteps_abs_) << "loop_t_" + k;
    }
  }

  void check_step(const std::string& index, const at::Tensor& x, const at::Tensor& denoised) {
    expect_close(ref("loop_prev_sample_" + index), x, loop_, "loop_prev_sample_" + index);
    if (has("loop_pred_original_" + index))
      expect_close(ref("loop_pred_original_" + index), denoised, loop_, "loop_pred_original_" + index);
  }

  void check_final(const at::Tensor& x) { expect_close(ref("loop_final"), x, loop_, "loop_final"); }

  nlohmann::json case_;
  std::unique_ptr<io::WeightReader> ref_;
  at::Tensor init_noise_;
  FakeModel model_;
  NoiseScheduleConfig config_;
  double timesteps_abs_ = 0, sigmas_rel_ = 0;
  Tolerance loop_{};
  int noise_drawn_ = 0;
};

SigmaSpacing spacing_of(const NoiseScheduleConfig& config) {
  return config.use_karras_sigmas ? SigmaSpacing::Karras
                                  : config.use_exponential_sigmas ? SigmaSpacing::Exponential : SigmaSpacing::Default;
}

// EulerDiscrete / EulerAncestralDiscrete: diffusers' loop is sigma space already.
void run_euler_case(const std::string& name, bool ancestral) {
  GENVIS_REQUIRE_FIXTURES();
  SchedulerCase c(name);
  for (int64_t n : c.table_steps()) {
    const SigmaSchedule s = euler_schedule(c.config_, n, spacing_of(c.config_));
    c.check_timesteps(n, vec(s.timesteps));
    c.check_sigmas(n, s.sigmas);
    c.check_init_noise_sigma(n, s.init_noise_sigma);
  }
  const SigmaSchedule s = euler_schedule(c.config_, c.loop_steps(), spacing_of(c.config_));
  at::Tensor x = c.init_noise_ * static_cast<float>(s.init_noise_sigma);
  expect_close(c.ref("loop_x0"), x, c.loop_, "loop_x0");
  const Denoiser d = make_denoiser(c.model_.network(), PredictionType::Epsilon,
                                   timestep_map(s, training_sigmas(c.config_)));
  const StepCallback cb = [&](int64_t i, const at::Tensor& xi, const at::Tensor& denoised) {
    c.check_step(std::to_string(i), xi, denoised);
  };
  x = ancestral ? sample_euler_ancestral(d, x, s.sigmas, c.recorded_noise(), 1.0, cb) : sample_euler(d, x, s.sigmas, cb);
  c.check_model_calls();
  c.check_final(x);
}

TEST(SchedulersParity, Euler) { run_euler_case("scheduler_euler", false); }
TEST(SchedulersParity, EulerKarras) { run_euler_case("scheduler_euler_karras", false); }
TEST(SchedulersParity, EulerTrailing) { run_euler_case("scheduler_euler_trailing", false); }
TEST(SchedulersParity, EulerAncestral) { run_euler_case("scheduler_euler_ancestral", true); }

// DPMSolverMultistep works on the variance-preserving sample x_vp = x / sqrt(sigma^2 + 1);
// our sampler runs in sigma space, so the recorded latents are compared after that scaling.
void run_dpmpp_case(const std::string& name) {
  GENVIS_REQUIRE_FIXTURES();
  SchedulerCase c(name);
  for (int64_t n : c.table_steps()) {
    const SigmaSchedule s = dpm_solver_schedule(c.config_, n, spacing_of(c.config_));
    c.check_timesteps(n, vec(s.timesteps));
    c.check_sigmas(n, s.sigmas);
    EXPECT_EQ(c.ref("init_noise_sigma_" + std::to_string(n)).item<float>(), 1.0f);
  }
  const SigmaSchedule s = dpm_solver_schedule(c.config_, c.loop_steps(), spacing_of(c.config_));
  auto to_vp = [&](const at::Tensor& x, size_t i) {
    const auto sigma = static_cast<float>(s.sigmas[i]);
    return x / std::sqrt(sigma * sigma + 1.0f);
  };
  at::Tensor x = c.init_noise_ * static_cast<float>(s.init_noise_sigma);
  expect_close(c.ref("loop_x0"), to_vp(x, 0), c.loop_, "loop_x0");
  const Denoiser d = make_denoiser(c.model_.network(), PredictionType::Epsilon,
                                   timestep_map(s, training_sigmas(c.config_)));
  x = sample_dpmpp_2m(d, x, s.sigmas, [&](int64_t i, const at::Tensor& xi, const at::Tensor& denoised) {
    c.check_step(std::to_string(i), to_vp(xi, static_cast<size_t>(i) + 1), denoised);
  });
  c.check_model_calls();
  c.check_final(x);
}

TEST(SchedulersParity, DPMPP2M) { run_dpmpp_case("scheduler_dpmpp_2m"); }
TEST(SchedulersParity, DPMPP2MKarras) { run_dpmpp_case("scheduler_dpmpp_2m_karras"); }

void run_flow_case(const std::string& name) {
  GENVIS_REQUIRE_FIXTURES();
  SchedulerCase c(name);
  ASSERT_EQ(c.config_.prediction_type, "flow");
  for (int64_t n : c.table_steps()) {
    const SigmaSchedule s = flow_match_schedule(c.config_, n);
    c.check_timesteps(n, vec(s.timesteps));
    c.check_sigmas(n, s.sigmas);
    c.check_init_noise_sigma(n, s.init_noise_sigma);
  }
  const SigmaSchedule s = flow_match_schedule(c.config_, c.loop_steps());
  at::Tensor x = c.init_noise_ * static_cast<float>(s.init_noise_sigma);
  const Denoiser d = make_denoiser(c.model_.network(), PredictionType::Flow,
                                   timestep_map(s, {}, c.config_.num_train_timesteps));
  x = sample_flow_match_euler(d, x, s.sigmas, [&](int64_t i, const at::Tensor& xi, const at::Tensor& denoised) {
    c.check_step(std::to_string(i), xi, denoised);
  });
  c.check_model_calls();
  c.check_final(x);
}

TEST(SchedulersParity, FlowMatchEulerShift3) { run_flow_case("scheduler_flow_match_euler_shift3"); }
TEST(SchedulersParity, FlowMatchEulerShift5) { run_flow_case("scheduler_flow_match_euler_shift5"); }

// UniPCMultistepScheduler with use_flow_sigmas (Wan 2.1): its sigma table, then the loop with the
// sample after each corrector checked as well as each step's output.
void run_unipc_flow_case(const std::string& name) {
  GENVIS_REQUIRE_FIXTURES();
  SchedulerCase c(name);
  ASSERT_EQ(c.config_.prediction_type, "flow");
  ASSERT_TRUE(c.config_.use_flow_sigmas);
  for (int64_t n : c.table_steps()) {
    const SigmaSchedule s = flow_sigmas_schedule(c.config_, n);
    c.check_timesteps(n, vec(s.timesteps));
    c.check_sigmas(n, s.sigmas);
    c.check_init_noise_sigma(n, s.init_noise_sigma);
  }
  const SigmaSchedule s = flow_sigmas_schedule(c.config_, c.loop_steps());
  at::Tensor x = c.init_noise_ * static_cast<float>(s.init_noise_sigma);
  expect_close(c.ref("loop_x0"), x, c.loop_, "loop_x0");
  const Denoiser d = make_denoiser(c.model_.network(), PredictionType::Flow,
                                   timestep_map(s, {}, c.config_.num_train_timesteps));
  int64_t corrected = 0;
  x = sample_unipc(
      d, x, s.sigmas, unipc_options(c.config_),
      [&](int64_t i, const at::Tensor& xi, const at::Tensor& denoised) { c.check_step(std::to_string(i), xi, denoised); },
      [&](int64_t i, const at::Tensor& xi, const at::Tensor&) {
        ++corrected;
        const std::string k = "loop_corrected_sample_" + std::to_string(i);
        if (c.has(k)) expect_close(c.ref(k), xi, c.loop_, k);
      });
  EXPECT_EQ(corrected, c.loop_steps());
  c.check_model_calls();
  c.check_final(x);
}

TEST(SchedulersParity, UniPCFlow) { run_unipc_flow_case("scheduler_unipc_flow"); }

enum class TimestepSampler { DDIM, PLMS, LCM };

void run_timestep_case(const std::string& name, TimestepSampler kind) {
  GENVIS_REQUIRE_FIXTURES();
  SchedulerCase c(name);
  for (int64_t n : c.table_steps()) {
    const auto t = kind == TimestepSampler::PLMS  ? plms_timesteps(c.config_, n)
                   : kind == TimestepSampler::LCM ? lcm_timesteps(c.config_, n)
                                                  : discrete_timesteps(c.config_, n);
    c.check_timesteps(n, vec(t));
    EXPECT_EQ(c.ref("init_noise_sigma_" + std::to_string(n)).item<float>(), 1.0f);
  }
  const int64_t n = c.loop_steps();
  const DiscreteSchedule s = kind == TimestepSampler::LCM ? lcm_schedule(c.config_, n) : ddim_schedule(c.config_, n);
  const VPDenoiser d = make_vp_denoiser(c.model_.network(), PredictionType::Epsilon, s.alphas_cumprod);
  at::Tensor x = c.init_noise_.clone();
  switch (kind) {
    case TimestepSampler::DDIM:
      x = sample_ddim(d, x, s, c.eta(), c.recorded_noise(), [&](int64_t i, const at::Tensor& xi, const at::Tensor& x0) {
        c.check_step(std::to_string(i), xi, x0);
      });
      break;
    case TimestepSampler::PLMS:
      // The reference's step 0 is the Heun half-step (loop_prev_sample_0); our step i is its i + 1.
      x = sample_plms(d, x, s, [&](int64_t i, const at::Tensor& xi, const at::Tensor&) {
        expect_close(c.ref("loop_prev_sample_" + std::to_string(i + 1)), xi, c.loop_,
                     "loop_prev_sample_" + std::to_string(i + 1));
      });
      break;
    case TimestepSampler::LCM:
      x = sample_lcm(d, x, s, c.recorded_noise(), c.config_.timestep_scaling,
                     [&](int64_t i, const at::Tensor& xi, const at::Tensor& denoised) {
                       c.check_step(std::to_string(i), xi, denoised);
                     });
      break;
  }
  c.check_model_calls();
  c.check_final(x);
}

TEST(SchedulersParity, DDIM) { run_timestep_case("scheduler_ddim", TimestepSampler::DDIM); }
TEST(SchedulersParity, DDIMEta1) { run_timestep_case("scheduler_ddim_eta1", TimestepSampler::DDIM); }
TEST(SchedulersParity, PNDMPLMS) { run_timestep_case("scheduler_pndm_plms", TimestepSampler::PLMS); }
TEST(SchedulersParity, LCM) { run_timestep_case("scheduler_lcm", TimestepSampler::LCM); }

TEST(SchedulersParity, TrainingSchedule) {
  GENVIS_REQUIRE_FIXTURES();
  const auto c = manifest_case("scheduler_training_schedule");
  const auto config = NoiseScheduleConfig::from_json(c["config"]);
  const double tol = c["tolerance"]["max_abs"];
  auto ref = io::open_weights(test::fixtures_dir() + "/" + c["files"][0].get<std::string>());
  EXPECT_LE((betas(config) - ref->load("betas")).abs().max().item<double>(), tol);
  EXPECT_LE((alphas_cumprod(config) - ref->load("alphas_cumprod")).abs().max().item<double>(), tol);
  // They are float32 computations of the same recipe: expect them to a few float32 ulps (bit for
  // bit on libtorch 1.13; libtorch 2.x vectorises pow/cumprod differently).
  const auto rel = [](const at::Tensor& a, const at::Tensor& b) { return ((a - b).abs() / b.abs()).max().item<double>(); };
  EXPECT_LE(rel(betas(config), ref->load("betas")), 5e-7);
  EXPECT_LE(rel(alphas_cumprod(config), ref->load("alphas_cumprod")), 5e-7);
}

}  // namespace
}  // namespace genvis::schedulers
