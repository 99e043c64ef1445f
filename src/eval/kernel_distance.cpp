#include "eval/kernel_distance.h"

#include "core/error.h"
#include "eval/tensor_shape.h"
#include "core/rng.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace genvis::eval {
namespace {

// k(x, y) = (x.y / D + 1)^3 for every pair of rows: [m,D] x [n,D] -> [m,n].
at::Tensor cubic_kernel(const at::Tensor& x, const at::Tensor& y) {
  return (x.mm(y.t()) / static_cast<double>(x.size(1)) + 1.0).pow(3);
}

// Sum of the off-diagonal entries of a square kernel matrix.
double off_diagonal_sum(const at::Tensor& k) { return (k.sum() - k.trace()).item<double>(); }

}  // namespace

double polynomial_mmd2_unbiased(const at::Tensor& a, const at::Tensor& b) {
  if (!a.defined() || !b.defined() || a.dim() != 2 || a.sizes() != b.sizes() || a.size(0) < 2)
    throw UsageError("polynomial_mmd2_unbiased: expected two [m,D] sets with m >= 2, got " + shape(a) + " and " +
                     shape(b));
  const auto m = static_cast<double>(a.size(0));
  const double within = (off_diagonal_sum(cubic_kernel(a, a)) + off_diagonal_sum(cubic_kernel(b, b))) / (m * (m - 1));
  const double across = cubic_kernel(a, b).sum().item<double>() / (m * m);
  return within - 2.0 * across;
}

KIDResult kernel_inception_distance(const at::Tensor& a, const at::Tensor& b, const KIDOptions& options) {
  // 1 check
  if (!a.defined() || !b.defined() || a.dim() != 2 || b.dim() != 2 || !at::isFloatingType(a.scalar_type()) ||
      !at::isFloatingType(b.scalar_type()))
    throw UsageError("kernel_inception_distance: expected floating features [Na,D] and [Nb,D], got " + shape(a) +
                     " and " + shape(b));
  if (a.size(1) != b.size(1))
    throw UsageError("kernel_inception_distance: feature sizes differ: " + shape(a) + " vs " + shape(b));
  if (options.subsets < 1)
    throw UsageError("kernel_inception_distance: subsets must be >= 1, got " + std::to_string(options.subsets));
  const int64_t m = std::min({options.subset_size, a.size(0), b.size(0)});
  if (m < 2)
    throw UsageError("kernel_inception_distance: each subset needs at least 2 rows of each set; subset_size " +
                     std::to_string(options.subset_size) + " with sets of " + std::to_string(a.size(0)) + " and " +
                     std::to_string(b.size(0)) + " rows gives " + std::to_string(m));

  // 2 one MMD^2_u per seeded subset pair: the first m entries of a random permutation are a
  // uniform draw without replacement
  const at::Tensor x = a.to(at::kCPU, at::kDouble), y = b.to(at::kCPU, at::kDouble);
  Rng rng(options.seed);
  const auto long_cpu = at::TensorOptions().dtype(at::kLong);
  std::vector<double> values;
  values.reserve(static_cast<size_t>(options.subsets));
  for (int64_t s = 0; s < options.subsets; ++s) {
    const at::Tensor ia = at::randperm(x.size(0), rng.generator(), long_cpu).narrow(0, 0, m);
    const at::Tensor ib = at::randperm(y.size(0), rng.generator(), long_cpu).narrow(0, 0, m);
    values.push_back(polynomial_mmd2_unbiased(x.index_select(0, ia), y.index_select(0, ib)));
  }

  // 3 mean and population std over the subsets
  double sum = 0;
  for (const double v : values) sum += v;
  const double mean = sum / static_cast<double>(values.size());
  double squares = 0;
  for (const double v : values) squares += (v - mean) * (v - mean);
  return {.mean = mean,
          .std = std::sqrt(squares / static_cast<double>(values.size())),
          .subsets = options.subsets,
          .subset_size = m};
}

}  // namespace genvis::eval
