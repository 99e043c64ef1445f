// UMT5 text encoder (transformers' UMT5EncoderModel: Wan 2.1's text encoder, google/umt5-xxl),
// with the transformers key names.
//
//   auto te = genvis::models::load_umt5_encoder("Wan2.1-T2V-1.3B-Diffusers/text_encoder");
//   UMT5EncoderOutput out = te->forward(input_ids, attention_mask);   // int64 [B, S] each
//   at::Tensor context = wan_prompt_embeds(out.last_hidden_state, attention_mask);  // [B, S, d_model]
//
// A T5 v1.1 encoder stack: pre-norm blocks of self-attention and a gated feed-forward, T5's RMS
// norm (no mean, no bias, variance in f32), no 1/sqrt(d_kv) attention scaling, no embedding
// scaling, and, unlike T5 (layer 0's bias shared by all), a relative position bias of its own in
// EVERY block. The padding mask is added on the key axis only, so padded query rows still get
// (non-zero) outputs; Wan's pipeline zeroes them afterwards (wan_prompt_embeds).
#pragma once
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace genvis::io {
class WeightReader;
}

namespace genvis::models {

// transformers' UMT5Config; field names and defaults are its arguments. dense_act_fn and
// is_gated_act are derived from feed_forward_proj (as transformers does, whatever the file says).
struct UMT5Config {
  std::vector<std::string> architectures;
  int64_t vocab_size = 250112;
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t d_ff = 1024;
  int64_t num_layers = 8;
  int64_t num_decoder_layers = 0;  // decoder only; 0 = num_layers
  int64_t num_heads = 6;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double dropout_rate = 0.1;  // training only
  double classifier_dropout = 0.0;
  double layer_norm_epsilon = 1e-6;
  double initializer_factor = 1.0;
  std::string feed_forward_proj = "gated-gelu";  // "gated-gelu" (gelu_new), "gated-relu", "gated-silu"
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;
  int64_t decoder_start_token_id = 0;

  // The feed-forward activation: "gelu_new" (tanh approximation) for "gated-gelu", else the part
  // after "gated-".
  std::string dense_act_fn() const;
  int64_t inner_dim() const { return num_heads * d_kv; }

  // Every problem at once; empty when the config is usable.
  std::vector<std::string> validate() const;
  // Unknown keys (other than transformers' PretrainedConfig ones), wrong types and invalid values
  // are all reported in one LoadError naming `source`.
  static UMT5Config from_json(const nlohmann::json& json, const std::string& source = "");
  static UMT5Config from_file(const std::string& path);
};

struct UMT5EncoderOutput {
  at::Tensor last_hidden_state;           // [B, S, d_model] = final_layer_norm(last block's output)
  // num_layers + 1 x [B, S, d_model]: the embeddings, the outputs of blocks 0 .. n-2, and last the
  // final-normed output (= last_hidden_state): transformers' T5 stacks never return the raw output
  // of the last block.
  std::vector<at::Tensor> hidden_states;
};

// T5's RMS norm: x * rsqrt(mean(x^2) + eps) * weight, the statistics in f32.
struct UMT5LayerNormImpl : torch::nn::Module {
  UMT5LayerNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);

  double eps;
  at::Tensor weight;
};
TORCH_MODULE(UMT5LayerNorm);

struct UMT5AttentionImpl : torch::nn::Module {
  explicit UMT5AttentionImpl(const UMT5Config& config);
  // x [B, S, d_model]; mask_bias [B, 1, 1, S] additive (0 or the f32 minimum) -> [B, S, d_model].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask_bias);
  // [1, heads, S_q, S_k] from relative_attention_bias at each (query, key) pair's bucket.
  at::Tensor compute_bias(int64_t query_length, int64_t key_length);

  int64_t num_heads, d_kv, num_buckets, max_distance;
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};  // [num_buckets, heads]
};
TORCH_MODULE(UMT5Attention);

