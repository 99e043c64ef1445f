// KID: the kernel and estimator against a loop-by-loop computation, unbiasedness (same
// distribution averages to 0 over many seeds, where the biased estimator would not), a shifted
// distribution against the closed-form MMD^2 of two Gaussians, seeding and subset clamping.
#include "core/error.h"
#include "core/rng.h"
#include "eval/kernel_distance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <torch/torch.h>

namespace genvis::eval {
namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

// MMD^2_u by the definition, in plain loops: every k(x,y) = (x.y / D + 1)^3 written out.
double mmd2_by_loops(const at::Tensor& a, const at::Tensor& b) {
  const int64_t m = a.size(0), d = a.size(1);
  const auto k = [&](const at::Tensor& x, int64_t i, const at::Tensor& y, int64_t j) {
    double dot = 0;
    for (int64_t c = 0; c < d; ++c) dot += x[i][c].item<double>() * y[j][c].item<double>();
    return std::pow(dot / static_cast<double>(d) + 1.0, 3);
  };
  double aa = 0, bb = 0, ab = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) {
      if (i != j) {
        aa += k(a, i, a, j);
        bb += k(b, i, b, j);
      }
      ab += k(a, i, b, j);
    }
  const auto md = static_cast<double>(m);
  return aa / (md * (md - 1)) + bb / (md * (md - 1)) - 2.0 * ab / (md * md);
}

// E k(x, y) for independent x ~ N(mean_x 1, I_D), y ~ N(mean_y 1, I_D) under the cubic kernel.
// s = x.y is a sum of D independent products t = x_i y_i with raw moments E t = ab,
// E t^2 = (a^2+1)(b^2+1), E t^3 = (a^3+3a)(b^3+3b); cumulants add over coordinates.
double expected_kernel(double a, double b, int64_t dim) {
  const auto d = static_cast<double>(dim);
  const double m1 = a * b, m2 = (a * a + 1) * (b * b + 1), m3 = (a * a * a + 3 * a) * (b * b * b + 3 * b);
  const double k1 = d * m1, k2 = d * (m2 - m1 * m1), k3 = d * (m3 - 3 * m1 * m2 + 2 * m1 * m1 * m1);
  const double s1 = k1, s2 = k2 + k1 * k1, s3 = k3 + 3 * k1 * k2 + k1 * k1 * k1;  // E s, E s^2, E s^3
  return 1 + 3 * s1 / d + 3 * s2 / (d * d) + s3 / (d * d * d);
}

// The population MMD^2 between N(0, I_D) and N(shift 1, I_D).
double mmd2_closed_form(double shift, int64_t dim) {
  return expected_kernel(0, 0, dim) + expected_kernel(shift, shift, dim) - 2 * expected_kernel(0, shift, dim);
}

at::Tensor gaussian(int64_t n, int64_t d, uint64_t seed, double shift = 0) {
  return Rng(seed).randn({n, d}, kF64) + shift;
}

TEST(KernelInceptionDistance, EstimatorMatchesLoops) {
  const at::Tensor a = torch::tensor({1.0, 0.0, 0.0, 1.0, 1.0, 1.0}, kF64).reshape({3, 2});
  const at::Tensor b = torch::tensor({0.0, 0.0, 2.0, 0.0, 1.0, -1.0}, kF64).reshape({3, 2});
  // By hand: k(a_i,a_j), i != j: (0/2+1)^3 = 1, (1/2+1)^3 = 3.375 twice -> 2 (1 + 3.375 + 3.375) = 15.5;
  // k(b_i,b_j): 1, 1, (2/2+1)^3 = 8 -> 20; k(a_i,b_j) row by row: 1, 8, 3.375 | 1, 1, 0.125 |
  // 1, 8, 1 -> 24.5. MMD^2_u = 15.5/6 + 20/6 - 2 * 24.5/9.
  const double by_hand = 15.5 / 6 + 20.0 / 6 - 2 * 24.5 / 9;
  EXPECT_NEAR(mmd2_by_loops(a, b), by_hand, 1e-12);
  EXPECT_NEAR(polynomial_mmd2_unbiased(a, b), by_hand, 1e-12);
  // subset_size 1000 is clamped to the 3 rows there are: every subset is the whole set, reordered.
  const KIDResult kid = kernel_inception_distance(a.to(at::kFloat), b.to(at::kFloat), {.subsets = 7, .subset_size = 1000});
  EXPECT_EQ(kid.subset_size, 3);
  EXPECT_EQ(kid.subsets, 7);
  EXPECT_NEAR(kid.mean, by_hand, 1e-12);
  EXPECT_LT(kid.std, 1e-12);

  const at::Tensor x = gaussian(12, 5, 1), y = gaussian(12, 5, 2, 0.3);
  EXPECT_NEAR(polynomial_mmd2_unbiased(x, y), mmd2_by_loops(x, y), 1e-12);
}

