// ResnetBlock2D, Downsample2D and Upsample2D with diffusers' parameter names.
//
//   genvis::nn::ResnetBlock2D block({.in_channels = 64, .out_channels = 32, .temb_channels = 128});
//   at::Tensor y = block(x /*[B,64,H,W]*/, temb /*[B,128]*/);   // [B,32,H,W]
#pragma once
#include <optional>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <vector>

namespace genvis::nn {

struct ResnetBlock2DOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;       // 0: same as in_channels
  int64_t temb_channels = 0;      // 0: no time_emb_proj (VAE)
  int64_t groups = 32;
  double eps = 1e-5;
  double output_scale_factor = 1.0;
};

// norm1 -> SiLU -> conv1 (+ time_emb_proj(SiLU(temb))) -> norm2 -> SiLU -> conv2, plus the
// input (through a 1x1 conv_shortcut when channels change), divided by output_scale_factor.
class ResnetBlock2DImpl : public torch::nn::Module {
public:
  explicit ResnetBlock2DImpl(const ResnetBlock2DOptions& options);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb = {});

  ResnetBlock2DOptions options;
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  torch::nn::Linear time_emb_proj{nullptr};
};
TORCH_MODULE(ResnetBlock2D);

// 3x3 stride-2 conv. padding 0 means diffusers' asymmetric form: pad right/bottom by 1 first
// (VAE encoder); the UNet uses padding 1.
class Downsample2DImpl : public torch::nn::Module {
public:
  Downsample2DImpl(int64_t channels, int64_t out_channels, int64_t padding);
  at::Tensor forward(const at::Tensor& x);

  int64_t padding;
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample2D);

// Nearest x2 (or to output_size) then 3x3 conv.
class Upsample2DImpl : public torch::nn::Module {
public:
  Upsample2DImpl(int64_t channels, int64_t out_channels);
  at::Tensor forward(const at::Tensor& x, std::optional<std::vector<int64_t>> output_size = std::nullopt);

  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

}  // namespace genvis::nn
