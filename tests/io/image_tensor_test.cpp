#include "core/error.h"
#include "io/image_tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <torch/torch.h>

namespace genvis::io {
namespace {

TEST(ImageTensorTest, ImageToTensorMapsToMinusOneOne) {
  Image im = Image::blank(2, 1, 3);
  im.pixels = {0, 128, 255, 1, 2, 3};  // (x0: 0 128 255) (x1: 1 2 3)
  const at::Tensor t = image_to_tensor(im);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{1, 3, 1, 2}));
  EXPECT_EQ(t.scalar_type(), at::kFloat);
  const auto a = t.accessor<float, 4>();
  EXPECT_EQ(a[0][0][0][0], -1.0f);
  EXPECT_EQ(a[0][1][0][0], 2.0f * (128.0f / 255.0f) - 1.0f);
  EXPECT_EQ(a[0][2][0][0], 1.0f);
  EXPECT_EQ(a[0][0][0][1], 2.0f * (1.0f / 255.0f) - 1.0f);
  EXPECT_EQ(a[0][2][0][1], 2.0f * (3.0f / 255.0f) - 1.0f);

  Image deep = Image::blank(1, 1, 1, 16);
  deep.pixels = {65535};
  EXPECT_EQ(image_to_tensor(deep).item<float>(), 1.0f);
  deep.pixels = {0};
  EXPECT_EQ(image_to_tensor(deep).item<float>(), -1.0f);
  EXPECT_THROW(image_to_tensor(Image{}), UsageError);
}

TEST(ImageTensorTest, TensorToImageValuesAndClamping) {
  const at::Tensor t = at::tensor({-1.0f, 1.0f, 0.0f, -3.0f, 3.0f, NAN}).reshape({1, 1, 6});
  const Image im = tensor_to_image(t);
  EXPECT_EQ(im.width, 6);
  EXPECT_EQ(im.height, 1);
  EXPECT_EQ(im.channels, 1);
  EXPECT_EQ(im.bit_depth, 8);
  EXPECT_EQ(im.pixels, (std::vector<uint16_t>{0, 255, 128 /* 127.5 to even */, 0, 255, 0}));
}

TEST(ImageTensorTest, RoundsHalfToEven) {
  // Find float32 inputs where float32(v) * 255 lands exactly on k + 0.5, as numpy sees it.
  int checked = 0;
  for (int k = 64; k < 255; ++k) {
    float v = (static_cast<float>(k) + 0.5f) / 255.0f;
    for (int step = 0; step < 8; ++step, v = std::nextafter(v, 2.0f)) {
      if (v * 255.0f != static_cast<float>(k) + 0.5f) continue;
      const float x = 2.0f * v - 1.0f;  // exact for v in [0.25, 1]; x / 2 + 0.5 gives v back
      const Image im = tensor_to_image(at::full({1, 1, 1}, x));
      EXPECT_EQ(im.pixels[0], k % 2 == 0 ? k : k + 1) << "k=" << k;
      ++checked;
    }
  }
  EXPECT_GT(checked, 10);
}

TEST(ImageTensorTest, EightBitRoundTripIsIdentity) {
  for (const int channels : {1, 3, 4}) {
    Image im = Image::blank(256, 2, channels);
    for (int x = 0; x < 256; ++x)
      for (int y = 0; y < 2; ++y)
        for (int c = 0; c < channels; ++c) im.at(x, y, c) = static_cast<uint16_t>((x + 97 * c + 31 * y) % 256);
    const at::Tensor t = image_to_tensor(im);
    EXPECT_EQ(tensor_to_image(t).pixels, im.pixels) << channels;
    EXPECT_EQ(tensor_to_image(t[0]).pixels, im.pixels) << channels;
    EXPECT_EQ(tensor_to_image(t.to(at::kDouble)).pixels, im.pixels) << channels;
    EXPECT_EQ(tensor_to_image(t.to(at::kBFloat16).to(at::kFloat)).channels, channels);
  }
}

