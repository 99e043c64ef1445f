// nn::attention (bf16 one-pass kernel, f32 oneDNN blocks, reference fallback) and nn::linear
// against a float64 reference, on shapes with every tail: odd head sizes, key counts that are
// not multiples of 32, query counts that are not multiples of the block.
#include "nn/attention.h"

#include "core/error.h"

#include <cmath>
#include <cstdio>
#include <gtest/gtest.h>
#include <limits>
#include <torch/torch.h>

namespace genvis::nn {
namespace {

at::Tensor reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads) {
  const auto to64 = [&](const at::Tensor& t) { return split_heads(t.to(at::kDouble), heads); };
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(2) / heads));
  const at::Tensor p = (at::matmul(to64(q), to64(k).transpose(-1, -2)) * scale).softmax(-1);
  return merge_heads(at::matmul(p, to64(v)));
}

struct Case {
  int64_t batch, n, t, heads, head_dim;
};

// The last one makes the f32 path take several blocks of queries (block = 4M scores / (H*T)).
const Case kCases[] = {{1, 37, 77, 3, 6}, {2, 100, 300, 2, 33}, {2, 64, 64, 8, 40}, {1, 33, 1, 1, 16},
                       {1, 70, 257, 1, 512}, {2, 5, 77, 8, 160}, {2, 300, 4096, 8, 8}};

void check(at::ScalarType dtype, double tolerance) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  for (const Case& c : kCases) {
    const int64_t width = c.heads * c.head_dim;
    const at::Tensor q = torch::randn({c.batch, c.n, width}).to(dtype);
    const at::Tensor k = torch::randn({c.batch, c.t, width}).to(dtype);
    const at::Tensor v = torch::randn({c.batch, c.t, width}).to(dtype);
    const at::Tensor want = reference(q, k, v, c.heads);
    const at::Tensor got = attention(q, k, v, c.heads);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_EQ(got.scalar_type(), dtype);
    const double err = (got.to(at::kDouble) - want).abs().max().item<double>();
    EXPECT_LE(err, tolerance) << "batch " << c.batch << " n " << c.n << " t " << c.t << " heads " << c.heads << " d "
                              << c.head_dim;
    // The split-heads entry point computes the same.
    const at::Tensor split = genvis::nn::scaled_dot_product_attention(split_heads(q, c.heads), split_heads(k, c.heads),
                                                          split_heads(v, c.heads));
    EXPECT_LE((merge_heads(split).to(at::kDouble) - want).abs().max().item<double>(), tolerance);
  }
}

TEST(Attention, Float32MatchesReference) { check(at::kFloat, 1e-5); }

// Inputs are rounded to bf16 first, so the reference sees the same values; what remains is the
// bf16 rounding of the probabilities and of the output.
TEST(Attention, BFloat16MatchesReference) {
  std::printf("[          ] bf16 kernel on this CPU: %s\n", cpu_attention_kernel(at::kBFloat16));
  check(at::kBFloat16, 2e-2);
}

// softmax(q k^T * scale + bias) v in float64.
at::Tensor biased_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads, double scale,
                            const at::Tensor& bias) {
  const auto to64 = [&](const at::Tensor& t) { return split_heads(t.to(at::kDouble), heads); };
  const at::Tensor p = (at::matmul(to64(q), to64(k).transpose(-1, -2)) * scale + bias.to(at::kDouble)).softmax(-1);
  return merge_heads(at::matmul(p, to64(v)));
}

