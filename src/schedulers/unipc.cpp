// UniPC multistep (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast
// Sampling of Diffusion Models", arXiv:2302.04867) in its data-prediction (predict_x0) form over a
// rectified-flow path: alpha = 1 - sigma, lambda = log(alpha) - log(sigma). Each step converts
// the model output to x0 (the Denoiser does: x - sigma * v), corrects the previous step's sample
// with it (UniC), then predicts the next sample (UniP). Scalar arithmetic is float32, as diffusers
// does it on 0-dim float32 tensors, so results agree with UniPCMultistepScheduler to float rounding.
#include "core/error.h"
#include "schedulers/samplers.h"

#include <algorithm>
#include <cmath>
#include <deque>

namespace genvis::schedulers {
namespace {

float lambda_of(float sigma) { return std::log(1.0f - sigma) - std::log(sigma); }

// Solves R rho = b (k <= 3) by Gaussian elimination with partial pivoting, in float32.
std::vector<float> solve(std::vector<std::vector<float>> r, std::vector<float> b) {
  const size_t k = b.size();
  for (size_t c = 0; c < k; ++c) {
    size_t p = c;
    for (size_t i = c + 1; i < k; ++i)
      if (std::abs(r[i][c]) > std::abs(r[p][c])) p = i;
    std::swap(r[c], r[p]);
    std::swap(b[c], b[p]);
    for (size_t i = c + 1; i < k; ++i) {
      const float f = r[i][c] / r[c][c];
      for (size_t j = c; j < k; ++j) r[i][j] -= f * r[c][j];
      b[i] -= f * b[c];
    }
  }
  std::vector<float> x(k);
  for (size_t c = k; c-- > 0;) {
    float v = b[c];
    for (size_t j = c + 1; j < k; ++j) v -= r[c][j] * x[j];
    x[c] = v / r[c][c];
  }
  return x;
}

// The B(h) scaling and the order conditions' right-hand side b_i = h phi_i(h) i! / B(h) of one
// update of `order`, with hh = -h (data prediction).
struct Coefficients {
  float h_phi_1, b_h;
  std::vector<float> b;
};
Coefficients coefficients(float h, int64_t order, UniPCOptions::Solver solver) {
  const float hh = -h;
  Coefficients c;
  c.h_phi_1 = std::expm1(hh);
  c.b_h = solver == UniPCOptions::Solver::BH1 ? hh : std::expm1(hh);
  float h_phi_k = c.h_phi_1 / hh - 1.0f;
  float factorial = 1.0f;
  for (int64_t i = 1; i <= order; ++i) {
    c.b.push_back(h_phi_k * factorial / c.b_h);
    factorial *= static_cast<float>(i + 1);
    h_phi_k = h_phi_k / hh - 1.0f / factorial;
  }
  return c;
}

// The ratios r_k = (lambda_{s_k} - lambda_{s0}) / h of the older points and their differences
// D_k = (m_k - m0) / r_k; `older[k]` is the k-th point back from s0 (sigma, x0 estimate).
struct Differences {
  std::vector<float> r;
  std::vector<at::Tensor> d;
};
Differences differences(float h, float lambda_s0, const at::Tensor& m0,
                        const std::vector<std::pair<float, at::Tensor>>& older) {
  Differences out;
  for (const auto& [sigma, m] : older) {
    const float r = (lambda_of(sigma) - lambda_s0) / h;
    out.r.push_back(r);
    out.d.push_back((m - m0) / r);
  }
  return out;
}

// R[i][j] = r_j^i over the ratios plus a trailing 1, i, j < n.
std::vector<std::vector<float>> powers(const std::vector<float>& r, size_t n) {
  std::vector<float> rks = r;
  rks.push_back(1.0f);
  std::vector<std::vector<float>> m(n, std::vector<float>(n));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) m[i][j] = std::pow(rks[j], static_cast<float>(i));
  return m;
}

at::Tensor weighted_sum(const std::vector<float>& rho, const std::vector<at::Tensor>& d) {
  at::Tensor sum = d[0] * rho[0];
  for (size_t k = 1; k < d.size(); ++k) sum = sum + d[k] * rho[k];
  return sum;
}

}  // namespace