// layer.0: x + SelfAttention(layer_norm(x)).
struct UMT5LayerSelfAttentionImpl : torch::nn::Module {
  explicit UMT5LayerSelfAttentionImpl(const UMT5Config& config);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask_bias);

  UMT5Attention SelfAttention{nullptr};
  UMT5LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(UMT5LayerSelfAttention);

// wo(act(wi_0 x) * wi_1 x).
struct UMT5DenseGatedActDenseImpl : torch::nn::Module {
  explicit UMT5DenseGatedActDenseImpl(const UMT5Config& config);
  at::Tensor forward(const at::Tensor& x);

  std::string act;
  torch::nn::Linear wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
};
TORCH_MODULE(UMT5DenseGatedActDense);

// layer.1: x + DenseReluDense(layer_norm(x)).
struct UMT5LayerFFImpl : torch::nn::Module {
  explicit UMT5LayerFFImpl(const UMT5Config& config);
  at::Tensor forward(const at::Tensor& x);

  UMT5DenseGatedActDense DenseReluDense{nullptr};
  UMT5LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(UMT5LayerFF);

struct UMT5BlockImpl : torch::nn::Module {
  explicit UMT5BlockImpl(const UMT5Config& config);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask_bias);

  torch::nn::ModuleList layer{nullptr};  // "0": UMT5LayerSelfAttention, "1": UMT5LayerFF
};
TORCH_MODULE(UMT5Block);

// The `encoder.` subtree. Its embed_tokens is the model's `shared` (tied), so it holds none.
struct UMT5StackImpl : torch::nn::Module {
  explicit UMT5StackImpl(const UMT5Config& config);
  torch::nn::ModuleList block{nullptr};  // of UMT5Block
  UMT5LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(UMT5Stack);

struct UMT5EncoderModelImpl : torch::nn::Module {
  explicit UMT5EncoderModelImpl(const UMT5Config& config);
  // input_ids int64 [B, S]; attention_mask [B, S] (1 = token, 0 = padding; undefined = all
  // tokens). Computes in the dtype of the weights.
  UMT5EncoderOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {});

  UMT5Config config;
  torch::nn::Embedding shared{nullptr};  // [vocab_size, d_model] (= encoder.embed_tokens)
  UMT5Stack encoder{nullptr};
};
TORCH_MODULE(UMT5EncoderModel);

// What WanPipeline._get_t5_prompt_embeds does with the encoder output: each sequence keeps its
// first attention_mask.sum() rows and the rest become zeros, up to max_sequence_length rows
// (0: the input's length). last_hidden_state [B, S, C], attention_mask [B, S] -> [B, L, C].
at::Tensor wan_prompt_embeds(const at::Tensor& last_hidden_state, const at::Tensor& attention_mask,
                             int64_t max_sequence_length = 0);

struct UMT5LoadOptions {
  at::ScalarType dtype = at::kFloat;  // weights are cast to this (F16/BF16 files compute in F32)
  at::Device device = at::Device(at::kCPU);
};

// Fills `model` from the transformers tensors under `prefix`. Strict: one LoadError lists every
// missing, unexpected and wrongly-shaped tensor. encoder.embed_tokens.weight (the tied copy some
// files also store) is read as shared.weight when the file has no shared.weight, else ignored.
void load_umt5_encoder_weights(UMT5EncoderModelImpl& model, io::WeightReader& reader, const std::string& prefix = "",
                               const UMT5LoadOptions& options = {});

// A UMT5 encoder in any published layout, returned in eval mode: a transformers component folder
// (config.json + model.safetensors, its sharded index, model.fp16.safetensors or
// pytorch_model.bin), or one weight file without a config, its sizes read off the shapes
// (umt5_original_keys.h): the Wan release's models_t5_umt5-xxl-enc-bf16.pth (original names) or a
// transformers-named file such as ComfyUI's umt5_xxl_fp16.safetensors. `overrides` (UMT5Config
// keys) are merged last. LoadError naming the file and the key.
UMT5EncoderModel load_umt5_encoder(const std::string& path, const UMT5LoadOptions& options = {},
                                   const nlohmann::json& overrides = nlohmann::json::object());

}  // namespace genvis::models
