#include "nn/attention.h"

#include "core/torch_compat.h"

#include <cmath>
#include <torch/torch.h>

namespace genvis::nn {

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        std::optional<double> scale) {
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
#if GENVIS_HAS_SDPA && GENVIS_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false, s);
#else
  const at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) * s;  // [B,H,N,T]
  return at::matmul(scores.softmax(-1), v);
#endif
}

at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  const auto b = x.size(0), n = x.size(1);
  return x.view({b, n, heads, x.size(2) / heads}).transpose(1, 2);
}

at::Tensor merge_heads(const at::Tensor& x) {
  const auto b = x.size(0), h = x.size(1), n = x.size(2), d = x.size(3);
  return x.transpose(1, 2).reshape({b, n, h * d});
}

AttentionImpl::AttentionImpl(const AttentionOptions& o) : options(o) {
  const int64_t inner = o.heads * o.dim_head;
  const int64_t kv_dim = o.cross_attention_dim > 0 ? o.cross_attention_dim : o.query_dim;
  if (o.norm_num_groups > 0)
    group_norm = register_module(
        "group_norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.norm_num_groups, o.query_dim).eps(o.eps)));
  to_q = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(o.query_dim, inner).bias(o.bias)));
  to_k = register_module("to_k", torch::nn::Linear(torch::nn::LinearOptions(kv_dim, inner).bias(o.bias)));
  to_v = register_module("to_v", torch::nn::Linear(torch::nn::LinearOptions(kv_dim, inner).bias(o.bias)));
  out_proj = torch::nn::Linear(inner, o.query_dim);
  to_out = register_module("to_out", torch::nn::ModuleList(out_proj));
}

at::Tensor AttentionImpl::forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states) {
  const at::Tensor residual = hidden_states;
  at::Tensor x = hidden_states;
  const bool spatial = x.dim() == 4;
  int64_t b = 0, c = 0, h = 0, w = 0;
  if (spatial) {
    b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    x = x.view({b, c, h * w}).transpose(1, 2);  // [B,HW,C]
  }
  if (group_norm) x = group_norm(x.transpose(1, 2)).transpose(1, 2);
  const at::Tensor context = encoder_hidden_states.defined() ? encoder_hidden_states : x;
  const at::Tensor q = split_heads(to_q(x), options.heads);
  const at::Tensor k = split_heads(to_k(context), options.heads);
  const at::Tensor v = split_heads(to_v(context), options.heads);
  x = out_proj(merge_heads(scaled_dot_product_attention(q, k, v)));
  if (spatial) x = x.transpose(1, 2).reshape({b, c, h, w});
  if (options.residual_connection) x = x + residual;
  return x;
}

}  // namespace genvis::nn
