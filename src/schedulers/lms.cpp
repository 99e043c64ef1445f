// Linear multistep in sigma space (k-diffusion sample_lms).
#include "schedulers/samplers.h"

#include "core/error.h"

#include <array>
#include <deque>

namespace genvis::schedulers {
namespace {

// Integral over [sigmas[i], sigmas[i+1]] of the Lagrange basis polynomial for node i - j among
// nodes i, i-1, ..., i-order+1. The integrand has degree order-1 <= 3, so 3-point Gauss-Legendre
// is exact (k-diffusion integrates it numerically with scipy.quad).
double lms_coefficient(int64_t order, const std::vector<double>& t, int64_t i, int64_t j) {
  static constexpr std::array<double, 3> kNodes = {-0.7745966692414834, 0.0, 0.7745966692414834};
  static constexpr std::array<double, 3> kWeights = {5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0};
  const double a = t[i], b = t[i + 1];
  double sum = 0;
  for (size_t q = 0; q < kNodes.size(); ++q) {
    const double tau = (b - a) / 2 * kNodes[q] + (a + b) / 2;
    double prod = 1;
    for (int64_t k = 0; k < order; ++k)
      if (k != j) prod *= (tau - t[i - k]) / (t[i - j] - t[i - k]);
    sum += kWeights[q] * prod;
  }
  return sum * (b - a) / 2;
}

}  // namespace

// Karras et al. 2022 appendix / k-diffusion: LMS, the Adams-Bashforth method on d = (x - x0)/sigma.
at::Tensor sample_lms(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas, int64_t order,
                      const StepCallback& callback) {
  check_sigmas(sigmas, "sample_lms");
  if (order < 1 || order > 4) throw UsageError("sample_lms: order must be in [1, 4] (got " + std::to_string(order) + ")");
  std::deque<at::Tensor> ds;  // newest last
  for (int64_t i = 0; i + 1 < static_cast<int64_t>(sigmas.size()); ++i) {
    const at::Tensor denoised = denoise(x, sigmas[i]);
    ds.push_back((x - denoised) / static_cast<float>(sigmas[i]));
    if (static_cast<int64_t>(ds.size()) > order) ds.pop_front();
    const int64_t cur_order = std::min(i + 1, order);
    for (int64_t j = 0; j < cur_order; ++j)
      x = x + ds[ds.size() - 1 - j] * lms_coefficient(cur_order, sigmas, i, j);
    if (callback) callback(i, x, denoised);
  }
  return x;
}

}  // namespace genvis::schedulers
