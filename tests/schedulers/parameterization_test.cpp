// The parameterisations' forward (add_noise, training_target) and inverse (from_model_output)
// agree with their formulas and with each other, for images and videos.
#include "core/error.h"
#include "core/rng.h"
#include "schedulers/parameterization.h"
#include "support/test_support.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace genvis::schedulers {
namespace {

constexpr PredictionType kTypes[] = {PredictionType::Epsilon, PredictionType::VPrediction, PredictionType::Flow};

const char* name_of(PredictionType type) {
  switch (type) {
    case PredictionType::Epsilon: return "epsilon";
    case PredictionType::VPrediction: return "v_prediction";
    case PredictionType::Flow: return "flow";
  }
  return "?";
}

// One noise level per sample in [0.05, 0.95], away from the ends where the inverses divide by
// sqrt(a) (epsilon) and lose eps to cancellation (flow).
at::Tensor levels(Rng& rng, int64_t batch) { return rng.rand({batch}) * 0.9 + 0.05; }

void expect_close(const at::Tensor& actual, const at::Tensor& expected, const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(at::allclose(actual, expected, 1e-5, 1e-5)) << what << ": max |diff| "
                                                          << (actual - expected).abs().max().item<double>();
}

TEST(Parameterization, TargetThenInverseGivesBackX0AndEps) {
  Rng rng(1);
  for (const auto type : kTypes) {
    for (const auto& shape : {std::vector<int64_t>{3, 4, 8, 8}, std::vector<int64_t>{2, 4, 3, 6, 6}}) {
      const std::string tag = std::string(name_of(type)) + " rank " + std::to_string(shape.size());
      const at::Tensor x0 = rng.randn(shape), eps = rng.randn(shape), level = levels(rng, shape[0]);
      const at::Tensor xt = add_noise(type, x0, eps, level);
      const VPPrediction p = from_model_output(type, xt, training_target(type, x0, eps, level), level);
      expect_close(p.x0, x0, tag + " x0");
      expect_close(p.eps, eps, tag + " eps");
    }
  }
}

TEST(Parameterization, MatchesTheFormulas) {
  Rng rng(2);
  const at::Tensor x0 = rng.randn({4, 3, 5, 5}), eps = rng.randn({4, 3, 5, 5});
  const at::Tensor a = levels(rng, 4).view({4, 1, 1, 1});
  // The recipes' hand-written lines, bit for bit.
  EXPECT_TRUE(at::equal(add_noise(PredictionType::Epsilon, x0, eps, a), a.sqrt() * x0 + (1 - a).sqrt() * eps));
  EXPECT_TRUE(at::equal(add_noise(PredictionType::VPrediction, x0, eps, a), a.sqrt() * x0 + (1 - a).sqrt() * eps));
  EXPECT_TRUE(
      at::equal(training_target(PredictionType::VPrediction, x0, eps, a), a.sqrt() * eps - (1 - a).sqrt() * x0));
  EXPECT_TRUE(at::equal(training_target(PredictionType::Epsilon, x0, eps, a), eps));
  EXPECT_TRUE(at::equal(training_target(PredictionType::Flow, x0, eps, a), eps - x0));
  EXPECT_TRUE(at::equal(add_noise(PredictionType::Flow, x0, eps, a), (1 - a) * x0 + a * eps));
  // v in float64 from the definition v = sqrt(a) eps - sqrt(1 - a) x0, element by element.
  const at::Tensor v = training_target(PredictionType::VPrediction, x0, eps, a);
  for (int64_t b = 0; b < 4; ++b) {
    const double ab = a[b].item<double>();
    const at::Tensor expected = std::sqrt(ab) * eps[b].to(at::kDouble) - std::sqrt(1 - ab) * x0[b].to(at::kDouble);
    EXPECT_TRUE(at::allclose(v[b].to(at::kDouble), expected, 1e-6, 1e-6)) << "sample " << b;
  }
  // x0 = sqrt(a) x_t - sqrt(1 - a) v, and the model output for x_t recovers exactly this.
  const at::Tensor xt = add_noise(PredictionType::VPrediction, x0, eps, a);
  const at::Tensor o = rng.randn({4, 3, 5, 5});
  const VPPrediction p = from_model_output(PredictionType::VPrediction, xt, o, a);
  EXPECT_TRUE(at::equal(p.x0, a.sqrt() * xt - (1 - a).sqrt() * o));
  EXPECT_TRUE(at::equal(p.eps, a.sqrt() * o + (1 - a).sqrt() * xt));
}

TEST(Parameterization, FlowEndsAreDataAndNoise) {
  Rng rng(3);
  const at::Tensor x0 = rng.randn({2, 4, 6, 6}), eps = rng.randn({2, 4, 6, 6});
  EXPECT_TRUE(at::equal(add_noise(PredictionType::Flow, x0, eps, at::zeros({2})), x0));
  EXPECT_TRUE(at::equal(add_noise(PredictionType::Flow, x0, eps, at::ones({2})), eps));
  // One sample at each end in the same batch.
  const at::Tensor both = add_noise(PredictionType::Flow, x0, eps, at::tensor({0.0f, 1.0f}));
  EXPECT_TRUE(at::equal(both[0], x0[0]));
  EXPECT_TRUE(at::equal(both[1], eps[1]));
}

TEST(Parameterization, PerSampleLevelsBroadcastOverImagesAndVideos) {
  Rng rng(4);
  for (const auto& shape : {std::vector<int64_t>{3, 2, 4, 4}, std::vector<int64_t>{3, 2, 5, 4, 4}}) {
    const std::string tag = "rank " + std::to_string(shape.size());
    const at::Tensor x0 = rng.randn(shape), eps = rng.randn(shape), a = levels(rng, 3);
    std::vector<int64_t> view(shape.size(), 1);
    view[0] = 3;
    EXPECT_EQ(per_sample(a, x0).sizes(), at::IntArrayRef(view)) << tag;
    for (const auto type : kTypes) {
      const at::Tensor xt = add_noise(type, x0, eps, a);
      ASSERT_EQ(xt.sizes(), x0.sizes()) << tag;
      // [B] and [B, 1, ..., 1] are the same level; each sample sees its own.
      EXPECT_TRUE(at::equal(xt, add_noise(type, x0, eps, a.view(view)))) << tag << " " << name_of(type);
      for (int64_t b = 0; b < 3; ++b)
        EXPECT_TRUE(at::equal(xt[b], add_noise(type, x0[b], eps[b], a[b]))) << tag << " " << name_of(type) << " " << b;
      EXPECT_EQ(training_target(type, x0, eps, a).sizes(), x0.sizes()) << tag;
      const VPPrediction p = from_model_output(type, xt, eps, a);
      EXPECT_EQ(p.x0.sizes(), x0.sizes()) << tag;
      EXPECT_EQ(p.eps.sizes(), x0.sizes()) << tag;
    }
  }
  // A scalar level broadcasts as it is; a level per sample of another batch is refused.
  const at::Tensor x = rng.randn({2, 3, 4, 4});
  EXPECT_TRUE(at::equal(add_noise(PredictionType::Epsilon, x, x, at::scalar_tensor(0.5)),
                        add_noise(PredictionType::Epsilon, x, x, at::full({2}, 0.5))));
  EXPECT_THROW(add_noise(PredictionType::Epsilon, x, x, at::full({3}, 0.5)), UsageError);
}

// The timestep-space denoiser's arithmetic is from_model_output's at a 0-dim float32 level.
TEST(Parameterization, AgreesWithTheVPDenoiserBitForBit) {
  Rng rng(5);
  const at::Tensor acp = at::linspace(0.999, 0.01, 1000, at::kFloat);
  const at::Tensor x = rng.randn({2, 4, 8, 8}), out = rng.randn({2, 4, 8, 8});
  const Network network = [&](const at::Tensor&, double) { return out; };
  for (const auto type : {PredictionType::Epsilon, PredictionType::VPrediction}) {
    const VPDenoiser denoise = make_vp_denoiser(network, type, acp);
    for (const int64_t t : {0, 17, 500, 999}) {
      const VPPrediction d = denoise(x, t);
      const VPPrediction p = from_model_output(type, x, out, acp[t]);
      EXPECT_TRUE(at::equal(d.x0, p.x0)) << name_of(type) << " t=" << t;
      EXPECT_TRUE(at::equal(d.eps, p.eps)) << name_of(type) << " t=" << t;
    }
  }
}

// Min-SNR weights make every type's loss min(snr, gamma) times the x0 error of its prediction
// (the paper's definition), whatever the network outputs.
TEST(Parameterization, MinSnrWeightWeighsTheX0ErrorByClippedSnr) {
  Rng rng(9);
  const at::Tensor x0 = rng.randn({4, 3, 5, 5}).to(at::kDouble), eps = rng.randn({4, 3, 5, 5}).to(at::kDouble);
  const at::Tensor out = rng.randn({4, 3, 5, 5}).to(at::kDouble);
  const at::Tensor a = at::tensor({0.999, 0.9, 0.3, 0.004}, at::kDouble);  // snr 999, 9, 0.43, 0.004
  const double gamma = 5;
  for (const auto type : {PredictionType::Epsilon, PredictionType::VPrediction}) {
    const at::Tensor xt = add_noise(type, x0, eps, a);
    const at::Tensor w = min_snr_weight(type, a, gamma);
    ASSERT_EQ(w.sizes(), a.sizes());
    const at::Tensor weighted = w * (out - training_target(type, x0, eps, a)).pow(2).mean({1, 2, 3});
    const at::Tensor x0_error = (from_model_output(type, xt, out, a).x0 - x0).pow(2).mean({1, 2, 3});
    const at::Tensor snr = a / (1 - a);
    EXPECT_TRUE(at::allclose(weighted, at::clamp_max(snr, gamma) * x0_error, 1e-9, 1e-12)) << name_of(type);
  }
  // Below gamma epsilon's weight is 1: the unweighted loss.
  EXPECT_NEAR(min_snr_weight(PredictionType::Epsilon, at::tensor({0.3}, at::kDouble), gamma).item<double>(), 1.0, 1e-12);
  EXPECT_THROW(min_snr_weight(PredictionType::Flow, a, gamma), UsageError);
  EXPECT_THROW(min_snr_weight(PredictionType::Epsilon, a, 0), UsageError);
}

}  // namespace
}  // namespace genvis::schedulers

