// nn::attention (bf16 one-pass kernel, f32 oneDNN blocks, reference fallback) and nn::linear
// against a float64 reference, on shapes with every tail: odd head sizes, key counts that are
// not multiples of 32, query counts that are not multiples of the block.
#include "nn/attention.h"

#include <cmath>
#include <gtest/gtest.h>
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
TEST(Attention, BFloat16MatchesReference) { check(at::kBFloat16, 2e-2); }

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