TEST(ImageTensorTest, LayoutIsCHW) {
  // [1, 3, 2, 2]: channel c has value (c - 1) everywhere except pixel (x=1, y=0).
  at::Tensor t = at::zeros({1, 3, 2, 2});
  t[0][0].fill_(-1);
  t[0][2].fill_(1);
  t[0][1][0][1] = 1;
  const Image im = tensor_to_image(t);
  EXPECT_EQ(im.at(0, 0, 0), 0);
  EXPECT_EQ(im.at(0, 0, 1), 128);
  EXPECT_EQ(im.at(0, 0, 2), 255);
  EXPECT_EQ(im.at(1, 0, 1), 255);
  EXPECT_EQ(im.at(1, 1, 1), 128);
  // Non-contiguous input gives the same result.
  const at::Tensor strided = t.transpose(2, 3).contiguous().transpose(2, 3);
  EXPECT_EQ(tensor_to_image(strided).pixels, im.pixels);
}

TEST(ImageTensorTest, OtherDtypes) {
  const at::Tensor ints = at::tensor({-1, 0, 1}, at::kInt).reshape({1, 1, 3});
  EXPECT_EQ(tensor_to_image(ints).pixels, (std::vector<uint16_t>{0, 128, 255}));
  const at::Tensor half = at::tensor({-1.0f, 0.0f, 1.0f, 0.5f}).reshape({1, 1, 4}).to(at::kHalf);
  EXPECT_EQ(tensor_to_image(half).pixels, (std::vector<uint16_t>{0, 128, 255, 191}));
}

TEST(ImageTensorTest, BadShapes) {
  EXPECT_THROW(tensor_to_image(at::zeros({2, 3, 4, 4})), UsageError);
  EXPECT_THROW(tensor_to_image(at::zeros({2, 4, 4})), UsageError);
  EXPECT_THROW(tensor_to_image(at::zeros({5, 4, 4})), UsageError);
  EXPECT_THROW(tensor_to_image(at::zeros({4, 4})), UsageError);
  EXPECT_THROW(tensor_to_image(at::zeros({1, 1, 3, 4, 4})), UsageError);
  EXPECT_THROW(tensor_to_image(at::zeros({3, 0, 4})), UsageError);
  EXPECT_THROW(tensor_to_image(at::Tensor()), UsageError);
  try {
    tensor_to_image(at::zeros({2, 3, 4, 4}));
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3, 4, 4]"), std::string::npos) << e.what();
  }
}

TEST(ImageTensorTest, SquareResizeCropsTheCentreAndAveragesAreas) {
  // 2 x 6: the centre 2 x 2 crop is columns 2 and 3.
  const at::Tensor x = at::arange(12, at::kFloat).view({1, 1, 2, 6});
  const at::Tensor same = square_resize(x, 2);
  EXPECT_TRUE(same.equal(torch::tensor({2.0f, 3.0f, 8.0f, 9.0f}).view({1, 1, 2, 2})));
  // Down: the mean of each area (here the whole crop).
  EXPECT_NEAR(square_resize(x, 1).item<double>(), (2 + 3 + 8 + 9) / 4.0, 1e-6);
  // Up: bilinear, the range kept.
  const at::Tensor up = square_resize(torch::rand({2, 3, 4, 4}), 8);
  EXPECT_EQ(up.sizes(), (std::vector<int64_t>{2, 3, 8, 8}));
  EXPECT_GE(up.min().item<double>(), 0.0);
  EXPECT_LE(up.max().item<double>(), 1.0);
  EXPECT_THROW(square_resize(torch::rand({3, 4, 4}), 4), UsageError);
  EXPECT_THROW(square_resize(torch::rand({1, 3, 4, 4}), 0), UsageError);
}

}  // namespace
}  // namespace genvis::io
