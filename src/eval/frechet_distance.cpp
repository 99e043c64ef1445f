#include "eval/frechet_distance.h"

#include "core/error.h"
#include "eval/tensor_shape.h"

#include <string>

namespace genvis::eval {
namespace {

void check_stats(const GaussianStats& s, const char* which) {
  if (!s.mu.defined() || s.mu.dim() != 1 || !s.sigma.defined() || s.sigma.dim() != 2 ||
      s.sigma.size(0) != s.mu.size(0) || s.sigma.size(1) != s.mu.size(0))
    throw UsageError(std::string("frechet_distance: statistics ") + which + " must be mu [D] and sigma [D,D], got " +
                     shape(s.mu) + " and " + shape(s.sigma));
}

}  // namespace

GaussianStats gaussian_stats(const at::Tensor& features) {
  if (!features.defined() || features.dim() != 2 || !at::isFloatingType(features.scalar_type()))
    throw UsageError("gaussian_stats: expected floating features [N,D], got " + shape(features));
  const int64_t n = features.size(0);
  if (n < 2)
    throw UsageError("gaussian_stats: a covariance needs at least 2 feature rows, got " + std::to_string(n));
  const at::Tensor x = features.to(at::kCPU, at::kDouble);
  GaussianStats s;
  s.mu = x.mean(0);                                                  // [D]
  const at::Tensor centred = x - s.mu;                               // [N,D]
  const at::Tensor sigma = centred.t().mm(centred) / static_cast<double>(n - 1);  // [D,D]
  s.sigma = (sigma + sigma.t()) * 0.5;  // exactly symmetric (mm need not round both halves alike)
  s.count = n;
  return s;
}

at::Tensor psd_sqrt(const at::Tensor& s) {
  const auto [w, v] = at::linalg_eigh(s);                     // s = V diag(w) V^T
  return (v * w.clamp_min(0).sqrt()).mm(v.t());              // [D,D]: V diag(sqrt w) V^T
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  check_stats(a, "a");
  check_stats(b, "b");
  if (a.mu.size(0) != b.mu.size(0))
    throw UsageError("frechet_distance: feature sizes differ: " + std::to_string(a.mu.size(0)) + " vs " +
                     std::to_string(b.mu.size(0)));
  const at::Tensor mu_a = a.mu.to(at::kCPU, at::kDouble), mu_b = b.mu.to(at::kCPU, at::kDouble);
  const at::Tensor sigma_a = a.sigma.to(at::kCPU, at::kDouble), sigma_b = b.sigma.to(at::kCPU, at::kDouble);
  // tr sqrtm(S_a S_b) = nuclear norm of R_b R_a (header); the singular values are >= 0.
  const double tr_covmean = at::linalg_svdvals(psd_sqrt(sigma_b).mm(psd_sqrt(sigma_a))).sum().item<double>();
  const double mean_term = (mu_a - mu_b).square().sum().item<double>();
  return mean_term + sigma_a.trace().item<double>() + sigma_b.trace().item<double>() - 2.0 * tr_covmean;
}

double frechet_distance(const at::Tensor& a, const at::Tensor& b) {
  if (a.defined() && b.defined() && a.dim() == 2 && b.dim() == 2 && a.size(1) != b.size(1))
    throw UsageError("frechet_distance: feature sizes differ: " + shape(a) + " vs " + shape(b));
  return frechet_distance(gaussian_stats(a), gaussian_stats(b));
}

}  // namespace genvis::eval
