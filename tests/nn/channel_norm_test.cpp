// nn::channel_l2_norm against the libtorch expression (vector norm over channels, clamp, divide,
// scale, SiLU) in float64, for f32 and bf16, 4-D and 5-D inputs with a position tail.
#include "nn/channel_norm.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::nn {
namespace {

at::Tensor reference(const at::Tensor& x, const at::Tensor& w, bool silu) {
  const at::Tensor x64 = x.to(at::kDouble);
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = x.size(1);
  const at::Tensor y = x64 / at::linalg_vector_norm(x64, 2, at::IntArrayRef{1}, true, c10::nullopt).clamp_min(1e-12) *
                       w.to(at::kDouble).reshape(shape);
  return silu ? at::silu(y) : y;
}

TEST(ChannelL2Norm, MatchesFloat64) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  for (const auto& sizes : std::vector<std::vector<int64_t>>{{2, 96, 3, 9, 11}, {3, 20, 5, 7}, {1, 384, 1, 30, 52}})
    for (const auto dtype : {at::kFloat, at::kBFloat16})
      for (const bool silu : {false, true}) {
        const at::Tensor x = (torch::randn(sizes) * 3).to(dtype);
        const at::Tensor w = (torch::randn({sizes[1], 1, 1}) * std::sqrt(double(sizes[1]))).to(dtype);
        const at::Tensor got = channel_l2_norm(x, w, silu);
        ASSERT_EQ(got.sizes(), x.sizes());
        ASSERT_EQ(got.scalar_type(), dtype);
        const at::Tensor want = reference(x, w, silu);
        // f32: a few float roundings; bf16: the output's own rounding (2^-8 relative) and the
        // rounding of inputs the reference sees too.
        const double tol = dtype == at::kFloat ? 1e-5 : 8e-3;
        const double err = ((got.to(at::kDouble) - want).abs() / (want.abs() + 1)).max().item<double>();
        EXPECT_LE(err, tol) << sizes.size() << "-D, silu " << silu;
      }
}

TEST(ChannelL2Norm, StridedInputAndZeroVectors) {
  torch::NoGradGuard no_grad;
  at::Tensor x = torch::randn({1, 4, 6, 8}).permute({0, 1, 3, 2});  // not contiguous
  x.select(2, 0).zero_();                                            // all-zero channel vectors: 0, not NaN
  const at::Tensor w = torch::ones({4});
  const at::Tensor got = channel_l2_norm(x, w, true);
  EXPECT_TRUE(got.isfinite().all().item<bool>());
  EXPECT_LE((got.to(at::kDouble) - reference(x, w, true)).abs().max().item<double>(), 1e-6);
}

}  // namespace
}  // namespace genvis::nn
