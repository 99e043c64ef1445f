// Spacetime patches: patchify/unpatchify are inverse at several sizes and patch shapes, each
// token holds its patch's values in (dt, dy, dx, c) order, and a Conv3d patch embedding (Wan's)
// is a linear map of those tokens.
#include "models/wan/spacetime_patches.h"

#include "core/error.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::models {
namespace {

struct Case {
  std::vector<int64_t> patch;
  int64_t frames, height, width;
};

TEST(SpacetimePatches, RoundTripAndTokenLayoutAtSeveralSizes) {
  torch::manual_seed(3);
  const int64_t B = 2, C = 3;
  for (const Case& k : {Case{{1, 2, 2}, 1, 4, 6}, Case{{1, 2, 2}, 5, 8, 12}, Case{{2, 2, 2}, 4, 6, 4},
                        Case{{1, 1, 1}, 3, 3, 5}, Case{{2, 4, 2}, 6, 8, 2}}) {
    const at::Tensor x = torch::randn({B, C, k.frames, k.height, k.width});
    const at::Tensor tokens = patchify(x, k.patch);
    const int64_t f = k.frames / k.patch[0], h = k.height / k.patch[1], w = k.width / k.patch[2];
    ASSERT_EQ(tokens.sizes(), at::IntArrayRef({B, f * h * w, C * k.patch[0] * k.patch[1] * k.patch[2]}));
    EXPECT_TRUE(at::equal(unpatchify(tokens, k.patch, C, k.frames, k.height, k.width), x));
    // Token (i, j, l) value (dt, dy, dx, c) is x[b, c, i*pt+dt, j*ph+dy, l*pw+dx].
    for (int64_t probe = 0; probe < 20; ++probe) {
      const int64_t b = probe % B, i = probe % f, j = (probe * 7) % h, l = (probe * 3) % w;
      const int64_t dt = probe % k.patch[0], dy = (probe / 2) % k.patch[1], dx = (probe / 3) % k.patch[2], c = probe % C;
      const int64_t n = (i * h + j) * w + l;
      const int64_t e = ((dt * k.patch[1] + dy) * k.patch[2] + dx) * C + c;
      EXPECT_EQ(tokens[b][n][e].item<float>(),
                x[b][c][i * k.patch[0] + dt][j * k.patch[1] + dy][l * k.patch[2] + dx].item<float>());
    }
  }
}

TEST(SpacetimePatches, Conv3dPatchEmbeddingIsALinearMapOfTheTokens) {
  torch::manual_seed(4);
  for (const std::vector<int64_t>& p : {std::vector<int64_t>{1, 2, 2}, std::vector<int64_t>{2, 2, 2}}) {
    torch::nn::Conv3d embed(torch::nn::Conv3dOptions(4, 8, {p[0], p[1], p[2]}).stride({p[0], p[1], p[2]}));
    const at::Tensor x = torch::randn({1, 4, 4, 6, 8});
    torch::NoGradGuard no_grad;
    const at::Tensor conv = embed(x).flatten(2).transpose(1, 2);                          // [1, N, 8]
    const at::Tensor weight = embed->weight.permute({0, 2, 3, 4, 1}).flatten(1);          // (dt, dy, dx, c)
    const at::Tensor linear = at::linear(patchify(x, p), weight, embed->bias);
    EXPECT_TRUE(at::allclose(conv, linear, 1e-5, 1e-5)) << (conv - linear).abs().max().item<float>();
  }
}

TEST(SpacetimePatches, IndivisibleSizesAndWrongTokensAreUsageErrors) {
  EXPECT_THROW(patchify(torch::zeros({1, 3, 3, 4, 4}), {2, 2, 2}), UsageError);
  EXPECT_THROW(patchify(torch::zeros({1, 3, 4, 5, 4}), {1, 2, 2}), UsageError);
  EXPECT_THROW(patchify(torch::zeros({3, 4, 4}), {1, 2, 2}), UsageError);
  EXPECT_THROW(patchify(torch::zeros({1, 3, 4, 4, 4}), {1, 2}), UsageError);
  EXPECT_THROW(unpatchify(torch::zeros({1, 5, 12}), {1, 2, 2}, 3, 1, 4, 4), UsageError);  // 4 tokens, not 5
  EXPECT_THROW(unpatchify(torch::zeros({1, 4, 10}), {1, 2, 2}, 3, 1, 4, 4), UsageError);  // 12 values, not 10
}

}  // namespace
}  // namespace genvis::models
