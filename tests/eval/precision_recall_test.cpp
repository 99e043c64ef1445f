// Improved precision and recall: a 1-D case worked by hand (closed balls, k-th nearest OTHER
// row), identical and far-apart sets, a generator that covers one of two modes, blockwise
// against a direct computation, and usage errors.
#include "core/error.h"
#include "core/rng.h"
#include "eval/precision_recall.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <torch/torch.h>

namespace genvis::eval {
namespace {

const auto kDoubleOptions = at::TensorOptions().dtype(at::kDouble);

at::Tensor column(std::vector<double> values) {
  const auto n = static_cast<int64_t>(values.size());
  return torch::tensor(values, kDoubleOptions).reshape({n, 1});
}

// The definition, directly: every distance from the full [N,M,D] difference tensor; radii by
// sorting each row's distances to the OTHER rows.
double fraction_inside(const at::Tensor& manifold, const at::Tensor& probes, int64_t k) {
  const at::Tensor within = (manifold.unsqueeze(1) - manifold.unsqueeze(0)).square().sum(-1).sqrt();  // [N,N]
  const at::Tensor across = (probes.unsqueeze(1) - manifold.unsqueeze(0)).square().sum(-1).sqrt();    // [P,N]
  const int64_t n = manifold.size(0), p = probes.size(0);
  std::vector<double> radius(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> others;
    for (int64_t j = 0; j < n; ++j)
      if (j != i) others.push_back(within[i][j].item<double>());
    std::sort(others.begin(), others.end());
    radius[static_cast<size_t>(i)] = others[static_cast<size_t>(k - 1)];
  }
  int64_t inside = 0;
  for (int64_t q = 0; q < p; ++q) {
    bool in = false;
    for (int64_t j = 0; j < n && !in; ++j) in = across[q][j].item<double>() <= radius[static_cast<size_t>(j)];
    inside += in;
  }
  return static_cast<double>(inside) / static_cast<double>(p);
}

TEST(PrecisionRecall, OneDimensionalCaseByHand) {
  // k = 1. Real {0,1,10,12,20}: radii 1,1,2,2,8 -> balls [-1,1] [0,2] [8,12] [10,14] [12,28].
  // Fake {-1.5,-0.5,2,9,14,15,30,31}: inside are -0.5, 2 (on the boundary of [0,2]), 9, 14, 15
  // -> precision 5/8. Fake radii 1,1,2.5,5,1,1,1,1 -> balls [-2.5,-0.5] [-1.5,0.5] [-0.5,4.5]
  // [4,14] [13,15] [14,16] [29,31] [30,32]: real 0, 1, 10, 12 inside, 20 not -> recall 4/5.
  const at::Tensor real = column({0, 1, 10, 12, 20}), fake = column({-1.5, -0.5, 2, 9, 14, 15, 30, 31});
  const PrecisionRecallResult r = precision_recall(real, fake, {.k = 1});
  EXPECT_DOUBLE_EQ(r.precision, 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(r.recall, 4.0 / 5.0);
  EXPECT_EQ(r.k, 1);
  // k = 4 (the farthest other real row): real balls reach from -20 to 40, every fake row is inside.
  EXPECT_DOUBLE_EQ(precision_recall(real, fake, {.k = 4}).precision, 1.0);
  // A duplicated row is an "other" row at distance 0. Real {0,0,5,6}, k = 1: balls {0} {0} [4,6]
  // [5,7]; of the probes {0, 0.5, 3, 6.5} only 0 and 6.5 are inside. (Were the duplicate not
  // counted, 0's ball would be [-5,5] and all four would be.)
  const at::Tensor dup = column({0, 0, 5, 6}), probe = column({0, 0.5, 3, 6.5});
  EXPECT_DOUBLE_EQ(precision_recall(dup, probe, {.k = 1}).precision, 0.5);
}

TEST(PrecisionRecall, IdenticalSetsAreOneAndDistantSetsZero) {
  const at::Tensor x = Rng(1).randn({300, 8}, kDoubleOptions);
  const PrecisionRecallResult same = precision_recall(x, x);
  EXPECT_EQ(same.precision, 1.0);
  EXPECT_EQ(same.recall, 1.0);
  EXPECT_EQ(same.k, 3);
  const PrecisionRecallResult far = precision_recall(x, x + 100.0);
  EXPECT_EQ(far.precision, 0.0);
  EXPECT_EQ(far.recall, 0.0);
  // f32 input gives the same answer (computed in f64 either way).
  EXPECT_EQ(precision_recall(x.to(at::kFloat), x.to(at::kFloat) + 100.0f).precision, 0.0);
}

TEST(PrecisionRecall, GeneratorCoveringOneOfTwoModes) {
  // Real: two unit Gaussians 20 apart along axis 0 (500 rows each). Fake: fresh draws from the
  // first mode only. Every fake row is realistic (precision ~1), half of the real rows are
  // never reached (recall <= 0.5, ~0.5).
  const int64_t n = 500, d = 4;
  at::Tensor offset = torch::zeros({1, d}, kDoubleOptions);
  offset[0][0] = 10.0;
  const at::Tensor real = at::cat({Rng(2).randn({n, d}, kDoubleOptions) - offset, Rng(3).randn({n, d}, kDoubleOptions) + offset});
  const at::Tensor fake = Rng(4).randn({n, d}, kDoubleOptions) - offset;
  const PrecisionRecallResult r = precision_recall(real, fake);
  EXPECT_GT(r.precision, 0.9);
  EXPECT_LE(r.recall, 0.5);
  EXPECT_GT(r.recall, 0.45);
  // And the mirror image: a generator covering both modes with half its rows in a third place
  // has precision ~0.5 and recall ~1.
  const at::Tensor wide = at::cat({Rng(5).randn({n / 2, d}, kDoubleOptions) - offset, Rng(6).randn({n / 2, d}, kDoubleOptions) + offset,
                                   Rng(7).randn({n, d}, kDoubleOptions) + 3.0 * offset});
  const PrecisionRecallResult w = precision_recall(real, wide);
  EXPECT_LE(w.precision, 0.5);
  EXPECT_GT(w.precision, 0.45);
  EXPECT_GT(w.recall, 0.9);
}

TEST(PrecisionRecall, BlockwiseEqualsDirect) {
  const at::Tensor real = Rng(8).randn({37, 5}, kDoubleOptions), fake = Rng(9).randn({29, 5}, kDoubleOptions) * 1.3 + 0.4;
  // A non-trivial case: at k = 1 precision 12/29 and recall 23/37.
  EXPECT_NEAR(fraction_inside(real, fake, 1), 12.0 / 29.0, 1e-12);
  EXPECT_NEAR(fraction_inside(fake, real, 1), 23.0 / 37.0, 1e-12);
  for (const int64_t k : {1, 3, 7}) {
    const double precision = fraction_inside(real, fake, k), recall = fraction_inside(fake, real, k);
    for (const int64_t block : {1, 4, 7, 29, 37, 1000}) {
      const PrecisionRecallResult r = precision_recall(real, fake, {.k = k, .block_size = block});
      EXPECT_DOUBLE_EQ(r.precision, precision) << "k " << k << " block " << block;
      EXPECT_DOUBLE_EQ(r.recall, recall) << "k " << k << " block " << block;
    }
  }
}

TEST(PrecisionRecall, BadInputsAreUsageErrors) {
  const at::Tensor real = Rng(10).randn({5, 3}, kDoubleOptions), fake = Rng(11).randn({8, 3}, kDoubleOptions);
  EXPECT_THROW(precision_recall(real, fake.narrow(1, 0, 2)), UsageError);  // D differs
  EXPECT_THROW(precision_recall(real, fake, {.k = 5}), UsageError);        // k >= N real
  EXPECT_NO_THROW(precision_recall(real, fake, {.k = 4}));
  EXPECT_THROW(precision_recall(fake, real, {.k = 5}), UsageError);        // k >= N fake
  EXPECT_THROW(precision_recall(real, fake, {.k = 0}), UsageError);
  EXPECT_THROW(precision_recall(real, fake, {.k = 3, .block_size = 0}), UsageError);
  EXPECT_THROW(precision_recall(real.flatten(), fake), UsageError);
  EXPECT_THROW(precision_recall(real.to(at::kLong), fake), UsageError);
}

}  // namespace
}  // namespace genvis::eval
