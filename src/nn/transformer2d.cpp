#include "nn/transformer2d.h"

#include "nn/lora.h"
#include "nn/quantize.h"
#include "nn/group_norm_silu.h"

#include <torch/torch.h>

namespace genvis::nn {
namespace {

// libtorch 1.13's bf16 LayerNorm on the CPU is ~5x slower than converting to f32 and back
// (docs/performance.md); other dtypes and devices use the module as is.
at::Tensor layer_norm(torch::nn::LayerNorm norm, const at::Tensor& x) {
  if (x.scalar_type() != at::kBFloat16 || !x.device().is_cpu()) return norm(x);
  const auto& o = norm->options;
  return at::layer_norm(x.to(at::kFloat), o.normalized_shape(), norm->weight.to(at::kFloat), norm->bias.to(at::kFloat), o.eps())
      .to(x.scalar_type());
}

}  // namespace

GEGLUImpl::GEGLUImpl(int64_t dim_in, int64_t dim_out) {
  proj = register_module("proj", torch::nn::Linear(dim_in, dim_out * 2));
}

at::Tensor GEGLUImpl::forward(const at::Tensor& x) {
  // int8 (--quant int8): the projection and h * gelu(g) in one pass, on the projection's int8 copy,
  // which quantize_int8 packed for it (nn::linear takes the float weight for this layer).
  if (Int8LayerImpl* q = int8_layer(*proj);
      q && q->weight.geglu_half > 0 && int8_applies(x, proj->weight) && lora_adapters(*proj).empty()) {
    q->calls.fetch_add(1, std::memory_order_relaxed);
    return int8::linear_geglu(x, q->weight, proj->bias);
  }
  const auto parts = linear(x, proj).chunk(2, -1);
  return parts[0] * at::gelu(parts[1].contiguous());  // gelu on the strided half is ~3x slower in bf16
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
  geglu = GEGLU(dim, dim * mult);
  out = torch::nn::Linear(dim * mult, dim);
  net = register_module("net", torch::nn::ModuleList(geglu, torch::nn::Dropout(0.0), out));
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) { return linear(geglu(x), out); }

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim,
                                                     int64_t cross_attention_dim) {
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)); };
  norm1 = register_module("norm1", ln());
  attn1 = register_module("attn1", Attention(AttentionOptions{.query_dim = dim, .heads = heads, .dim_head = head_dim}));
  norm2 = register_module("norm2", ln());
  attn2 = register_module("attn2", Attention(AttentionOptions{.query_dim = dim, .cross_attention_dim = cross_attention_dim,
                                                              .heads = heads, .dim_head = head_dim}));
  norm3 = register_module("norm3", ln());
  ff = register_module("ff", FeedForward(dim));
}

at::Tensor BasicTransformerBlockImpl::forward(const at::Tensor& x_in, const at::Tensor& encoder_hidden_states) {
  at::Tensor x = x_in;
  x = x + attn1(layer_norm(norm1, x));
  x = x + attn2(layer_norm(norm2, x), encoder_hidden_states);
  x = x + ff(layer_norm(norm3, x));
  return x;
}

Transformer2DModelImpl::Transformer2DModelImpl(const Transformer2DOptions& o) : options(o) {
  const int64_t inner = o.num_attention_heads * o.attention_head_dim;
  norm = register_module("norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.norm_num_groups, o.in_channels).eps(o.norm_eps)));
  if (o.use_linear_projection) proj_in_linear = register_module("proj_in", torch::nn::Linear(o.in_channels, inner));
  else proj_in_conv = register_module("proj_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in_channels, inner, 1)));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    blocks.push_back(BasicTransformerBlock(inner, o.num_attention_heads, o.attention_head_dim, o.cross_attention_dim));
    transformer_blocks->push_back(blocks.back());
  }
  if (o.use_linear_projection) proj_out_linear = register_module("proj_out", torch::nn::Linear(inner, o.in_channels));
  else proj_out_conv = register_module("proj_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(inner, o.in_channels, 1)));
}

at::Tensor Transformer2DModelImpl::forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states) {
  const auto b = hidden_states.size(0), h = hidden_states.size(2), w = hidden_states.size(3);
  at::Tensor x = group_norm(norm, hidden_states);
  if (proj_in_conv) x = conv1x1(x, proj_in_conv);
  const auto inner = x.size(1);
  x = x.permute({0, 2, 3, 1}).reshape({b, h * w, inner});  // [B,HW,C]
  if (proj_in_linear) x = linear(x, proj_in_linear);
  for (auto& block : blocks) x = block(x, encoder_hidden_states);
  if (proj_out_linear) x = linear(x, proj_out_linear);
  x = x.reshape({b, h, w, -1}).permute({0, 3, 1, 2}).contiguous(hidden_states.suggest_memory_format());  // [B,C,H,W]
  if (proj_out_conv) x = conv1x1(x, proj_out_conv);
  return x + hidden_states;
}

}  // namespace genvis::nn
