// FID against closed forms (1-D, diagonal, a non-commuting 2x2 pair by hand, 3x3 pairs through
// the eigenvalues of S_a S_b), numpy.cov's statistics, zero for a set against itself (also when
// N < D leaves the covariance singular), symmetry, and growth with added noise.
#include "core/error.h"
#include "core/rng.h"
#include "eval/frechet_distance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <torch/torch.h>

namespace genvis::eval {
namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

GaussianStats stats(std::vector<double> mu, std::vector<double> sigma) {
  const auto d = static_cast<int64_t>(mu.size());
  return {torch::tensor(mu, kF64), torch::tensor(sigma, kF64).reshape({d, d}), 100};
}

// A random SPD matrix [d,d]: A A^T + 0.1 I.
at::Tensor random_spd(int64_t d, uint64_t seed) {
  Rng rng(seed);
  const at::Tensor a = rng.randn({d, d}, kF64);
  return a.mm(a.t()) + 0.1 * torch::eye(d, kF64);
}

// Correlated Gaussian features [n,d]: z L^T + mean, with L fixed by `mix_seed`.
at::Tensor correlated(int64_t n, int64_t d, uint64_t seed, uint64_t mix_seed = 100) {
  Rng mix(mix_seed), rng(seed);
  const at::Tensor l = mix.randn({d, d}, kF64) / std::sqrt(static_cast<double>(d));
  const at::Tensor mean = mix.randn({d}, kF64);
  return rng.randn({n, d}, kF64).mm(l.t()) + mean;
}

TEST(FrechetDistance, OneDimensionalGaussiansMatchClosedForm) {
  // N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2.
  const double m1 = 1.0, s1 = 2.0, m2 = -0.5, s2 = 0.5;
  EXPECT_NEAR(frechet_distance(stats({m1}, {s1 * s1}), stats({m2}, {s2 * s2})), 4.5, 1e-12);
  EXPECT_NEAR(frechet_distance(stats({3.0}, {9.0}), stats({3.0}, {0.0})), 9.0, 1e-12);  // a point mass
  EXPECT_NEAR(frechet_distance(stats({0.0}, {4.0}), stats({0.0}, {4.0})), 0.0, 1e-12);
}

TEST(FrechetDistance, DiagonalCovariancesMatchClosedForm) {
  // Commuting covariances: |dmu|^2 + sum_i (sqrt a_i - sqrt b_i)^2.
  const std::vector<double> a = {1.0, 4.0, 0.25, 9.0}, b = {2.0, 1.0, 0.25, 16.0};
  std::vector<double> sa(16, 0.0), sb(16, 0.0);
  double expected = 1.0 + 4.0 + 0.0 + 0.25;  // |(1,2,0,-0.5)|^2
  for (size_t i = 0; i < 4; ++i) {
    sa[i * 5] = a[i];
    sb[i * 5] = b[i];
    expected += std::pow(std::sqrt(a[i]) - std::sqrt(b[i]), 2);
  }
  const double fid = frechet_distance(stats({1, 2, 0, 0}, sa), stats({0, 0, 0, 0.5}, sb));
  EXPECT_NEAR(fid, expected, 1e-12);
  EXPECT_NEAR(fid, 5.25 + (1 - std::sqrt(2.0)) * (1 - std::sqrt(2.0)) + 1 + 0 + 1, 1e-12);
}

TEST(FrechetDistance, NonCommutingPairMatchesHandComputation) {
  // S_a = [[2,1],[1,2]], S_b = diag(1,4) do not commute. For a 2x2 matrix with eigenvalues
  // l1, l2 >= 0, (sqrt l1 + sqrt l2)^2 = tr + 2 sqrt(det), so
  // tr sqrtm(S_a S_b) = sqrt(tr(S_a S_b) + 2 sqrt(det S_a det S_b)) = sqrt(10 + 2 sqrt 12).
  const double tr_covmean = std::sqrt(10.0 + 2.0 * std::sqrt(12.0));
  const double expected = 4.0 + 5.0 - 2.0 * tr_covmean + 0.5 * 0.5 + 1.0;  // means (0,0) vs (0.5,-1)
  EXPECT_NEAR(frechet_distance(stats({0, 0}, {2, 1, 1, 2}), stats({0.5, -1}, {1, 0, 0, 4})), expected, 1e-12);
  // Treating the pair as if it commuted (pairing eigenvalues {1,3} with {1,4}) would give
  // 1 + 2 sqrt 3 = 4.464 instead of 4.114, a difference of 0.7 in FID.
  EXPECT_NEAR(tr_covmean, 4.11439, 1e-5);
}

TEST(FrechetDistance, RandomCovariancesMatchEigenvaluesOfTheProduct) {
  // Independent computation: S_a S_b is similar to a PSD matrix, so its eigenvalues are real and
  // >= 0, and tr sqrtm(S_a S_b) = sum of their square roots.
  for (const int64_t d : {3, 8}) {
    const at::Tensor sa = random_spd(d, 10 + d), sb = random_spd(d, 20 + d);
    const at::Tensor eig = at::linalg_eigvals(sa.mm(sb));  // complex [d]
    ASSERT_LT(at::imag(eig).abs().max().item<double>(), 1e-9);
    ASSERT_GT(at::real(eig).min().item<double>(), 0.0);
    const double tr_covmean = at::real(eig).sqrt().sum().item<double>();
    Rng rng(30 + d);
    const at::Tensor mu_a = rng.randn({d}, kF64), mu_b = rng.randn({d}, kF64);
    const double expected = (mu_a - mu_b).square().sum().item<double>() + sa.trace().item<double>() +
                            sb.trace().item<double>() - 2.0 * tr_covmean;
    const GaussianStats a{mu_a, sa, 10}, b{mu_b, sb, 10};
    EXPECT_NEAR(frechet_distance(a, b), expected, 1e-9 * (1.0 + std::abs(expected))) << "d = " << d;
    EXPECT_GT(frechet_distance(a, b), 0.0);
  }
}

TEST(FrechetDistance, StatsAreNumpyCov) {
  // x = [[1,2],[3,6],[5,7]]: mean (3,5); deviations (-2,-3),(0,1),(2,2); cov = [[8,10],[10,14]] / 2.
  const at::Tensor x = torch::tensor({1.0f, 2.0f, 3.0f, 6.0f, 5.0f, 7.0f}).reshape({3, 2});  // f32 in
  const GaussianStats s = gaussian_stats(x);
  EXPECT_EQ(s.count, 3);
  ASSERT_EQ(s.mu.scalar_type(), at::kDouble);
  ASSERT_EQ(s.sigma.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::allclose(s.mu, torch::tensor({3.0, 5.0}, kF64)));
  EXPECT_TRUE(at::allclose(s.sigma, torch::tensor({4.0, 5.0, 5.0, 7.0}, kF64).reshape({2, 2})));
  EXPECT_THROW(gaussian_stats(x.narrow(0, 0, 1)), UsageError);  // N = 1: no covariance
  EXPECT_THROW(gaussian_stats(x.flatten()), UsageError);
  EXPECT_THROW(gaussian_stats(torch::ones({3, 2}, at::kLong)), UsageError);
}

TEST(FrechetDistance, SetAgainstItselfIsZeroAndOrderDoesNotMatter) {
  const at::Tensor x = correlated(500, 16, 1), y = correlated(400, 16, 2, /*mix_seed=*/101);
  const double scale = gaussian_stats(x).sigma.trace().item<double>();
  EXPECT_LT(std::abs(frechet_distance(x, x)), 1e-6 * scale);
  // N < D: a singular covariance (rank 9 of 32). Square roots of eigenvalues of R_a S_b R_a would
  // turn its eps-sized null-space eigenvalues into sqrt(eps)-sized residues (3e-8 relative, tried);
  // the singular values of R_b R_a stay at eps (1e-15).
  const at::Tensor few = correlated(10, 32, 3);
  EXPECT_LT(std::abs(frechet_distance(few, few)), 1e-9 * gaussian_stats(few).sigma.trace().item<double>());
  // Symmetric in its arguments.
  const double xy = frechet_distance(x, y), yx = frechet_distance(y, x);
  EXPECT_GT(xy, 0.1);
  EXPECT_NEAR(xy, yx, 1e-9 * xy);
  // The convenience overload is the statistics one.
  EXPECT_DOUBLE_EQ(xy, frechet_distance(gaussian_stats(x), gaussian_stats(y)));
}

TEST(FrechetDistance, HalvesOfOneSampleAreCloseAndNoiseMakesItGrow) {
  const int64_t n = 2000, d = 16;
  const at::Tensor x = correlated(n, d, 4);
  const at::Tensor first = x.narrow(0, 0, n / 2), second = x.narrow(0, n / 2, n / 2);
  const double scale = gaussian_stats(x).sigma.trace().item<double>();
  const double halves = frechet_distance(first, second);
  // Sampling noise alone: E|mu_a - mu_b|^2 = 2 tr(S) / 1000, and the covariance term is of the
  // same order: well under 2 % of tr(S) (0.6 % here).
  EXPECT_GT(halves, 0.0);
  EXPECT_LT(halves, 0.02 * scale);
  Rng rng(5);
  const at::Tensor noise = rng.randn({n / 2, d}, kF64);
  double previous = halves;
  for (const double std : {0.1, 0.3, 1.0, 3.0}) {
    const double fid = frechet_distance(first, second + std * noise);
    EXPECT_GT(fid, previous) << "noise std " << std;
    previous = fid;
  }
  // Large noise dominates: S vs S + 9 I has FID = sum_i (sqrt(l_i + 9) - sqrt(l_i))^2 over the
  // eigenvalues l_i of S (they commute); within 5 % on this sample (1.2 % here).
  const at::Tensor l = at::linalg_eigvalsh(gaussian_stats(x).sigma).clamp_min(0);
  const double expected = ((l + 9.0).sqrt() - l.sqrt()).square().sum().item<double>();
  EXPECT_NEAR(previous, expected, 0.05 * expected);
}

TEST(FrechetDistance, MismatchedSizesAreUsageErrors) {
  const at::Tensor a = correlated(20, 4, 6), b = correlated(20, 5, 7);
  EXPECT_THROW(frechet_distance(a, b), UsageError);
  EXPECT_THROW(frechet_distance(gaussian_stats(a), gaussian_stats(b)), UsageError);
  GaussianStats bad = gaussian_stats(a);
  bad.sigma = bad.sigma.narrow(0, 0, 3);
  EXPECT_THROW(frechet_distance(bad, gaussian_stats(a)), UsageError);
  EXPECT_THROW(frechet_distance(GaussianStats{}, gaussian_stats(a)), UsageError);
}

}  // namespace
}  // namespace genvis::eval