// T5's use: a per-head position bias [1,H,N,T] plus a key padding mask [B,1,1,T] of float's
// lowest value, scale 1; also a full [B,H,N,T] bias, a per-key bias [T], and the default scale.
void check_bias(at::ScalarType dtype, double tolerance) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  const int64_t b = 2, n = 45, t = 300, heads = 4;
  for (const int64_t d : {int64_t{16}, int64_t{40}}) {
    const int64_t width = heads * d;
    const at::Tensor q = torch::randn({b, n, width}).to(dtype), k = torch::randn({b, t, width}).to(dtype),
                     v = torch::randn({b, t, width}).to(dtype);
    at::Tensor mask = torch::zeros({b, 1, 1, t});
    mask.narrow(-1, 250, 50).select(0, 0).fill_(std::numeric_limits<float>::lowest());  // batch 0: 250 keys
    mask.narrow(-1, 0, 3).select(0, 1).fill_(std::numeric_limits<float>::lowest());     // batch 1: not the first 3
    const at::Tensor position = torch::randn({1, heads, n, t}) * 3;
    const std::vector<std::pair<std::string, at::Tensor>> biases = {
        {"position + mask", position + mask}, {"mask", mask}, {"full", torch::randn({b, heads, n, t})},
        {"per key", torch::randn({t}) * 4}};
    for (const auto& [name, bias] : biases)
      for (const std::optional<double> scale : {std::optional<double>(1.0), std::optional<double>()}) {
        const double sc = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(d));
        const at::Tensor want = biased_reference(q, k, v, heads, sc, bias);
        const at::Tensor got = attention(q, k, v, heads, scale, bias);
        ASSERT_EQ(got.sizes(), want.sizes());
        const double err = (got.to(at::kDouble) - want).abs().max().item<double>();
        EXPECT_LE(err, tolerance) << name << " d " << d << " scale " << sc;
        const at::Tensor split = genvis::nn::scaled_dot_product_attention(split_heads(q, heads), split_heads(k, heads),
                                                                          split_heads(v, heads), scale, bias);
        EXPECT_LE((merge_heads(split).to(at::kDouble) - want).abs().max().item<double>(), tolerance) << name;
      }
    // The masked keys get no weight: values there changed to huge numbers change nothing.
    at::Tensor v2 = v.clone();
    v2.select(0, 0).narrow(0, 250, 50).fill_(1e4);
    const at::Tensor a = attention(q, k, v, heads, 1.0, position + mask), c = attention(q, k, v2, heads, 1.0, position + mask);
    EXPECT_TRUE(at::equal(a, c));
  }
}

TEST(Attention, Float32BiasMatchesReference) { check_bias(at::kFloat, 1e-5); }
TEST(Attention, BFloat16BiasMatchesReference) { check_bias(at::kBFloat16, 2e-2); }

TEST(Attention, BiasWithGradientsUsesTheReferencePath) {
  torch::manual_seed(4);
  const at::Tensor q = torch::randn({2, 9, 8}, torch::requires_grad());
  const at::Tensor k = torch::randn({2, 5, 8}), v = torch::randn({2, 5, 8}), bias = torch::randn({1, 2, 9, 5});
  const at::Tensor out = attention(q, k, v, 2, 1.0, bias);
  EXPECT_LE((out.detach().to(at::kDouble) - biased_reference(q.detach(), k, v, 2, 1.0, bias)).abs().max().item<double>(), 1e-5);
  out.sum().backward();
  ASSERT_TRUE(q.grad().defined());
  EXPECT_TRUE(q.grad().isfinite().all().item<bool>());
}

TEST(Attention, RejectsABiasOfMoreThanFourDimensions) {
  const at::Tensor q = torch::randn({1, 4, 8});
  EXPECT_THROW(attention(q, q, q, 2, std::nullopt, torch::zeros({1, 1, 2, 4, 4})), UsageError);
}

// Wan 2.1's shapes (12 heads of 128): self-attention over 4133 spacetime tokens (several key
// blocks, a partial last block of queries and of keys) and cross-attention to 512 text and 257
// image tokens, in bf16, against softmax(q k^T / sqrt(128)) v computed with plain f32 matmuls from
// the same bf16 inputs, on three blocks of query rows (first, middle, last with the tail).
// Queries and keys have std 2, so the softmax is peaked (scores std 4) and outputs are O(1).
TEST(Attention, WanShapesMatchFloat32Reference) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  const int64_t n = 4133, heads = 12, d = 128, width = heads * d;
  const at::Tensor q = (torch::randn({1, n, width}) * 2).to(at::kBFloat16);
  const std::vector<int64_t> rows_start = {0, 2048, 4096};
  for (const int64_t t : {n, int64_t{512}, int64_t{257}}) {
    const at::Tensor k = (torch::randn({1, t, width}) * 2).to(at::kBFloat16), v = torch::randn({1, t, width}).to(at::kBFloat16);
    const at::Tensor got = attention(q, k, v, heads);
    ASSERT_EQ(got.sizes(), q.sizes());
    ASSERT_EQ(got.scalar_type(), at::kBFloat16);
    double max_err = 0, max_ref = 0, sq_err = 0, sq_ref = 0;
    for (const int64_t r0 : rows_start) {
      const int64_t rows = std::min<int64_t>(37, n - r0);
      const at::Tensor qh = split_heads(q.narrow(1, r0, rows).to(at::kFloat), heads);  // [1,H,rows,D]
      const at::Tensor p = (at::matmul(qh, split_heads(k.to(at::kFloat), heads).transpose(-1, -2)) / std::sqrt(128.0)).softmax(-1);
      const at::Tensor want = merge_heads(at::matmul(p, split_heads(v.to(at::kFloat), heads)));
      const at::Tensor diff = got.narrow(1, r0, rows).to(at::kFloat) - want;
      max_err = std::max(max_err, diff.abs().max().item<double>());
      max_ref = std::max(max_ref, want.abs().max().item<double>());
      sq_err += diff.pow(2).sum().item<double>();
      sq_ref += want.pow(2).sum().item<double>();
    }
    const double rel_rms = std::sqrt(sq_err / sq_ref);
    EXPECT_LE(max_err, 2e-2) << "keys " << t;
    EXPECT_LE(rel_rms, 5e-3) << "keys " << t;
    EXPECT_GT(max_ref, 0.5) << "keys " << t << ": the softmax should be peaked (outputs O(1))";
    std::printf("[          ] keys %lld: max abs error %.3g (max |ref| %.3g), relative RMS error %.3g\n",
                static_cast<long long>(t), max_err, max_ref, rel_rms);
  }
}

