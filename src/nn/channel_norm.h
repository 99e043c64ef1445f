// The L2 ("RMS") norm over channels of a [B,C,...] tensor, optionally followed by SiLU, as one
// CPU kernel: Wan's VAE normalises every activation this way before its SiLU and convolution.
//
//   at::Tensor h = genvis::nn::channel_l2_norm(x /*[B,C,T,H,W]*/, gamma * std::sqrt(C), /*silu=*/true);
//
// libtorch runs it as a vector norm, a clamp, a division, a multiplication and a SiLU, each a
// pass with a fresh tensor (in bf16 each rounded to bf16): a quarter of the bf16 VAE decode's
// time at 256x256. The kernel reads x twice and writes once, computing in f32. Used for
// f32/bf16 CPU tensors on AVX-512 CPUs without gradients; the libtorch expression
// otherwise.
#pragma once
#include <ATen/ATen.h>

namespace genvis::nn {

// x / max(||x||_2 over dim 1, eps) * weight, then SiLU when `silu`; weight has C elements
// (any shape, e.g. [C,1,1,1]). In x's dtype.
at::Tensor channel_l2_norm(const at::Tensor& x, const at::Tensor& weight, bool silu, double eps = 1e-12);

}  // namespace genvis::nn
