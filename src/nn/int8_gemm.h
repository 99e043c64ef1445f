// int8 matrix products for quantised inference (`--quant int8`, issue 21): weights in int8 with
// one scale per output channel, activations quantised on the fly (symmetric int8: per row for
// linears, one scale per tensor for convolutions), products summed in int32 and scaled, biased and
// written back in the input's dtype (f32 or bf16) while each 32 x 32 block of the result is still
// in L1.
//
//   auto w = genvis::nn::int8::quantize_weight(layer->weight);   // once, at load
//   at::Tensor y = genvis::nn::int8::linear(x, w, layer->bias);  // ~ at::linear(x, weight, bias)
//
// Kernels, chosen at run time on the CPU's features: AMX-INT8 tiles (`tdpbssd`, Intel Sapphire
// Rapids and later), AVX-512 VNNI (`vpdpbusd`, Intel Ice Lake / AMD Zen 4 and later), and a
// portable reference (the same quantisation and packing, int32 sums in plain loops) everywhere
// else. All three give the same int32 sums (the reference also quantises and scales in portable
// scalar code, as on CPUs without AVX-512); `GENVIS_INT8_KERNEL=reference|vnni|amx` picks one (for
// comparisons; an unsupported choice is an error).
#pragma once
#include <ATen/ATen.h>
#include <cstdint>
#include <optional>
#include <string>

namespace genvis::nn::int8 {

// One layer's weight as the kernels read it.
struct PackedWeight {
  int64_t n = 0, k = 0;  // output channels, reduction length
  int64_t kp = 0;        // k rounded up to 64 (a tile row)
  int64_t np = 0;        // n rounded up to 32 (two tiles)
  at::Tensor scale;      // f32 [np] (zeros past n)
  at::Tensor packed;     // int8 [np/16][kp/4][16][4]: 16 columns x 4 consecutive k per 64 bytes, zeros beyond n and k
  at::Tensor col_sum;    // int32 [np]: sum over k of q (the VNNI kernel's unsigned-activation correction)
  int64_t geglu_half = 0;  // > 0: packed by interleave_geglu for linear_geglu (this many outputs)
};

// Symmetric per-output-channel quantisation of a [n, k] weight (any floating dtype): scale =
// max |row| / 127 (a zero row gets scale 0), q = round-half-even(w / scale).
PackedWeight quantize_weight(const at::Tensor& weight);
// The same from stored values: q int8 [n, k], scale f32 [n] (UsageError on other shapes/dtypes).
PackedWeight pack_weight(const at::Tensor& q, const at::Tensor& scale);
// The quantised rows back out of the packing: int8 [n, k] (q[i] * scale[i] ~ the weight's row i).
at::Tensor unpack(const PackedWeight& w);

// x [..., k] (f32 or bf16, CPU) -> [..., n] in x's dtype: each row of x quantised with its own scale
// (max |row| / 127), y = (x_q . w_q) * sx * sw + bias. bias: f32/bf16 [n] or undefined. The
// quantised x is kept (one entry per thread) for the next call with the same, unchanged x: the
// q/k/v projections of one input quantise it once.
at::Tensor linear(const at::Tensor& x, const PackedWeight& w, const at::Tensor& bias);
// GEGLU (diffusers' feed-forward): y = h * gelu(g), [h, g] = x . w^T + bias cut in halves along the
// outputs, in one pass: the value and gate rows are interleaved 16 at a time (interleave_geglu, once
// per layer) so that every 32-column block holds matching halves, and the epilogue writes h *
// gelu(g) (exact GELU, erf within 1.5e-7) without the [.., 2 * half] product ever being stored.
// bias in the layer's order ([2 * half]). Returns [..., half].
PackedWeight interleave_geglu(const PackedWeight& w);
at::Tensor linear_geglu(const at::Tensor& x, const PackedWeight& w, const at::Tensor& bias);
// Forgets this thread's kept quantised input (and drops its reference to the input tensor).
void clear_input_cache();

struct ConvGeometry {
  int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};
// A conv weight [O, C, kh, kw] as the rows conv2d's products read: [O, kh * kw * C].
at::Tensor conv_weight_rows(const at::Tensor& weight);
// 2-D convolution (groups 1, dilation 1, zero padding) of x [B, C, H, W] (f32 or bf16, CPU, any
// memory format) with a weight packed from conv_weight_rows: x quantised with one scale (max |x| /
// 127), the im2col rows built in int8 block by block inside the product (never materialised).
// Returns [B, O, OH, OW] in x's dtype, channels-last in memory.
at::Tensor conv2d(const at::Tensor& x, const PackedWeight& w, const at::Tensor& bias, const ConvGeometry& g);

enum class Kernel { Reference, Vnni, Amx };
// The kernel in use: GENVIS_INT8_KERNEL if set, else the fastest the CPU supports.
Kernel kernel();
bool supported(Kernel k);
std::string kernel_name(Kernel k);
// Tests and benchmarks: use `k` from now on (nullopt: back to kernel()'s choice). UsageError when
// the CPU lacks it.
void set_kernel(std::optional<Kernel> k);

}  // namespace genvis::nn::int8
