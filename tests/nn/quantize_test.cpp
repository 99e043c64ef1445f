// nn::quantize_int8 on a module tree: which layers get int8 copies (Linear, Conv2d with plain
// geometry, not the kept ones), that nn::linear / nn::conv2d / nn::conv1x1 route through them
// (call counters) with results close to the float layers, that training-time calls (gradients
// wanted) stay float and exact, and that quantising again or dequantising replaces or removes them.
#include "nn/quantize.h"

#include "nn/attention.h"
#include "nn/lora.h"
#include "nn/transformer2d.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::nn {
namespace {

struct TreeImpl : torch::nn::Module {
  TreeImpl() {
    fc = register_module("fc", torch::nn::Linear(24, 40));
    head = register_module("head", torch::nn::Linear(40, 8));
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 10, 3).padding(1).stride(2)));
    pointwise = register_module("pointwise", torch::nn::Conv2d(torch::nn::Conv2dOptions(10, 12, 1)));
    grouped = register_module("grouped", torch::nn::Conv2d(torch::nn::Conv2dOptions(12, 12, 3).padding(1).groups(3)));
    circular = register_module(
        "circular", torch::nn::Conv2d(torch::nn::Conv2dOptions(12, 4, 3).padding(1).padding_mode(torch::kCircular)));
  }
  torch::nn::Linear fc{nullptr}, head{nullptr};
  torch::nn::Conv2d conv{nullptr}, pointwise{nullptr}, grouped{nullptr}, circular{nullptr};
};
TORCH_MODULE(Tree);

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  return ((got - want).norm() / want.norm()).item<double>();
}

TEST(Quantize, GivesCopiesToPlainLayersAndKeepsTheRest) {
  torch::manual_seed(0);
  Tree t;
  const QuantizeReport r = quantize_int8(*t, [](const std::string& name) { return name == "head"; });
  EXPECT_EQ(r.linear, 1);
  EXPECT_EQ(r.conv, 2);  // conv and pointwise; grouped and circular padding stay float
  EXPECT_EQ(r.kept, 3);
  EXPECT_NE(int8_layer(*t->fc), nullptr);
  EXPECT_EQ(int8_layer(*t->head), nullptr);
  EXPECT_NE(int8_layer(*t->conv), nullptr);
  EXPECT_NE(int8_layer(*t->pointwise), nullptr);
  EXPECT_EQ(int8_layer(*t->grouped), nullptr);
  EXPECT_EQ(int8_layer(*t->circular), nullptr);
  EXPECT_EQ(int8_layer(*t->conv)->geometry.stride_h, 2);
  EXPECT_EQ(int8_layer(*t->conv)->geometry.pad_w, 1);
  // The copies are neither parameters nor buffers: a state dict is unchanged.
  EXPECT_EQ(t->named_parameters().size(), 12u);
  EXPECT_EQ(t->named_buffers().size(), 0u);
  const auto layers = int8_layers(*t);
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0].first, "fc");
}

TEST(Quantize, LayersRunTheirInt8CopiesOnlyWhenNoGradientIsWanted) {
  torch::manual_seed(1);
  Tree t;
  const at::Tensor x = torch::randn({3, 5, 24});
  const at::Tensor image = torch::randn({2, 6, 9, 9});
  at::Tensor want_linear, want_conv, want_pointwise;
  {
    torch::NoGradGuard no_grad;
    want_linear = linear(x, t->fc);
    want_conv = conv2d(image, t->conv);
    want_pointwise = conv1x1(want_conv, t->pointwise);
  }
  quantize_int8(*t, {});
  torch::NoGradGuard no_grad;
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    t->to(dtype);
    const at::Tensor y = linear(x.to(dtype), t->fc);
    const at::Tensor c = conv2d(image.to(dtype), t->conv);
    const at::Tensor p = conv1x1(c, t->pointwise);
    EXPECT_EQ(y.scalar_type(), dtype);
    EXPECT_LT(relative_error(y.to(at::kFloat), want_linear), 0.03);
    EXPECT_LT(relative_error(c.to(at::kFloat), want_conv), 0.04);
    EXPECT_LT(relative_error(p.to(at::kFloat), want_pointwise), 0.06);
    EXPECT_FALSE(at::allclose(y.to(at::kFloat), want_linear, 1e-6, 1e-6)) << "the int8 product must have run";
  }
  EXPECT_EQ(int8_layer(*t->fc)->calls.load(), 2);
  EXPECT_EQ(int8_layer(*t->conv)->calls.load(), 2);
  EXPECT_EQ(int8_layer(*t->pointwise)->calls.load(), 2);
}

TEST(Quantize, GegluRunsItsProjectionAndGeluInOneInt8Pass) {
  torch::manual_seed(3);
  FeedForward ff(32, 4);
  const at::Tensor x = torch::randn({2, 9, 32});
  torch::NoGradGuard no_grad;
  const at::Tensor want = ff(x);
  quantize_int8(*ff, {});
  const at::Tensor got = ff(x);
  EXPECT_LT(relative_error(got, want), 0.04);
  Int8LayerImpl* proj = int8_layer(*ff->geglu->proj);
  ASSERT_NE(proj, nullptr);
  EXPECT_EQ(proj->calls.load(), 1);
  EXPECT_EQ(proj->weight.geglu_half, 128);
  EXPECT_EQ(int8_layer(*ff->out)->calls.load(), 1);
  // Another layer call on the projection itself takes the float weight (the int8 copy is GEGLU's now).
  EXPECT_TRUE(at::equal(linear(x, ff->geglu->proj), linear(x, ff->geglu->proj->weight, ff->geglu->proj->bias)));
}

TEST(Quantize, TrainingCallsStayFloatAndRequantisingFollowsTheWeights) {
  torch::manual_seed(2);
  Tree t;
  quantize_int8(*t, {});
  const at::Tensor x = torch::randn({4, 24});
  {
    // Gradients wanted (the weights require them): the float layer, exactly.
    const at::Tensor y = linear(x, t->fc);
    EXPECT_TRUE(y.requires_grad());
    EXPECT_TRUE(at::equal(y, linear(x, t->fc->weight, t->fc->bias)));
    EXPECT_EQ(int8_layer(*t->fc)->calls.load(), 0);
  }
  torch::NoGradGuard no_grad;
  t->fc->weight.mul_(2.0);
  const at::Tensor stale = linear(x, t->fc);
  quantize_int8(*t, {});
  const at::Tensor fresh = linear(x, t->fc);
  const at::Tensor want = at::linear(x, t->fc->weight, t->fc->bias);
  EXPECT_GT(relative_error(stale, want), 0.2);
  EXPECT_LT(relative_error(fresh, want), 0.03);
  EXPECT_EQ(dequantize(*t), 4);  // fc, head, conv, pointwise
  EXPECT_EQ(int8_layer(*t->fc), nullptr);
  EXPECT_TRUE(at::equal(linear(x, t->fc), linear(x, t->fc->weight, t->fc->bias)));
  EXPECT_EQ(quantize_int8(*t, {}).linear, 2) << "quantising after dequantising";
}

}  // namespace
}  // namespace genvis::nn