TEST(Attention, GradientsUseTheReferencePath) {
  const at::Tensor q = torch::randn({1, 9, 8}, torch::requires_grad());
  const at::Tensor k = torch::randn({1, 5, 8}), v = torch::randn({1, 5, 8});
  attention(q, k, v, 2).sum().backward();
  ASSERT_TRUE(q.grad().defined());
  EXPECT_TRUE(q.grad().isfinite().all().item<bool>());
}

TEST(Linear, MatchesReferenceForEveryLayout) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    const at::Tensor w = torch::randn({24, 40}).to(dtype), b = torch::randn({24}).to(dtype);
    for (const auto& sizes : std::vector<std::vector<int64_t>>{{1, 40}, {7, 40}, {2, 33, 40}, {2, 3, 5, 40}}) {
      const at::Tensor x = torch::randn(sizes).to(dtype);
      const at::Tensor want = at::linear(x.to(at::kDouble), w.to(at::kDouble), b.to(at::kDouble));
      const double tol = dtype == at::kFloat ? 1e-4 : 0.5;
      for (const at::Tensor& bias : {b, at::Tensor()}) {
        const at::Tensor got = linear(x, w, bias);
        const at::Tensor ref = bias.defined() ? want : want - b.to(at::kDouble);
        ASSERT_EQ(got.sizes(), ref.sizes());
        EXPECT_LE((got.to(at::kDouble) - ref).abs().max().item<double>(), tol);
      }
      // A strided (transposed) input gives the same result.
      const at::Tensor xt = x.transpose(0, -1).contiguous().transpose(0, -1);
      EXPECT_LE((linear(xt, w, b).to(at::kDouble) - want).abs().max().item<double>(), tol);
    }
  }
}

// f32 with gradients (training) goes through its own oneDNN backward: the gradients of x, w and b
// equal at::linear's in double, with and without bias, for a 3-d input.
TEST(Linear, GradientsMatchTheReference) {
  torch::manual_seed(1);
  for (const bool with_bias : {true, false}) {
    const at::Tensor x0 = torch::randn({2, 9, 40}), w0 = torch::randn({24, 40}), b0 = torch::randn({24});
    const at::Tensor up = torch::randn({2, 9, 24});
    const auto grads = [&](bool reference) {
      const at::ScalarType t = reference ? at::kDouble : at::kFloat;
      const at::Tensor x = x0.to(t).detach().requires_grad_(), w = w0.to(t).detach().requires_grad_(),
                       b = b0.to(t).detach().requires_grad_();
      const at::Tensor y = reference ? at::linear(x, w, with_bias ? b : at::Tensor()) : linear(x, w, with_bias ? b : at::Tensor());
      (y * up.to(t)).sum().backward();
      return std::vector<at::Tensor>{y.to(at::kDouble), x.grad().to(at::kDouble), w.grad().to(at::kDouble),
                                     with_bias ? b.grad().to(at::kDouble) : at::zeros({24}, at::kDouble)};
    };
    const auto got = grads(false), want = grads(true);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].sizes(), want[i].sizes()) << i;
      EXPECT_LE((got[i] - want[i]).abs().max().item<double>(), 1e-3) << "output/dx/dw/db " << i;
    }
  }
}

}  // namespace
}  // namespace genvis::nn
