// Wan 2.1's diffusion transformer (diffusers WanTransformer3DModel, 0.33 key names): text-to-video
// and, with image_dim/added_kv_proj_dim, image-to-video.
//
//   auto config = genvis::models::WanTransformer3DConfig::from_file("transformer/config.json");
//   genvis::models::WanTransformer3DModel dit(config);
//   at::Tensor v = dit->forward(latents /*[B,16,F,H,W]*/, t /*[B]*/, text /*[B,L,text_dim]*/);  // [B,16,F,H,W]
//   // I2V: latents carry 36 channels (noise 16 + mask 4 + condition 16); pass the CLIP image
//   // encoder's penultimate states [B,257,image_dim] as the fourth argument.
//
// Layout: patch_embedding (Conv3d, kernel = stride = patch_size) -> tokens [B, F'H'W', D] ->
// blocks (adaLN from the timestep: a per-block scale_shift_table [1,6,D] plus time_proj(temb)) ->
// final adaLN (scale_shift_table [1,2,D] + temb) -> proj_out -> unpatchify. Self-attention uses
// RMS-normed q/k over all heads together and a 3-axis rotary embedding (frames, rows, columns)
// rotated in float64 as the reference does; cross-attention reads the projected text (and, for
// I2V, the projected image states through add_k_proj/add_v_proj, summed with the text attention).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <vector>

#include "nn/embeddings.h"

namespace genvis::models {

// Field names and defaults of diffusers' WanTransformer3DModel (the 14B model's).
struct WanTransformer3DConfig {
  std::vector<int64_t> patch_size = {1, 2, 2};
  int64_t num_attention_heads = 40;
  int64_t attention_head_dim = 128;
  int64_t in_channels = 16;
  int64_t out_channels = 16;
  int64_t text_dim = 4096;
  int64_t freq_dim = 256;
  int64_t ffn_dim = 13824;
  int64_t num_layers = 40;
  bool cross_attn_norm = true;
  std::string qk_norm = "rms_norm_across_heads";
  double eps = 1e-6;
  std::optional<int64_t> image_dim;          // I2V: the image encoder's hidden size
  std::optional<int64_t> added_kv_proj_dim;  // I2V: add_k_proj/add_v_proj input size (= inner dim)
  int64_t rope_max_seq_len = 1024;

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  bool is_i2v() const { return added_kv_proj_dim.has_value(); }

  // Every problem at once; empty when usable.
  std::vector<std::string> validate() const;
  // Unknown keys, wrong types and invalid values all in one LoadError naming `source`.
  static WanTransformer3DConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static WanTransformer3DConfig from_file(const std::string& path);
};

// RMSNorm with a weight (torch.nn.RMSNorm), computed in float32: x * rsqrt(mean(x^2) + eps) * weight.
struct WanRMSNormImpl : torch::nn::Module {
  WanRMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);
  double eps;
  at::Tensor weight;
};
TORCH_MODULE(WanRMSNorm);

// diffusers' Attention as Wan uses it: to_q/to_k/to_v/to_out.0 with biases, norm_q/norm_k RMS
// norms over the whole projection (all heads), and for I2V add_k_proj/add_v_proj/norm_added_k.
struct WanAttentionImpl : torch::nn::Module {
  WanAttentionImpl(int64_t dim, int64_t heads, double eps, std::optional<int64_t> added_kv_proj_dim);
  // x [B,N,D]; context [B,T,D] (undefined: self-attention); rope (cos, sin) [N, head_dim/2]
  // float64 or undefined; image [B,I,D] (I2V cross-attention only).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context, const at::Tensor& rope_cos,
                     const at::Tensor& rope_sin, const at::Tensor& image = {});

  int64_t heads;
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out;  // "0": Linear
  WanRMSNorm norm_q{nullptr}, norm_k{nullptr};
  torch::nn::Linear add_k_proj{nullptr}, add_v_proj{nullptr};
  WanRMSNorm norm_added_k{nullptr};
};
TORCH_MODULE(WanAttention);

// diffusers FeedForward's keys: net.0.proj -> GELU (tanh or exact) -> net.2.
struct WanFeedForwardImpl : torch::nn::Module {
  WanFeedForwardImpl(int64_t dim, int64_t inner, int64_t out, bool tanh_gelu);
  at::Tensor forward(const at::Tensor& x);
  bool tanh_gelu;
  torch::nn::Linear proj{nullptr}, out{nullptr};
  torch::nn::ModuleList net;
};
TORCH_MODULE(WanFeedForward);

