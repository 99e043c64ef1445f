// Scaled dot-product attention, a fast linear, and the diffusers `Attention` module
// (to_q/to_k/to_v/to_out.0).
//
//   genvis::nn::Attention attn({.query_dim = 320, .cross_attention_dim = 768, .heads = 8, .dim_head = 40});
//   at::Tensor y = attn(x /*[B,N,320]*/, context /*[B,T,768]*/);   // [B,N,320]
//
// On the CPU the score matrix is computed a block of queries at a time, so the [B*H,N,T] tensor
// never exists whole (at 512x512, SD1.5's first self-attention would need 1 GiB in f32).
#pragma once
#include <optional>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace genvis::nn {

// x [...,K] weight [N,K] bias [N] or undefined -> [...,N], as torch::nn::functional::linear.
// Pitfall: a Debian libtorch 1.13 does f32 matmuls in the system BLAS, by default the netlib
// reference one (~2 GFLOP/s); f32 on the CPU therefore runs through oneDNN (a 1x1 convolution on
// channels-last views: no copies) when libtorch has oneDNN and not MKL. Other dtypes and
// devices, and anything that needs gradients, use at::linear.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});
at::Tensor linear(const at::Tensor& x, const torch::nn::Linear& layer);

// softmax(q k^T * scale + bias) v per head on the projections' own layout: q [B,N,H*D], k/v
// [B,T,H*D] -> [B,N,H*D]; scale default 1/sqrt(D); bias (optional) any float tensor that
// broadcasts to [B,H,N,T], added to the scaled scores in f32 (T5's relative position bias
// [1,H,N,T] plus a key padding mask [B,1,1,T] of large negatives). On the CPU (inference, f32/bf16):
// bf16 on AVX-512 BF16 in one pass over the keys (nothing of size N x T stored; its two products
// on AMX tiles where the CPU has them), else blocks of queries (scores [block,H,T] only) with
// oneDNN matmuls; otherwise scaled_dot_product_attention.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     std::optional<double> scale = std::nullopt, const at::Tensor& bias = {});

// Which CPU kernel attention() uses for inference in `dtype` on this machine: "amx-bf16" (the
// one-pass kernel on AMX tiles; GENVIS_NO_AMX=1 turns it off), "avx512-bf16", "onednn" or
// "reference". For benchmark reports and test logs.
const char* cpu_attention_kernel(at::ScalarType dtype);

// q [B,H,N,D], k/v [B,H,T,D] -> [B,H,N,D]; the same computation on split heads. libtorch >= 2.1:
// at::scaled_dot_product_attention (bias as its float attn_mask, in q's dtype).
at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        std::optional<double> scale = std::nullopt, const at::Tensor& bias = {});

// [B,N,H*D] -> [B,H,N,D] and back.
at::Tensor split_heads(const at::Tensor& x, int64_t heads);
at::Tensor merge_heads(const at::Tensor& x);

struct AttentionOptions {
  int64_t query_dim = 0;
  int64_t cross_attention_dim = 0;  // 0: self-attention (keys/values from query_dim)
  int64_t heads = 8;
  int64_t dim_head = 64;
  bool bias = false;                // to_q/to_k/to_v bias (to_out.0 always has one)
  int64_t norm_num_groups = 0;      // >0: group_norm over channels first (VAE mid block)
  double eps = 1e-5;
  bool residual_connection = false;
};

class AttentionImpl : public torch::nn::Module {
public:
  explicit AttentionImpl(const AttentionOptions& options);
  // hidden_states [B,N,C] or [B,C,H,W] (returned in the same layout).
  at::Tensor forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states = {});

  AttentionOptions options;
  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out;  // "0": Linear (diffusers' "1" is a parameterless Dropout)
  torch::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(Attention);

}  // namespace genvis::nn
