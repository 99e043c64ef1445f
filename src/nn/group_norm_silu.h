// SiLU(GroupNorm(x)) as one CPU kernel: the norm -> activation pair of ResnetBlock2D and of the
// UNet's and VAE's output heads.
//
//   at::Tensor h = genvis::nn::group_norm_silu(norm1, x);   // == at::silu(norm1(x))
//
// libtorch 1.13 spends more time in SiLU than in GroupNorm on the CPU (~0.35 G elements/s per
// core, bf16 or f32), and each op writes a fresh tensor; the fused kernel reads x twice and
// writes once. Used for f32/bf16 CPU tensors (NCHW or channels-last) on AVX-512 CPUs when no
// gradient is needed; otherwise, and on other devices, it is at::silu(norm(x)).
#pragma once
#include <torch/nn/modules/normalization.h>

namespace genvis::nn {

at::Tensor group_norm_silu(torch::nn::GroupNorm& norm, const at::Tensor& x);

// norm(x), in the weights' dtype when x's differs: under bf16 autocast (training) the
// convolutions return bf16 while the norms keep f32 weights, and libtorch's group_norm refuses
// mixed dtypes. Norms compute in f32 there, as autocast's policy for normalisation asks.
at::Tensor group_norm(torch::nn::GroupNorm& norm, const at::Tensor& x);

}  // namespace genvis::nn
