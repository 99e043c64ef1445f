// Transformer2DModel (continuous input) with BasicTransformerBlock, diffusers names:
// norm, proj_in, transformer_blocks.N.{norm1,attn1,norm2,attn2,norm3,ff.net.0.proj,ff.net.2}, proj_out.
//
//   genvis::nn::Transformer2DModel t({.num_attention_heads = 8, .attention_head_dim = 40, .in_channels = 320,
//                                     .cross_attention_dim = 768});
//   at::Tensor y = t(x /*[B,320,H,W]*/, context /*[B,77,768]*/);   // [B,320,H,W]
#pragma once
#include "nn/attention.h"

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <vector>

namespace genvis::nn {

// proj (Linear dim -> 2*inner) -> chunk(2) -> a * gelu_erf(b).
class GEGLUImpl : public torch::nn::Module {
public:
  GEGLUImpl(int64_t dim_in, int64_t dim_out);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

// net.0 = GEGLU(dim, 4*dim), net.1 = Dropout (no weights), net.2 = Linear(4*dim, dim).
class FeedForwardImpl : public torch::nn::Module {
public:
  FeedForwardImpl(int64_t dim, int64_t mult = 4);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::ModuleList net;
  GEGLU geglu{nullptr};
  torch::nn::Linear out{nullptr};
};
TORCH_MODULE(FeedForward);

// x += attn1(norm1(x)); x += attn2(norm2(x), context); x += ff(norm3(x)). LayerNorm eps 1e-5.
class BasicTransformerBlockImpl : public torch::nn::Module {
public:
  BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t cross_attention_dim);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& encoder_hidden_states);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

struct Transformer2DOptions {
  int64_t num_attention_heads = 8;
  int64_t attention_head_dim = 64;
  int64_t in_channels = 0;
  int64_t num_layers = 1;
  int64_t cross_attention_dim = 0;
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-6;           // the GroupNorm; diffusers hard-codes 1e-6 here
  bool use_linear_projection = false;  // false: 1x1 conv proj_in/proj_out (SD1)
};

// GroupNorm -> proj_in -> blocks over [B,HW,inner] -> proj_out, plus the input.
class Transformer2DModelImpl : public torch::nn::Module {
public:
  explicit Transformer2DModelImpl(const Transformer2DOptions& options);
  at::Tensor forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states);

  Transformer2DOptions options;
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d proj_in_conv{nullptr}, proj_out_conv{nullptr};
  torch::nn::Linear proj_in_linear{nullptr}, proj_out_linear{nullptr};
  torch::nn::ModuleList transformer_blocks;
  std::vector<BasicTransformerBlock> blocks;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace genvis::nn