TEST(KernelInceptionDistance, SameDistributionAveragesToZero) {
  // 300 independent trials of two 60-row samples of N(0, I_8), 4 subsets of 40 each. The trials'
  // mean KID must be 0 within 4 standard errors.
  const int64_t trials = 300, n = 60, d = 8, m = 40;
  std::vector<double> values;
  for (int64_t t = 0; t < trials; ++t) {
    const KIDResult kid = kernel_inception_distance(gaussian(n, d, 2 * t), gaussian(n, d, 2 * t + 1),
                                                    {.subsets = 4, .subset_size = m, .seed = static_cast<uint64_t>(t)});
    values.push_back(kid.mean);
  }
  const at::Tensor v = torch::tensor(values, kF64);
  const double mean = v.mean().item<double>(), se = v.std().item<double>() / std::sqrt(static_cast<double>(trials));
  EXPECT_LT(std::abs(mean), 4 * se) << "mean " << mean << " se " << se;
  // The test has power: keeping the diagonal k(x,x) terms (the biased V-statistic) would add
  // 2 (E k(x,x) - E k(x,x')) / m to every value, with E k(x,x) = 1 + 3 + 3 (D^2+2D)/D^2 +
  // (D^3+6D^2+8D)/D^3 = 9.625 and E k(x,x') = 1 + 3/D = 1.375 for D = 8: +0.41, many se away.
  const double bias = 2 * (9.625 - expected_kernel(0, 0, d)) / static_cast<double>(m);
  EXPECT_NEAR(bias, 0.4125, 1e-12);
  EXPECT_GT(bias, 10 * se);
}

TEST(KernelInceptionDistance, ShiftedDistributionMatchesClosedForm) {
  // N(0, I_8) vs N(0.5 1, I_8): population MMD^2 = 1.117 from the moments of the Gaussians
  // (checked against the mean of ten 2000-row estimates: 1.130 +- 0.015). The estimate from two
  // 4000-row samples has a standard deviation of about 3 %; allow 10 %.
  const int64_t d = 8;
  const double shift = 0.5;
  const double expected = mmd2_closed_form(shift, d);
  EXPECT_NEAR(expected, 1.1171875, 1e-12);
  EXPECT_NEAR(mmd2_closed_form(0.0, d), 0.0, 1e-15);
  const KIDResult kid = kernel_inception_distance(gaussian(4000, d, 3), gaussian(4000, d, 4, shift),
                                                  {.subsets = 20, .subset_size = 1000, .seed = 5});
  EXPECT_NEAR(kid.mean, expected, 0.1 * expected) << "closed form " << expected;
  // One 1000-row subset pair varies by about 6 %.
  EXPECT_GT(kid.std, 0.01 * expected);
  EXPECT_LT(kid.std, 0.2 * expected);
}

TEST(KernelInceptionDistance, SeedDecidesTheSubsets) {
  const at::Tensor a = gaussian(200, 6, 6), b = gaussian(150, 6, 7, 0.2);
  const KIDResult one = kernel_inception_distance(a, b, {.subsets = 5, .subset_size = 50, .seed = 1});
  const KIDResult again = kernel_inception_distance(a, b, {.subsets = 5, .subset_size = 50, .seed = 1});
  const KIDResult other = kernel_inception_distance(a, b, {.subsets = 5, .subset_size = 50, .seed = 2});
  EXPECT_EQ(one.mean, again.mean);
  EXPECT_EQ(one.std, again.std);
  EXPECT_NE(one.mean, other.mean);
  EXPECT_GT(one.std, 0.0);
  // subset_size above the smaller set is clamped to it (150), not an error.
  const KIDResult clamped = kernel_inception_distance(a, b, {.subsets = 3, .subset_size = 10000, .seed = 1});
  EXPECT_EQ(clamped.subset_size, 150);
  EXPECT_EQ(clamped.mean, kernel_inception_distance(a, b, {.subsets = 3, .subset_size = 150, .seed = 1}).mean);
}

TEST(KernelInceptionDistance, BadInputsAreUsageErrors) {
  const at::Tensor a = gaussian(20, 4, 8), b = gaussian(20, 5, 9);
  EXPECT_THROW(kernel_inception_distance(a, b), UsageError);                        // D differs
  EXPECT_THROW(kernel_inception_distance(a, a.narrow(0, 0, 1)), UsageError);        // 1 row
  EXPECT_THROW(kernel_inception_distance(a, a, {.subset_size = 1}), UsageError);    // 1 row per subset
  EXPECT_THROW(kernel_inception_distance(a, a, {.subsets = 0}), UsageError);
  EXPECT_THROW(kernel_inception_distance(a.flatten(), a), UsageError);
  EXPECT_THROW(polynomial_mmd2_unbiased(a, a.narrow(0, 0, 10)), UsageError);
}

}  // namespace
}  // namespace genvis::eval
