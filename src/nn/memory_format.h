// Channels-last (NHWC) convolution weights for a module tree.
//
//   genvis::nn::to_channels_last(*vae);   // after loading and casting, before the first forward
//
// A convolution with a channels-last kernel runs in NHWC in oneDNN and writes a channels-last
// result, and GroupNorm, SiLU, adds, cat and nearest upsampling keep that format, so the
// activations of a whole UNet/VAE follow. Worth it on the CPU in bf16: libtorch 1.13's NCHW bf16
// GroupNorm is ~10x slower than its NHWC kernel, and NCHW convolutions pay reorders to and from
// oneDNN's blocked layout on every call (docs/performance.md). Values are unchanged.
#pragma once
#include <torch/nn/module.h>

namespace genvis::nn {

void to_channels_last(torch::nn::Module& module);

}  // namespace genvis::nn
