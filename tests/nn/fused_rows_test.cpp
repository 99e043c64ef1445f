// nn/fused_rows against the libtorch expressions they replace, in f32 and bf16, on row widths
// with a tail (not a multiple of 16), [B,N,C] and [N,C] inputs, per-batch and shared parameters.
#include "nn/fused_rows.h"

#include <cmath>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::nn {
namespace {

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>(); }

// Largest difference in units of the bf16 spacing at the reference's magnitude (>= 2^-20).
double bf16_ulps(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor w = want.to(at::kDouble), spacing = at::exp2(at::floor(at::log2(w.abs().clamp_min(1e-6))) - 7);
  return ((got.to(at::kDouble) - w).abs() / spacing).max().item<double>();
}

struct Shape {
  std::vector<int64_t> sizes;  // x
  std::vector<int64_t> param;  // scale / shift / gate
};

const Shape kShapes[] = {{{2, 37, 1536}, {2, 1, 1536}}, {{1, 5, 70}, {70}}, {{19, 33}, {33}}, {{3, 4, 16}, {1, 1, 16}}};

TEST(FusedRows, LayerNormScaleShiftMatchesLibtorch) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  for (const auto& s : kShapes)
    for (const auto dtype : {at::kFloat, at::kBFloat16})
      for (const auto out : {at::kFloat, at::kBFloat16}) {
        const at::Tensor x = (torch::randn(s.sizes) * 3 + 1).to(dtype);
        const at::Tensor scale = 1 + torch::randn(s.param), shift = torch::randn(s.param);
        const at::Tensor want = (at::layer_norm(x.to(at::kFloat), {x.size(-1)}, {}, {}, 1e-6) * scale + shift).to(out);
        const at::Tensor got = layer_norm_scale_shift(x, 1e-6, scale, shift, out);
        ASSERT_EQ(got.sizes(), x.sizes());
        ASSERT_EQ(got.scalar_type(), out);
        if (out == at::kFloat) {
          EXPECT_LE(max_diff(got, want), 2e-5) << x.sizes();
        } else {
          // f32 rounding differences before the bf16 rounding flip at most one bf16 step of the
          // terms' magnitude (|norm * scale| + |shift|; the sum can cancel to far less).
          const at::Tensor n = at::layer_norm(x.to(at::kFloat), {x.size(-1)}, {}, {}, 1e-6);
          const at::Tensor magnitude = ((n * scale).abs() + shift.abs()).clamp_min(1e-30);
          const at::Tensor step = at::exp2(at::floor(at::log2(magnitude)) - 7);
          EXPECT_LE(((got.to(at::kFloat) - want.to(at::kFloat)).abs() / step).max().item<double>(), 1.0) << x.sizes();
        }
      }
}

// A LayerNorm's own bf16 weight and bias as scale and shift (Wan's cross-attention norm).
TEST(FusedRows, LayerNormTakesANormsWeights) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  const at::Tensor x = torch::randn({1, 50, 96}).to(at::kBFloat16);
  const at::Tensor w = torch::randn({96}).to(at::kBFloat16), b = torch::randn({96}).to(at::kBFloat16);
  const at::Tensor want = at::layer_norm(x.to(at::kFloat), {96}, w.to(at::kFloat), b.to(at::kFloat), 1e-6).to(at::kBFloat16);
  EXPECT_LE(bf16_ulps(layer_norm_scale_shift(x, 1e-6, w, b, at::kBFloat16), want), 1.0);
}

TEST(FusedRows, AddGatedMatchesLibtorch) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  for (const auto& s : kShapes)
    for (const auto dtype : {at::kFloat, at::kBFloat16}) {
      const at::Tensor x = torch::randn(s.sizes).to(dtype), y = torch::randn(s.sizes).to(dtype), g = torch::randn(s.param);
      const at::Tensor want = (x.to(at::kFloat) + y.to(at::kFloat) * g).to(dtype);
      const at::Tensor got = add_gated(x, y, g);
      ASSERT_EQ(got.scalar_type(), dtype);
      // The same f32 operations in the same order: identical.
      EXPECT_TRUE(at::equal(got, want)) << x.sizes() << " max diff " << max_diff(got, want);
    }
}

