// The object-weighted reconstruction loss by hand, for a clip frame and for an image.
#include "core/error.h"
#include "train/foreground_weights.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::train {
namespace {

TEST(ForegroundWeights, WeightedMseByHandOnAClipFrame) {
  // One frame of 2x2 grey background (0) with one red pixel (1, 0, 0); the decoder is off by 0.5
  // on the red pixel's red channel and by 0.2 on a background pixel's green channel.
  at::Tensor x = torch::zeros({1, 3, 1, 2, 2});
  x[0][0][0][0][0] = 1.0;
  at::Tensor decoded = x.clone();
  decoded[0][0][0][0][0] = 0.5;
  decoded[0][1][0][1][1] = 0.2;
  // Plain MSE: (0.25 + 0.04) / 12 elements.
  EXPECT_NEAR(foreground_weighted_mse(decoded, x, 0.0).item<double>(), 0.29 / 12, 1e-7);
  // Weight 9: the red pixel's 3 elements count 10 times: (10 * 0.25 + 0.04) / (3 * 10 + 9 * 1).
  EXPECT_NEAR(foreground_weighted_mse(decoded, x, 9.0).item<double>(), (2.5 + 0.04) / 39.0, 1e-7);
}

TEST(ForegroundWeights, ImagesUseTheirOwnBackground) {
  // Two 3x3 images: a white one with a dark centre, a blue one with a yellow corner.
  at::Tensor x = torch::ones({2, 3, 3, 3});
  x[0].select(1, 1).select(1, 1).fill_(0.2);
  x[1].select(0, 0).fill_(0.1), x[1].select(0, 1).fill_(0.2), x[1].select(0, 2).fill_(0.9);
  x[1].select(1, 0).select(1, 0).copy_(torch::tensor({0.9f, 0.9f, 0.1f}));
  const at::Tensor w = foreground_weights(x, 4.0);
  ASSERT_EQ(w.sizes(), at::IntArrayRef({2, 1, 3, 3}));
  at::Tensor expected = torch::ones({2, 1, 3, 3});
  expected[0][0][1][1] = 5.0;
  expected[1][0][0][0] = 5.0;
  EXPECT_TRUE(w.equal(expected)) << w;
  EXPECT_THROW(foreground_weights(torch::zeros({3, 3}), 1.0), UsageError);
}

}  // namespace
}  // namespace genvis::train
