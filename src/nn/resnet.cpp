#include "nn/resnet.h"

#include "nn/group_norm_silu.h"
#include "nn/quantize.h"

#include <torch/torch.h>

namespace genvis::nn {
namespace F = torch::nn::functional;

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetBlock2DOptions& o) : options(o) {
  if (options.out_channels == 0) options.out_channels = options.in_channels;
  const int64_t in = options.in_channels, out = options.out_channels;
  norm1 = register_module("norm1", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.groups, in).eps(o.eps)));
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1)));
  if (o.temb_channels > 0) time_emb_proj = register_module("time_emb_proj", torch::nn::Linear(o.temb_channels, out));
  norm2 = register_module("norm2", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.groups, out).eps(o.eps)));
  conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1)));
  if (in != out) conv_shortcut = register_module("conv_shortcut", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
}

at::Tensor ResnetBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb) {
  at::Tensor h = conv2d(group_norm_silu(norm1, x), conv1);
  if (time_emb_proj && temb.defined()) h = h + time_emb_proj(at::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  h = conv2d(group_norm_silu(norm2, h), conv2);
  const at::Tensor shortcut = conv_shortcut ? conv2d(x, conv_shortcut) : x;
  at::Tensor out = shortcut + h;
  if (options.output_scale_factor != 1.0) out = out / options.output_scale_factor;
  return out;
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t out_channels, int64_t padding_) : padding(padding_) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, out_channels, 3).stride(2).padding(padding)));
}

at::Tensor Downsample2DImpl::forward(const at::Tensor& x) {
  if (padding == 0) return conv2d(at::constant_pad_nd(x, {0, 1, 0, 1}, 0), conv);
  return conv2d(x, conv);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels, int64_t out_channels) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, out_channels, 3).padding(1)));
}

at::Tensor Upsample2DImpl::forward(const at::Tensor& x, std::optional<std::vector<int64_t>> output_size) {
  auto o = F::InterpolateFuncOptions().mode(torch::kNearest);
  if (output_size) o.size(*output_size);
  else o.scale_factor(std::vector<double>{2.0, 2.0});
  return conv2d(F::interpolate(x, o), conv);
}

}  // namespace genvis::nn