TEST(FusedRows, RMSNormMatchesLibtorch) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (const auto& s : kShapes)
    for (const auto dtype : {at::kFloat, at::kBFloat16}) {
      const at::Tensor x = (torch::randn(s.sizes) * 2).to(dtype), w = torch::randn({s.sizes.back()}).to(dtype);
      const at::Tensor f = x.to(at::kFloat);
      const at::Tensor want = (f * at::rsqrt(f.pow(2).mean(-1, true) + 1e-6) * w.to(at::kFloat)).to(dtype);
      const at::Tensor got = rms_norm(x, w, 1e-6);
      if (dtype == at::kFloat) EXPECT_LE(max_diff(got, want), 1e-5) << x.sizes();
      else EXPECT_LE(bf16_ulps(got, want), 1.0) << x.sizes();
    }
}

// Against GELU-tanh in float64 of the same inputs, as x / (1 + exp(-2u)) (= 0.5 x (1 + tanh(u)),
// u = sqrt(2/pi) (x + 0.044715 x^3), without the cancellation of 1 + tanh(u) for negative x that
// libtorch has even in float64). f32: relative error <= 2e-6 plus the f32 rounding of 2u
// (2.4e-7 |2u|, which exp() passes on; libtorch's f32 has ~3e-5 around x = -3); bf16: one bf16
// step of the result (correct rounding is half a step).
TEST(FusedRows, GeluTanhMatchesFloat64) {
  torch::NoGradGuard no_grad;
  // Every regime: large negative (-> 0), around 0, large positive (-> x), with a tail.
  const at::Tensor base = at::cat({torch::linspace(-12, 12, 20001), torch::randn({3, 1001}).flatten() * 4, torch::randn({5})});
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    const at::Tensor x = base.view({-1, 7}).to(dtype);  // 23009 = 7 x 3287
    const at::Tensor x64 = x.to(at::kDouble);
    const at::Tensor two_u = 2 * std::sqrt(2 / M_PI) * (x64 + 0.044715 * x64.pow(3));
    const at::Tensor want = x64 / (1 + at::exp(-two_u)), got = gelu_tanh(x.clone()).to(at::kDouble);
    const at::Tensor diff = (got - want).abs();
    const at::Tensor allowed = (dtype == at::kFloat ? want.abs() * (2e-6 + 2.4e-7 * two_u.abs())
                                                    : at::exp2(at::floor(at::log2(want.abs().clamp_min(1e-30))) - 7)) +
                               1e-38;  // (f32's smallest normal: below it, denormal rounding)
    const int64_t worst = (diff - allowed).flatten().argmax().item<int64_t>();
    EXPECT_TRUE((diff <= allowed).all().item<bool>())
        << "dtype " << dtype << " worst at x " << x64.flatten()[worst].item<double>() << ": "
        << got.flatten()[worst].item<double>() << " for " << want.flatten()[worst].item<double>();
  }
}

// Bit-identical to the float64 tensor expression (the reference's complex128 product).
TEST(FusedRows, RotaryPairsEqualTheFloat64Expression) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  for (const int64_t d : {int64_t{128}, int64_t{12}, int64_t{22}})
    for (const auto dtype : {at::kFloat, at::kBFloat16}) {
      const int64_t b = 2, n = 13, heads = 3;
      const at::Tensor x = torch::randn({b, n, heads * d}).to(dtype);
      const at::Tensor angles = torch::rand({n, d / 2}, at::kDouble) * 40;
      const at::Tensor c = angles.cos(), s = angles.sin();
      const at::Tensor pairs = x.view({b, n, heads, d / 2, 2}).to(at::kDouble);
      const at::Tensor a0 = pairs.select(-1, 0), a1 = pairs.select(-1, 1), cc = c.unsqueeze(1), ss = s.unsqueeze(1);
      const at::Tensor want = at::stack({a0 * cc - a1 * ss, a0 * ss + a1 * cc}, -1).view({b, n, heads * d}).to(dtype);
      const at::Tensor got = rotary_pairs(x, c, s, heads);
      ASSERT_EQ(got.sizes(), x.sizes());
      EXPECT_TRUE(at::equal(got, want)) << "d " << d << " max diff " << max_diff(got, want);
    }
}

// With gradients the libtorch expressions run, and the gradients flow.
TEST(FusedRows, GradientsUseLibtorch) {
  const at::Tensor x = torch::randn({2, 3, 20}, torch::requires_grad()), w = torch::randn({20});
  const at::Tensor c = torch::rand({3, 5}, at::kDouble).cos(), s = torch::rand({3, 5}, at::kDouble).sin();
  const at::Tensor y = layer_norm_scale_shift(x, 1e-6, w, w, at::kFloat) + add_gated(x, x, w) + rms_norm(x, w, 1e-6) +
                       gelu_tanh(x * 1) + rotary_pairs(x, c, s, 2);
  y.sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(x.grad().isfinite().all().item<bool>());
}

}  // namespace
}  // namespace genvis::nn
