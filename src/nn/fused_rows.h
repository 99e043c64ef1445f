// Row-wise operations of transformer blocks (adaLN modulation, gated residuals, RMS norm, GELU,
// rotary embedding), each one pass over memory on the CPU.
//
//   at::Tensor h = genvis::nn::layer_norm_scale_shift(x, 1e-6, 1 + scale, shift, at::kBFloat16);
//   x = genvis::nn::add_gated(x, attn_out, gate);   // (x + attn_out * gate) in f32, in x's dtype
//
// As libtorch ops each of these is 3-8 passes with a fresh tensor per pass, and conversions
// between bf16, f32 and (for the rotary embedding) float64: in a bf16 Wan 2.1 block at 1280
// tokens they took longer than the block's linears (docs/performance.md). The kernels compute
// the same operations in the same precision and order; they are used for contiguous f32/bf16 CPU
// tensors on AVX-512 CPUs when no gradient is needed, and the libtorch expressions in the comments
// below otherwise.
#pragma once
#include <ATen/ATen.h>

namespace genvis::nn {

// (layer_norm(x.to(f32), [C], eps) * scale + shift).to(dtype) over the last dim of x [B,N,C] (or
// [N,C]); statistics in f32; scale and shift are f32-convertible and broadcast to [B,1,C]: adaLN
// modulation [B,1,C] (pass 1 + scale), or a LayerNorm's own weight and bias [C].
at::Tensor layer_norm_scale_shift(const at::Tensor& x, double eps, const at::Tensor& scale, const at::Tensor& shift,
                                  at::ScalarType dtype);

// (x.to(f32) + y.to(f32) * gate).to(x.dtype): a gated residual; x, y [B,N,C] (or [N,C]), gate
// broadcasting to [B,1,C].
at::Tensor add_gated(const at::Tensor& x, const at::Tensor& y, const at::Tensor& gate);

// (x.to(f32) * rsqrt(mean(x^2, -1) + eps) * weight.to(f32)).to(x.dtype): RMS norm over the last dim.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// at::gelu(x, "tanh"), in place where the kernel runs (x must not be needed afterwards).
at::Tensor gelu_tanh(at::Tensor x);

// Rotates the consecutive pairs (2i, 2i+1) of every head of x [B,N,H*D] by the angles whose
// (cos, sin) [N, D/2] (float64) are given: (a, b) -> (a cos - b sin, a sin + b cos), in float64
// as the reference's complex128 product, returned in x's dtype.
at::Tensor rotary_pairs(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t heads);

}  // namespace genvis::nn
