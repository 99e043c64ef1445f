#include "nn/resnet_encoder.h"

#include "nn/group_norm_silu.h"

#include <torch/torch.h>

namespace genvis::nn {

ResnetDownBlock2DImpl::ResnetDownBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t layers, int64_t groups,
                                             bool downsample) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i)
    resnets->push_back(ResnetBlock2D(ResnetBlock2DOptions{
        .in_channels = i == 0 ? in_channels : out_channels, .out_channels = out_channels, .groups = groups}));
  downsamplers = register_module("downsamplers", torch::nn::ModuleList());
  if (downsample) downsamplers->push_back(Downsample2D(out_channels, out_channels, /*padding=*/1));
}

at::Tensor ResnetDownBlock2DImpl::resnets_forward(at::Tensor x) {
  for (const auto& m : *resnets) x = m->as<ResnetBlock2DImpl>()->forward(x);
  return x;
}

at::Tensor ResnetDownBlock2DImpl::downsample(at::Tensor x) {
  for (const auto& m : *downsamplers) x = m->as<Downsample2DImpl>()->forward(x);
  return x;
}

ResnetEncoder2DImpl::ResnetEncoder2DImpl(const ResnetEncoder2DOptions& o) : options(o) {
  const auto& ch = o.block_out_channels;
  TORCH_CHECK(!ch.empty(), "ResnetEncoder2D: block_out_channels must not be empty");
  conv_in = register_module("conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in_channels, ch.front(), 3).padding(1)));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < ch.size(); ++i)
    down_blocks->push_back(
        ResnetDownBlock2D(i == 0 ? ch.front() : ch[i - 1], ch[i], o.layers_per_block, o.groups, i + 1 < ch.size()));
  norm_out = register_module("norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.groups, ch.back())));
}

ResnetEncoder2DImpl::Features ResnetEncoder2DImpl::run(const at::Tensor& pixel_values) {
  Features f;
  at::Tensor h = conv_in(pixel_values);
  for (const auto& m : *down_blocks) {
    auto* block = m->as<ResnetDownBlock2DImpl>();
    f.levels.push_back(block->resnets_forward(h));
    h = block->downsample(f.levels.back());
  }
  f.last = group_norm_silu(norm_out, h);
  return f;
}

at::Tensor ResnetEncoder2DImpl::forward(const at::Tensor& pixel_values) {
  return run(pixel_values).last.mean({2, 3});
}

}  // namespace genvis::nn
