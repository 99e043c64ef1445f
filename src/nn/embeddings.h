// Sinusoidal timestep embeddings and the TimestepEmbedding MLP (diffusers names).
//
//   at::Tensor f = genvis::nn::timestep_embedding(t /*[B]*/, 320, /*flip_sin_to_cos=*/true, 0);  // [B,320]
//   genvis::nn::TimestepEmbedding te(320, 1280);  at::Tensor emb = te(f);                         // [B,1280]
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

namespace genvis::nn {

// timesteps [B] (any numeric dtype, fractional allowed) -> float32 [B,dim]:
// freqs = exp(-ln(max_period) * i / (dim/2 - downscale_freq_shift)), args = t * freqs,
// [sin, cos] or [cos, sin] when flip_sin_to_cos; odd dim is zero-padded.
at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                              double downscale_freq_shift, double scale = 1.0, double max_period = 10000.0);

// linear_1 -> SiLU -> linear_2.
class TimestepEmbeddingImpl : public torch::nn::Module {
public:
  TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim);
  at::Tensor forward(const at::Tensor& sample);

  torch::nn::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace genvis::nn
