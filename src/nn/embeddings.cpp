#include "nn/embeddings.h"

#include <cmath>
#include <torch/torch.h>

namespace genvis::nn {

at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                              double downscale_freq_shift, double scale, double max_period) {
  const int64_t half = dim / 2;
  const auto f32 = timesteps.options().dtype(at::kFloat);
  // Same float32 op order as diffusers: exponent = -ln(P) * arange / (half - shift).
  at::Tensor exponent = at::arange(0, half, f32) * static_cast<float>(-std::log(max_period));
  exponent = exponent / static_cast<float>(half - downscale_freq_shift);
  at::Tensor args = timesteps.reshape({-1, 1}).to(at::kFloat) * exponent.exp().unsqueeze(0);  // [B,half]
  args = args * static_cast<float>(scale);
  at::Tensor emb = flip_sin_to_cos ? at::cat({args.cos(), args.sin()}, -1) : at::cat({args.sin(), args.cos()}, -1);
  if (dim % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1});
  return emb;
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim) {
  linear_1 = register_module("linear_1", torch::nn::Linear(in_channels, time_embed_dim));
  linear_2 = register_module("linear_2", torch::nn::Linear(time_embed_dim, time_embed_dim));
}

at::Tensor TimestepEmbeddingImpl::forward(const at::Tensor& sample) {
  return linear_2(at::silu(linear_1(sample)));
}

}  // namespace genvis::nn
