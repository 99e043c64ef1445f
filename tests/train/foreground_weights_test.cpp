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

TEST(ForegroundWeights, LatentPositionsAndPerSampleMeans) {
  // A 4x4 white image with one dark pixel at (row 1, col 2), latents of patch 2: the position
  // (0, 1) covers it and weighs 1 + 3; the others 1.
  at::Tensor x = torch::ones({1, 3, 4, 4});
  x[0].select(1, 1).select(1, 2).fill_(0.0);
  const at::Tensor w = latent_foreground_weights(x, 2, 3.0);
  ASSERT_EQ(w.sizes(), at::IntArrayRef({1, 1, 2, 2}));
  EXPECT_TRUE(w.equal(torch::tensor({1.0f, 4.0f, 1.0f, 1.0f}).view({1, 1, 2, 2}))) << w;
  EXPECT_THROW(latent_foreground_weights(x, 3, 1.0), UsageError);
  // Two samples of 2 channels x 2 positions; sample 0's squared errors 1 and 3 on channel 0, 0 on
  // channel 1, position 0 weighing 3: (3 * 1 + 1 * 3) / (2 channels * (3 + 1)) = 0.75. Sample 1
  // unweighted (all 1): its plain mean.
  const at::Tensor squared = torch::tensor({1.0f, 3.0f, 0.0f, 0.0f, 2.0f, 4.0f, 6.0f, 8.0f}).view({2, 2, 2});
  const at::Tensor ws = torch::tensor({3.0f, 1.0f, 1.0f, 1.0f}).view({2, 1, 2});
  const at::Tensor m = weighted_mean_per_sample(squared, ws);
  ASSERT_EQ(m.sizes(), at::IntArrayRef({2}));
  EXPECT_NEAR(m[0].item<double>(), 0.75, 1e-7);
  EXPECT_NEAR(m[1].item<double>(), 5.0, 1e-7);
  EXPECT_THROW(weighted_mean_per_sample(squared, torch::ones({2, 2, 2})), UsageError);
}

}  // namespace
}  // namespace genvis::train