namespace genvis::schedulers {
namespace {

// Kolmogorov-Smirnov distance between the samples and a CDF.
double ks_distance(at::Tensor samples, const std::function<double(double)>& cdf) {
  samples = std::get<0>(samples.to(at::kDouble).sort());
  const auto* s = samples.data_ptr<double>();
  const int64_t n = samples.numel();
  double d = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double F = cdf(s[i]);
    d = std::max({d, std::abs(F - static_cast<double>(i) / n), std::abs(F - static_cast<double>(i + 1) / n)});
  }
  return d;
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

TEST(FlowSigmas, LogitNormalUniformAndShiftFollowTheirDistributions) {
  const int64_t n = 20000;
  // With 20000 samples the KS distance of a correct sampler stays below ~0.012 (p = 0.001).
  constexpr double kKs = 0.015;
  Rng rng(11);
  const FlowSigmaDensity ln{.kind = FlowSigmaDensity::Kind::LogitNormal, .mean = 0.5, .std = 0.8};
  const at::Tensor a = sample_flow_sigmas(n, ln, rng);
  EXPECT_EQ(a.sizes(), at::IntArrayRef({n}));
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  const auto logit_normal_cdf = [&](double s) { return normal_cdf((std::log(s / (1 - s)) - ln.mean) / ln.std); };
  EXPECT_LT(ks_distance(a, logit_normal_cdf), kKs);
  // A wrong mean is caught by the same test.
  EXPECT_GT(ks_distance(sample_flow_sigmas(n, {.mean = 0.0, .std = 0.8}, rng), logit_normal_cdf), 5 * kKs);

  const at::Tensor u = sample_flow_sigmas(n, {.kind = FlowSigmaDensity::Kind::Uniform}, rng);
  EXPECT_LT(ks_distance(u, [](double s) { return s; }), kKs);
  // Shift 3: sigma' = 3s / (1 + 2s), so P(sigma' <= x) = P(s <= x / (3 - 2x)).
  const at::Tensor sh = sample_flow_sigmas(n, {.kind = FlowSigmaDensity::Kind::Uniform, .shift = 3.0}, rng);
  EXPECT_LT(ks_distance(sh, [](double x) { return x / (3 - 2 * x); }), kKs);
  EXPECT_GT(sh.mean().item<double>(), u.mean().item<double>() + 0.1);  // weight moved to high noise
  for (const auto& t : {a, u, sh}) {
    EXPECT_GT(t.min().item<double>(), 0);
    EXPECT_LT(t.max().item<double>(), 1);
  }
  // Deterministic in the generator's state.
  Rng r1(5), r2(5);
  EXPECT_TRUE(at::equal(sample_flow_sigmas(8, ln, r1), sample_flow_sigmas(8, ln, r2)));
}

TEST(FlowSigmas, BadDensitiesAreUsageErrors) {
  Rng rng(1);
  EXPECT_THROW(sample_flow_sigmas(0, {}, rng), UsageError);
  EXPECT_THROW(sample_flow_sigmas(4, {.std = 0}, rng), UsageError);
  EXPECT_THROW(sample_flow_sigmas(4, {.shift = -1}, rng), UsageError);
  EXPECT_EQ(FlowSigmaDensity::parse("uniform"), FlowSigmaDensity::Kind::Uniform);
  EXPECT_EQ(FlowSigmaDensity::parse("logit_normal"), FlowSigmaDensity::Kind::LogitNormal);
  EXPECT_THROW(FlowSigmaDensity::parse("cosine"), UsageError);
}

}  // namespace
}  // namespace genvis::schedulers
