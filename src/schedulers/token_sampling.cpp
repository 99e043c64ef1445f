#include "schedulers/token_sampling.h"

#include "core/error.h"

#include <functional>
#include <limits>
#include <torch/torch.h>

namespace genvis::schedulers {

void validate(const TokenSampling& s, const std::string& field_prefix) {
  const auto field = [&](const char* name) { return "'" + field_prefix + name + "'"; };
  if (!(s.temperature >= 0)) throw UsageError(field("temperature") + " must be >= 0, got " + std::to_string(s.temperature));
  if (s.top_k < 0) throw UsageError(field("top_k") + " must be >= 0, got " + std::to_string(s.top_k));
  if (!(s.top_p > 0 && s.top_p <= 1))
    throw UsageError(field("top_p") + " must be in (0, 1], got " + std::to_string(s.top_p));
}

at::Tensor filter_logits(const at::Tensor& logits, int64_t top_k, double top_p) {
  if (logits.dim() != 2) throw UsageError("token logits must be [B,V], got " + c10::str(logits.sizes()));
  constexpr float kRemoved = -std::numeric_limits<float>::infinity();
  at::Tensor out = logits.to(at::kFloat).clone();
  const int64_t V = out.size(1);
  if (top_k > 0 && top_k < V) {
    const at::Tensor kth = std::get<0>(out.topk(top_k, 1)).narrow(1, top_k - 1, 1);  // [B,1]
    out.masked_fill_(out < kth, kRemoved);
  }
  if (top_p < 1) {
    const auto [sorted, order] = out.sort(1, /*descending=*/true);
    const at::Tensor cumulative = at::softmax(sorted, 1).cumsum(1);
    // Remove a token when the tokens before it already reach top_p (the first always stays).
    const at::Tensor before = cumulative - at::softmax(sorted, 1);
    const at::Tensor remove_sorted = before >= top_p;
    out.masked_fill_(at::zeros_like(remove_sorted).scatter(1, order, remove_sorted), kRemoved);
  }
  return out;
}

namespace {

// Inverse-CDF draws: u [B,1] uniforms in [0,1) -> ids [B].
at::Tensor draw(const at::Tensor& logits, const TokenSampling& s, const std::function<at::Tensor(int64_t)>& uniforms) {
  validate(s);
  const at::Tensor filtered = filter_logits(logits, s.top_k, s.top_p);
  if (s.temperature == 0) return filtered.argmax(1);
  const at::Tensor probs = at::softmax(filtered / s.temperature, 1).cpu();
  const at::Tensor u = uniforms(probs.size(0)).view({-1, 1}).clamp_min(1e-12);
  const at::Tensor cdf = probs.cumsum(1);
  const at::Tensor ids = (cdf < u * cdf.narrow(1, cdf.size(1) - 1, 1)).sum(1).clamp_max(probs.size(1) - 1);
  return ids.to(logits.device());
}

}  // namespace

at::Tensor sample_tokens(const at::Tensor& logits, const TokenSampling& s, Rng& rng) {
  return draw(logits, s, [&](int64_t B) { return rng.rand({B}, at::TensorOptions().dtype(at::kFloat)); });
}

at::Tensor sample_tokens(const at::Tensor& logits, const TokenSampling& s, std::vector<Rng>& rngs) {
  if (static_cast<int64_t>(rngs.size()) != logits.size(0))
    throw UsageError("sample_tokens: " + std::to_string(rngs.size()) + " generators for " +
                     std::to_string(logits.size(0)) + " rows");
  return draw(logits, s, [&](int64_t B) {
    at::Tensor u = at::empty({B}, at::kFloat);
    for (int64_t b = 0; b < B; ++b) u[b] = rngs[static_cast<size_t>(b)].rand({1}, at::TensorOptions().dtype(at::kFloat))[0];
    return u;
  });
}

at::Tensor guide_logits(const at::Tensor& cond, const at::Tensor& uncond, double scale) {
  const at::Tensor c = at::log_softmax(cond.to(at::kFloat), -1), u = at::log_softmax(uncond.to(at::kFloat), -1);
  return u + (c - u) * scale;
}

}  // namespace genvis::schedulers