UniPCOptions unipc_options(const NoiseScheduleConfig& config) {
  return {.order = config.solver_order,
          .solver = config.solver_type == "bh1" ? UniPCOptions::Solver::BH1 : UniPCOptions::Solver::BH2,
          .lower_order_final = config.lower_order_final,
          .disable_corrector = config.disable_corrector};
}

at::Tensor sample_unipc(const Denoiser& denoise, at::Tensor x, const std::vector<double>& sigmas,
                        const UniPCOptions& options, const StepCallback& callback, const StepCallback& on_corrected) {
  check_sigmas(sigmas, "sample_unipc");
  if (options.order < 1 || options.order > 3) throw UsageError("UniPC order must be 1, 2 or 3");
  if (sigmas.front() >= 1.0) throw UsageError("sample_unipc works on flow sigmas below 1");
  const auto n = static_cast<int64_t>(sigmas.size()) - 1;
  const auto sig = [&](int64_t i) { return static_cast<float>(sigmas[static_cast<size_t>(i)]); };
  std::deque<at::Tensor> outputs;  // x0 estimates, newest last, at most `order`
  at::Tensor last_sample;
  int64_t last_order = 0, warm = 0;
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor m_t = denoise(x, sigmas[static_cast<size_t>(i)]);
    // UniC: correct the sample the previous step predicted, with this step's estimate.
    const bool correct = i > 0 && std::find(options.disable_corrector.begin(), options.disable_corrector.end(), i - 1) ==
                                      options.disable_corrector.end();
    if (correct) {
      const float s_t = sig(i), s_s0 = sig(i - 1), alpha_t = 1.0f - s_t;
      const float lambda_s0 = lambda_of(s_s0), h = lambda_of(s_t) - lambda_s0;
      const at::Tensor& m0 = outputs.back();
      std::vector<std::pair<float, at::Tensor>> older;
      for (int64_t k = 1; k < last_order; ++k)
        older.emplace_back(sig(i - 1 - k), outputs[outputs.size() - 1 - static_cast<size_t>(k)]);
      const Differences diff = differences(h, lambda_s0, m0, older);
      const Coefficients c = coefficients(h, last_order, options.solver);
      const std::vector<float> rho =
          last_order == 1 ? std::vector<float>{0.5f} : solve(powers(diff.r, static_cast<size_t>(last_order)), c.b);
      at::Tensor res = (m_t - m0) * rho.back();
      if (!diff.d.empty()) res = weighted_sum(rho, diff.d) + res;
      x = last_sample * (s_t / s_s0) - m0 * (alpha_t * c.h_phi_1) - res * (alpha_t * c.b_h);
    }
    if (on_corrected) on_corrected(i, x, m_t);
    outputs.push_back(m_t);
    if (static_cast<int64_t>(outputs.size()) > options.order) outputs.pop_front();
    int64_t order = options.lower_order_final ? std::min(options.order, n - i) : options.order;
    order = std::min(order, warm + 1);
    last_order = order;
    last_sample = x;
    // UniP: predict the next sample from the newest `order` estimates.
    const float s_t = sig(i + 1), s_s0 = sig(i), alpha_t = 1.0f - s_t;
    if (s_t == 0.0f) {
      x = m_t;  // lambda -> inf: the update's limit is the x0 estimate itself
    } else {
      const float lambda_s0 = lambda_of(s_s0), h = lambda_of(s_t) - lambda_s0;
      std::vector<std::pair<float, at::Tensor>> older;
      for (int64_t k = 1; k < order; ++k)
        older.emplace_back(sig(i - k), outputs[outputs.size() - 1 - static_cast<size_t>(k)]);
      const Differences diff = differences(h, lambda_s0, m_t, older);
      const Coefficients c = coefficients(h, order, options.solver);
      at::Tensor next = x * (s_t / s_s0) - m_t * (alpha_t * c.h_phi_1);
      if (!diff.d.empty()) {
        // Order 2 uses rho = 0.5 (the paper's simplified UniP-2); higher orders solve the system.
        const std::vector<float> rho =
            order == 2 ? std::vector<float>{0.5f}
                       : solve(powers(diff.r, static_cast<size_t>(order - 1)),
                               std::vector<float>(c.b.begin(), c.b.end() - 1));
        next = next - weighted_sum(rho, diff.d) * (alpha_t * c.b_h);
      }
      x = next;
    }
    if (warm < options.order) ++warm;
    if (callback) callback(i, x, m_t);
  }
  return x;
}

}  // namespace genvis::schedulers
