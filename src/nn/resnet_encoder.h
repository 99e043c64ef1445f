// A small convolutional image encoder out of diffusers' ResNet parts: conv_in, one level per
// entry of block_out_channels (layers_per_block ResnetBlock2D, then a stride-2 Downsample2D on
// every level but the last), norm_out + SiLU. Used by genvis' own judges and encoders (the
// contrastive encoder's image tower, DAMSM's image encoder). Key names: conv_in,
// down_blocks.N.resnets.M, down_blocks.N.downsamplers.0, norm_out.
//
//   genvis::nn::ResnetEncoder2D enc({.block_out_channels = {32, 64, 128}, .groups = 8});
//   at::Tensor pooled = enc(x);                    // [B,3,S,S] -> [B,128]: mean over space
//   auto f = enc->run(x);                          // f.levels[1]: [B,64,S/2,S/2] (before its downsampler)
#pragma once
#include "nn/resnet.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <vector>

namespace genvis::nn {

struct ResnetEncoder2DOptions {
  int64_t in_channels = 3;
  std::vector<int64_t> block_out_channels;
  int64_t layers_per_block = 1;
  int64_t groups = 8;
};

// One resolution level: `layers` ResNet blocks, then a stride-2 conv when `downsample`.
class ResnetDownBlock2DImpl : public torch::nn::Module {
public:
  ResnetDownBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t layers, int64_t groups, bool downsample);
  at::Tensor resnets_forward(at::Tensor x);  // the level's features, before the downsampler
  at::Tensor downsample(at::Tensor x);        // identity on the last level
  at::Tensor forward(const at::Tensor& x) { return downsample(resnets_forward(x)); }

  torch::nn::ModuleList resnets{nullptr};       // of ResnetBlock2D
  torch::nn::ModuleList downsamplers{nullptr};  // of Downsample2D (empty on the last level)
};
TORCH_MODULE(ResnetDownBlock2D);

class ResnetEncoder2DImpl : public torch::nn::Module {
public:
  explicit ResnetEncoder2DImpl(const ResnetEncoder2DOptions& options);

  struct Features {
    std::vector<at::Tensor> levels;  // per level [B,C_i,S/2^i,S/2^i], before its downsampler
    at::Tensor last;                 // norm_out + SiLU of the last level [B,C_last,s,s]
  };
  Features run(const at::Tensor& pixel_values);
  // The last level after norm_out + SiLU, averaged over space: [B,C_last].
  at::Tensor forward(const at::Tensor& pixel_values);

  ResnetEncoder2DOptions options;
  torch::nn::Conv2d conv_in{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};  // of ResnetDownBlock2D
  torch::nn::GroupNorm norm_out{nullptr};
};
TORCH_MODULE(ResnetEncoder2D);

}  // namespace genvis::nn
