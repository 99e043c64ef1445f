// The UNet2DConditionModel blocks, diffusers names: resnets.N, attentions.N, downsamplers.0,
// upsamplers.0. One class per role; `has_attention` picks CrossAttn* vs plain.
#pragma once
#include "nn/resnet.h"
#include "nn/transformer2d.h"

#include <optional>
#include <torch/nn/modules/container/modulelist.h>
#include <vector>

namespace genvis::models {

struct UNetBlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t prev_output_channel = 0;  // up blocks: channels coming from the block below
  int64_t temb_channels = 0;
  int64_t num_layers = 1;
  bool has_attention = false;
  int64_t transformer_layers = 1;
  int64_t num_attention_heads = 8;
  int64_t cross_attention_dim = 0;
  int64_t groups = 32;
  double eps = 1e-5;
  double output_scale_factor = 1.0;
  bool use_linear_projection = false;
  bool add_downsample = false;
  bool add_upsample = false;
  int64_t downsample_padding = 1;
};

// CrossAttnDownBlock2D / DownBlock2D. Appends each resnet(+attention) output and the
// downsampled output to `skips`.
class UNetDownBlockImpl : public torch::nn::Module {
public:
  explicit UNetDownBlockImpl(const UNetBlockOptions& options);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context,
                     std::vector<at::Tensor>& skips);

  torch::nn::ModuleList resnets, attentions, downsamplers;
  std::vector<nn::ResnetBlock2D> resnet_list;
  std::vector<nn::Transformer2DModel> attention_list;
  nn::Downsample2D downsampler{nullptr};
};
TORCH_MODULE(UNetDownBlock);

// UNetMidBlock2DCrossAttn: resnets.0, then (attentions.i, resnets.i+1).
class UNetMidBlockImpl : public torch::nn::Module {
public:
  explicit UNetMidBlockImpl(const UNetBlockOptions& options);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context);

  torch::nn::ModuleList resnets, attentions;
  std::vector<nn::ResnetBlock2D> resnet_list;
  std::vector<nn::Transformer2DModel> attention_list;
};
TORCH_MODULE(UNetMidBlock);

// CrossAttnUpBlock2D / UpBlock2D: each layer concatenates [x, skips.back()] (current first) and
// pops that skip; the upsampler then matches the spatial size of the next skip (odd sizes).
class UNetUpBlockImpl : public torch::nn::Module {
public:
  explicit UNetUpBlockImpl(const UNetBlockOptions& options);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context,
                     std::vector<at::Tensor>& skips);

  torch::nn::ModuleList resnets, attentions, upsamplers;
  std::vector<nn::ResnetBlock2D> resnet_list;
  std::vector<nn::Transformer2DModel> attention_list;
  nn::Upsample2D upsampler{nullptr};
};
TORCH_MODULE(UNetUpBlock);

}  // namespace genvis::models
