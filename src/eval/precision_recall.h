// Improved precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric
// for Assessing Generative Models"): how much of the generated set lies on the real data's
// manifold (fidelity), and how much of the real set lies on the generated manifold (coverage).
//
//   PrecisionRecallResult pr = precision_recall(real_features, fake_features, {.k = 3});
//   pr.precision;  // fraction of fake rows inside the real manifold, in [0,1]
//   pr.recall;     // fraction of real rows inside the fake manifold, in [0,1]
//
// The manifold of a set is the union of closed balls, one around each of its rows, with radius
// the distance to that row's k-th nearest OTHER row of the same set (a duplicate row counts as an
// other row at distance 0). A probe is inside when its distance to some row is <= that row's
// radius. As in the reference (NVlabs stylegan2-ada-pytorch metrics/precision_recall.py), k = 3.
//
// Distances are Euclidean, in f64 on the CPU, compared squared (|x|^2 + |y|^2 - 2 x.y, clamped
// at 0). They are computed block_size rows at a time against the whole other set, so memory is
// O(block_size * N) rather than O(N^2); block_size changes nothing but rounding.
#pragma once
#include <ATen/ATen.h>
#include <cstdint>

namespace genvis::eval {

struct PrecisionRecallOptions {
  int64_t k = 3;              // neighbourhood size, 1 <= k < N for both sets
  int64_t block_size = 512;   // rows of distances held at once (>= 1): block_size * N * 8 bytes
};

struct PrecisionRecallResult {
  double precision = 0, recall = 0;
  int64_t k = 0;
};

// real [Nr,D], fake [Nf,D], floating, any device. UsageError when not 2-D, the D differ, k < 1,
// k >= Nr or k >= Nf, or block_size < 1.
PrecisionRecallResult precision_recall(const at::Tensor& real, const at::Tensor& fake,
                                       const PrecisionRecallOptions& options = {});

}  // namespace genvis::eval
