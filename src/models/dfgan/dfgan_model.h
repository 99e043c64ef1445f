// The modules of DF-GAN (Tao et al. 2022) with the official code's key names (models/GAN.py:
// NetG, NetD, NetC), so its checkpoints map name for name:
//   generator:     fc, GBlocks.N.{fuse1,fuse2}.{affine0,affine1}.{fc_gamma,fc_beta}.{linear1,linear2},
//                  GBlocks.N.{c1,c2,c_sc}, to_rgb.1
//   discriminator: conv_img, DBlocks.N.{conv_r.0, conv_r.2, conv_s, gamma}
//   matcher (NetC): joint_conv.0, joint_conv.2
// (the official D_Block creates conv_s on every block and uses it where channels change; here it
// exists only where it is used).
//
//   DFGANGenerator g(config);
//   at::Tensor images = g(z /*[B,z_dim]*/, sentence /*[B,cond_dim]*/);  // [B,3,S,S] in [-1,1]
//   DFGANDiscriminator d(config);
//   at::Tensor logits = d->score(d(images), sentence);                   // [B]
#pragma once
#include "models/dfgan/dfgan_config.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace genvis::models {

// x * gamma(y) + beta(y), per channel; gamma and beta are two-layer MLPs (linear1, ReLU, linear2)
// whose last layer starts at zero weights (gamma bias 1, beta bias 0): the identity at init.
struct DFGANAffineMLPImpl : torch::nn::Module {
  DFGANAffineMLPImpl(int64_t cond_dim, int64_t channels, double bias);
  at::Tensor forward(const at::Tensor& y);
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
};
TORCH_MODULE(DFGANAffineMLP);

struct DFGANAffineImpl : torch::nn::Module {
  DFGANAffineImpl(int64_t cond_dim, int64_t channels);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
  DFGANAffineMLP fc_gamma{nullptr}, fc_beta{nullptr};
};
TORCH_MODULE(DFGANAffine);

// The deep fusion block: affine0, LeakyReLU(0.2), affine1, LeakyReLU(0.2).
struct DFGANFusionImpl : torch::nn::Module {
  DFGANFusionImpl(int64_t cond_dim, int64_t channels);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
  DFGANAffine affine0{nullptr}, affine1{nullptr};
};
TORCH_MODULE(DFGANFusion);

// Nearest x2, then shortcut (1x1 c_sc where channels change) + fuse1, c1, fuse2, c2.
struct DFGANGeneratorBlockImpl : torch::nn::Module {
  DFGANGeneratorBlockImpl(int64_t cond_dim, int64_t in_channels, int64_t out_channels);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
  DFGANFusion fuse1{nullptr}, fuse2{nullptr};
  torch::nn::Conv2d c1{nullptr}, c2{nullptr}, c_sc{nullptr};
};
TORCH_MODULE(DFGANGeneratorBlock);

struct DFGANGeneratorImpl : torch::nn::Module {
  explicit DFGANGeneratorImpl(const DFGANConfig& config);
  // z [B,z_dim], sentence [B,cond_dim] -> images [B,3,S,S] in [-1,1].
  at::Tensor forward(const at::Tensor& z, const at::Tensor& sentence);

  DFGANConfig config;
  torch::nn::Linear fc{nullptr};
  torch::nn::ModuleList GBlocks{nullptr};  // of DFGANGeneratorBlock
  torch::nn::ModuleList to_rgb{nullptr};   // [LeakyReLU, Conv2d 3x3 -> 3] (then tanh)
};
TORCH_MODULE(DFGANGenerator);

// Residual downsampling: x (1x1 conv_s where channels change, then 2x2 average pool) + gamma *
// conv_r(x) (4x4 stride-2 conv, LeakyReLU, 3x3 conv, LeakyReLU; no biases); gamma starts at 0.
struct DFGANDiscriminatorBlockImpl : torch::nn::Module {
  DFGANDiscriminatorBlockImpl(int64_t in_channels, int64_t out_channels);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::ModuleList conv_r{nullptr};
  torch::nn::Conv2d conv_s{nullptr};
  at::Tensor gamma;
};
TORCH_MODULE(DFGANDiscriminatorBlock);

// The official NetD (image -> features [B,8*ndf,4,4]) and NetC (the one-way output: features
// with the sentence vector tiled to 4x4, 3x3 conv, LeakyReLU, 4x4 conv -> one logit) as one
// module, since they train as one: NetC's joint_conv sits beside conv_img and DBlocks.
struct DFGANDiscriminatorImpl : torch::nn::Module {
  explicit DFGANDiscriminatorImpl(const DFGANConfig& config);
  at::Tensor forward(const at::Tensor& images);  // [B,3,S,S] -> [B,C,4,4] (C = 8*ndf from 64 px up)
  // Features [B,C,4,4] and sentence [B,cond_dim] -> [B] logits.
  at::Tensor score(const at::Tensor& features, const at::Tensor& sentence);

  DFGANConfig config;
  torch::nn::Conv2d conv_img{nullptr};
  torch::nn::ModuleList DBlocks{nullptr};     // of DFGANDiscriminatorBlock
  torch::nn::ModuleList joint_conv{nullptr};  // [Conv2d 3x3, LeakyReLU, Conv2d 4x4]
};
TORCH_MODULE(DFGANDiscriminator);

}  // namespace genvis::models
