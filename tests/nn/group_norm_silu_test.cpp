// nn::group_norm_silu against at::silu(GroupNorm(x)) for f32 and bf16, NCHW and channels-last,
// channel counts and spatial sizes that are not multiples of the vector width.
#include "nn/group_norm_silu.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::nn {
namespace {

TEST(GroupNormSiLU, MatchesTheUnfusedOps) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  struct Case {
    int64_t batch, channels, groups, h, w;
  };
  for (const Case c : {Case{2, 64, 32, 9, 7}, Case{1, 40, 8, 16, 16}, Case{2, 320, 32, 5, 3}, Case{1, 6, 3, 1, 1}}) {
    torch::nn::GroupNorm norm(torch::nn::GroupNormOptions(c.groups, c.channels).eps(1e-6));
    norm->weight.uniform_(0.5, 1.5);
    norm->bias.uniform_(-0.5, 0.5);
    // Mean far from zero: the variance must not cancel.
    const at::Tensor x64 = torch::randn({c.batch, c.channels, c.h, c.w}, at::kDouble) * 3 + 5;
    const at::Tensor want = at::silu(at::group_norm(x64, c.groups, norm->weight.to(at::kDouble), norm->bias.to(at::kDouble), 1e-6));
    for (const auto dtype : {at::kFloat, at::kBFloat16}) {
      norm->to(dtype);
      for (const auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
        const at::Tensor x = x64.to(dtype).contiguous(format);
        const at::Tensor got = group_norm_silu(norm, x);
        ASSERT_EQ(got.sizes(), x.sizes());
        EXPECT_EQ(got.scalar_type(), dtype);
        EXPECT_TRUE(got.is_contiguous(format));
        // bf16: the input itself is rounded (relative 2^-9 of |x| ~ 10 -> ~0.02 before normalising).
        const double tol = dtype == at::kFloat ? 2e-5 : 0.1;
        EXPECT_LE((got.to(at::kDouble) - want).abs().max().item<double>(), tol)
            << c.channels << " channels " << c.h << "x" << c.w << " " << c10::toString(dtype);
        // At least as close to the exact result as libtorch's own unfused ops in the same dtype
        // (which round twice in bf16).
        const double fused_err = (got.to(at::kDouble) - want).abs().max().item<double>();
        const double unfused_err = (at::silu(norm(x)).to(at::kDouble) - want).abs().max().item<double>();
        EXPECT_LE(fused_err, unfused_err * 1.01 + (dtype == at::kFloat ? 1e-6 : 1e-3)) << fused_err << " vs " << unfused_err;
      }
      norm->to(at::kFloat);
    }
  }
}

TEST(GroupNormSiLU, KeepsAutogradWorking) {
  torch::nn::GroupNorm norm(torch::nn::GroupNormOptions(2, 4));
  const at::Tensor x = torch::randn({1, 4, 3, 3}, torch::requires_grad());
  group_norm_silu(norm, x).sum().backward();
  EXPECT_TRUE(x.grad().defined());
}

}  // namespace
}  // namespace genvis::nn
