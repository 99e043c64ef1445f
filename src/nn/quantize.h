// int8 inference for whole models (`--quant int8`, issue 21): every Linear and Conv2d of a module
// tree, except the layers a family keeps in its own dtype (first and last convolutions, time and
// condition embedders), gets an int8 copy of its weight (nn/int8_gemm.h: per-output-channel
// scales) as a child module named "int8"; nn::linear, nn::conv2d and nn::conv1x1 then run the
// int8 product for CPU inputs in f32/bf16 without gradients, and the float layer otherwise (a
// quantised model can still be moved to another device or trained: the float weights stay).
//
//   auto report = genvis::nn::quantize_int8(*unet, [](const std::string& name) {
//     return name == "conv_in" || name == "conv_out" || name.rfind("time_embedding", 0) == 0;
//   });
//   at::Tensor h = genvis::nn::conv2d(x, resnet->conv1);  // int8 when the layer has its copy
//
// Quantising again (e.g. after a LoRA was merged into the weights) replaces the copies.
#pragma once
#include "nn/int8_gemm.h"

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace genvis::nn {

class Int8LayerImpl : public torch::nn::Module {
public:
  Int8LayerImpl(int8::PackedWeight weight, bool conv, int8::ConvGeometry geometry);
  int8::PackedWeight weight;
  bool conv = false;
  int8::ConvGeometry geometry;
  std::atomic<int64_t> calls{0};  // int8 products run (tests check that every copy is used)
};
TORCH_MODULE(Int8Layer);

// The layer's int8 copy, or null.
Int8LayerImpl* int8_layer(const torch::nn::Module& layer);

struct QuantizeReport {
  int64_t linear = 0, conv = 0;  // layers given an int8 copy
  int64_t kept = 0;              // Linear/Conv2d layers left as they are (by `keep` or unsupported geometry)
  std::vector<std::string> kept_names;
};
// Gives every Linear and Conv2d under `root` (groups 1, dilation 1, zero padding) whose dotted name
// (relative to root) `keep` does not claim an int8 copy of its current weight; a GEGLU's projection
// gets its copy packed for GEGLU's fused product (int8::interleave_geglu).
QuantizeReport quantize_int8(torch::nn::Module& root, const std::function<bool(const std::string& name)>& keep);
// Removes every int8 copy under `root`; returns how many.
int64_t dequantize(torch::nn::Module& root);
// Every int8 copy under `root`, by dotted name of its layer.
std::vector<std::pair<std::string, Int8LayerImpl*>> int8_layers(torch::nn::Module& root);

// A Conv2d's geometry when it is a plain one (groups 1, dilation 1, zero padding given as numbers),
// the convolutions the int8 path runs; nullopt otherwise.
std::optional<int8::ConvGeometry> plain_conv_geometry(const torch::nn::Conv2dImpl& conv);

// Whether `x` takes the int8 path of a layer with float weight `weight`: CPU, f32 or bf16, and no
// gradient wanted (grad mode off, or neither x nor the weight requires one).
bool int8_applies(const at::Tensor& x, const at::Tensor& weight);

// layer(x) through the int8 copy when there is one and int8_applies(x).
at::Tensor conv2d(const at::Tensor& x, const torch::nn::Conv2d& layer);

}  // namespace genvis::nn
