#include "eval/precision_recall.h"

#include "core/error.h"
#include "eval/tensor_shape.h"

#include <algorithm>
#include <string>
#include <vector>

namespace genvis::eval {
namespace {

// Squared Euclidean distances of rows x [b,D] to rows y [N,D] -> [b,N], clamped at 0.
// y_norm2 [N] = |y|^2, computed once per set rather than once per block.
at::Tensor squared_distances(const at::Tensor& x, const at::Tensor& y, const at::Tensor& y_norm2) {
  const at::Tensor x_norm2 = x.square().sum(1, /*keepdim=*/true);  // [b,1]
  return x.mm(y.t()).mul_(-2.0).add_(x_norm2).add_(y_norm2.unsqueeze(0)).clamp_min_(0);  // one [b,N] buffer
}

// The squared radius of every row's ball: its squared distance to its k-th nearest other row.
// manifold [N,D] f64, 1 <= k < N -> [N] f64.
at::Tensor manifold_radii2(const at::Tensor& manifold, int64_t k, int64_t block_size) {
  const int64_t n = manifold.size(0);
  const at::Tensor norm2 = manifold.square().sum(1);  // [N]
  std::vector<at::Tensor> radii;
  for (int64_t start = 0; start < n; start += block_size) {
    const int64_t rows = std::min(block_size, n - start);
    at::Tensor d2 = squared_distances(manifold.narrow(0, start, rows), manifold, norm2);  // [rows,N]
    // A row's distance to itself is 0 by definition (the formula may leave a rounding residue),
    // so it is the smallest entry and the (k+1)-th smallest is the k-th nearest other row.
    d2.diagonal(/*offset=*/start, /*dim1=*/0, /*dim2=*/1).zero_();
    radii.push_back(std::get<0>(d2.kthvalue(k + 1, /*dim=*/1)));  // [rows]
  }
  return at::cat(radii);
}

// Whether each probe row [P,D] lies in some row's ball: [P] bool.
at::Tensor inside_manifold(const at::Tensor& manifold, const at::Tensor& radii2, const at::Tensor& probes,
                           int64_t block_size) {
  const int64_t p = probes.size(0);
  const at::Tensor norm2 = manifold.square().sum(1);  // [N]
  std::vector<at::Tensor> inside;
  for (int64_t start = 0; start < p; start += block_size) {
    const int64_t rows = std::min(block_size, p - start);
    const at::Tensor d2 = squared_distances(probes.narrow(0, start, rows), manifold, norm2);  // [rows,N]
    inside.push_back(d2.le(radii2.unsqueeze(0)).any(1));                                     // [rows]
  }
  return at::cat(inside);
}

}  // namespace

PrecisionRecallResult precision_recall(const at::Tensor& real, const at::Tensor& fake,
                                       const PrecisionRecallOptions& options) {
  // 1 check
  if (!real.defined() || !fake.defined() || real.dim() != 2 || fake.dim() != 2 ||
      !at::isFloatingType(real.scalar_type()) || !at::isFloatingType(fake.scalar_type()))
    throw UsageError("precision_recall: expected floating features [Nr,D] and [Nf,D], got " + shape(real) + " and " +
                     shape(fake));
  if (real.size(1) != fake.size(1))
    throw UsageError("precision_recall: feature sizes differ: " + shape(real) + " vs " + shape(fake));
  const int64_t k = options.k;
  if (k < 1 || k >= real.size(0) || k >= fake.size(0))
    throw UsageError("precision_recall: k must be in [1, N) for both sets (the k-th nearest other row); k = " +
                     std::to_string(k) + " with " + std::to_string(real.size(0)) + " real and " +
                     std::to_string(fake.size(0)) + " fake rows");
  if (options.block_size < 1)
    throw UsageError("precision_recall: block_size must be >= 1, got " + std::to_string(options.block_size));

  // 2 precision: fake rows on the real manifold; recall: real rows on the fake manifold
  const at::Tensor r = real.to(at::kCPU, at::kDouble), f = fake.to(at::kCPU, at::kDouble);
  const int64_t block = options.block_size;
  PrecisionRecallResult result;
  result.k = k;
  result.precision = inside_manifold(r, manifold_radii2(r, k, block), f, block).to(at::kDouble).mean().item<double>();
  result.recall = inside_manifold(f, manifold_radii2(f, k, block), r, block).to(at::kDouble).mean().item<double>();
  return result;
}

}  // namespace genvis::eval
