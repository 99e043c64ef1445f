// Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
// estimate of the squared maximum mean discrepancy between two feature sets under the cubic
// polynomial kernel, averaged over random subsets, as torch-fidelity and clean-fid compute it.
//
//   KIDResult kid = kernel_inception_distance(real_features, fake_features,   // [Na,D], [Nb,D]
//                                             {.subsets = 100, .subset_size = 1000, .seed = 0});
//   kid.mean;  // ~0 (either sign) when both sets come from one distribution, > 0 otherwise
//   kid.std;   // spread over the subsets
//
//   k(x, y) = (x.y / D + 1)^3
//   MMD^2_u = sum_{i!=j} k(a_i,a_j) / (m(m-1)) + sum_{i!=j} k(b_i,b_j) / (m(m-1))
//             - 2 sum_{i,j} k(a_i,b_j) / m^2
//
// Unlike FID, the estimate is unbiased (the diagonal k(x,x) terms are left out), so its
// expectation does not depend on m and it can be negative. Each subset draws m = min(subset_size,
// Na, Nb) rows of a and m rows of b without replacement from one seeded Rng: the same seed gives
// the same subsets on every machine (with the same libtorch). mean and std are over the subsets;
// std is the population std (divides by `subsets`), as numpy.std in torch-fidelity.
// Arithmetic is in f64 on the CPU; memory is three [m,m] kernel matrices.
#pragma once
#include <ATen/ATen.h>
#include <cstdint>

namespace genvis::eval {

struct KIDOptions {
  int64_t subsets = 100;       // >= 1
  int64_t subset_size = 1000;  // clamped to min(Na, Nb); the clamped size must be >= 2
  uint64_t seed = 0;
};

struct KIDResult {
  double mean = 0, std = 0;  // over the subsets' MMD^2_u
  int64_t subsets = 0;
  int64_t subset_size = 0;   // m actually used (after clamping)
};

// a [Na,D], b [Nb,D], floating, any device. UsageError when not 2-D, the D differ, subsets < 1
// or fewer than 2 rows can be drawn.
KIDResult kernel_inception_distance(const at::Tensor& a, const at::Tensor& b, const KIDOptions& options = {});

// MMD^2_u of two equally sized sets a [m,D], b [m,D] (f64, m >= 2) under the cubic kernel: one
// subset's value.
double polynomial_mmd2_unbiased(const at::Tensor& a, const at::Tensor& b);

}  // namespace genvis::eval