struct WanTransformerBlockImpl : torch::nn::Module {
  explicit WanTransformerBlockImpl(const WanTransformer3DConfig& config);
  // x [B,N,D]; context [B,L,D]; image [B,I,D] or undefined; modulation [B,6,D] (time_proj(temb)).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context, const at::Tensor& image,
                     const at::Tensor& modulation, const at::Tensor& rope_cos, const at::Tensor& rope_sin);

  double eps;
  WanAttention attn1{nullptr}, attn2{nullptr};
  torch::nn::LayerNorm norm2{nullptr};  // cross_attn_norm (affine); null otherwise
  WanFeedForward ffn{nullptr};
  at::Tensor scale_shift_table;  // [1,6,D]
};
TORCH_MODULE(WanTransformerBlock);

// text_embedder: linear_1 -> tanh GELU -> linear_2 (PixArtAlphaTextProjection).
struct WanTextProjectionImpl : torch::nn::Module {
  WanTextProjectionImpl(int64_t in, int64_t dim);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(WanTextProjection);

// image_embedder (I2V): LayerNorm (affine, eps 1e-5) -> Linear -> exact GELU -> Linear -> LayerNorm.
struct WanImageEmbeddingImpl : torch::nn::Module {
  WanImageEmbeddingImpl(int64_t in, int64_t dim);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  WanFeedForward ff{nullptr};
};
TORCH_MODULE(WanImageEmbedding);

// condition_embedder.*: the timestep's sinusoid (cos first) -> time_embedder -> temb [B,D], and
// time_proj(silu(temb)) [B,6D]; text_embedder; image_embedder (I2V).
struct WanConditionEmbedderImpl : torch::nn::Module {
  explicit WanConditionEmbedderImpl(const WanTransformer3DConfig& config);
  int64_t freq_dim;
  nn::TimestepEmbedding time_embedder{nullptr};
  torch::nn::Linear time_proj{nullptr};
  WanTextProjection text_embedder{nullptr};
  WanImageEmbedding image_embedder{nullptr};
};
TORCH_MODULE(WanConditionEmbedder);

// First-block cache (the FBCache of ParaAttention, with TeaCache's idea of a cheap indicator):
// across adjacent sampling steps, when the first block's residual has changed by less than
// `threshold` (mean |r - r_full| / mean |r_full|, r_full the residual at the last full pass), the
// other blocks are skipped and their residual at the last full pass is added instead. One cache per
// sequence of calls with the same conditioning (Wan's cond and uncond passes each keep their own).
struct WanBlockCache {
  double threshold = 0;
  at::Tensor first_residual, rest_residual;  // at the last full pass
  int64_t full = 0, cached = 0;               // passes of each kind so far
};

class WanTransformer3DModelImpl : public torch::nn::Module {
public:
  explicit WanTransformer3DModelImpl(const WanTransformer3DConfig& config);
  // hidden_states [B,in_channels,F,H,W] (F, H, W divisible by patch_size); timestep [B] or [1]
  // (float or integer); encoder_hidden_states [B,L,text_dim]; image [B,I,image_dim] for I2V.
  // -> [B,out_channels,F,H,W]. UsageError for wrong shapes or a missing/unexpected image.
  at::Tensor forward(const at::Tensor& hidden_states, const at::Tensor& timestep,
                     const at::Tensor& encoder_hidden_states, const at::Tensor& image = {},
                     WanBlockCache* cache = nullptr);

  // The rotary tables (cos, sin) [F'H'W', head_dim/2] float64 for a latent of F x H x W.
  std::pair<at::Tensor, at::Tensor> rotary(int64_t frames, int64_t height, int64_t width) const;

  WanTransformer3DConfig config;
  torch::nn::Conv3d patch_embedding{nullptr};
  WanConditionEmbedder condition_embedder{nullptr};
  torch::nn::ModuleList blocks;
  at::Tensor scale_shift_table;  // [1,2,D]
  torch::nn::Linear proj_out{nullptr};
};
TORCH_MODULE(WanTransformer3DModel);

// A Wan 2.1 transformer in any published layout, weights cast to `dtype` (bf16/f16/f32 files;
// safetensors are memory-mapped), strict, in eval mode:
//  - a diffusers transformer/ folder: config.json + diffusion_pytorch_model*.safetensors;
//  - a Wan release folder (Wan-AI/Wan2.1-T2V-1.3B, ...): config.json with "_class_name": "WanModel"
//    + diffusion_pytorch_model.safetensors (or its sharded index) with the original key names
//    (wan_original_keys.h); sizes from config.json, the rest read off the shapes;
//  - one weight file with the original key names, optionally under "model.diffusion_model."
//    (ComfyUI's repackaged diffusion_models/wan2.1_*.safetensors): every size read off the shapes,
//    heads 128 wide.
// `overrides` (WanTransformer3DModel config keys, e.g. {"num_attention_heads": 12}) are merged
// last. LoadError naming the file and the key (a missing, unexpected or wrongly-shaped tensor, an
// unknown layout).
WanTransformer3DModel load_wan_transformer(const std::string& path, at::ScalarType dtype = at::kFloat,
                                           const nlohmann::json& overrides = nlohmann::json::object());

}  // namespace genvis::models
