// DALL·E's decoder-only transformer over [text tokens; image tokens] (Ramesh et al. 2021).
//
//   DalleTransformer model(DalleConfig{...});
//   DalleLoss l = model->loss(text_ids /*[B,T]*/, image_ids /*[B,N]*/);   // 1/8 text + 7/8 image
//   DalleCache cache = model->prefill(text_ids, image_ids, known);        // KV cache of the prefix
//   at::Tensor logits = model->step(cache, token, position);              // next token's logits
//
// Embeddings: text_embedding (text_vocab_size BPE ids + text_len per-position pad tokens),
// text_position, image_embedding (the dVAE codes) plus image_row and image_column embeddings (the
// factored 2D position). Pre-LayerNorm blocks layers.N.{ln_1, attn.{qkv, proj}, ln_2,
// mlp.{fc, proj}} (GELU), ln_f, then text_head and image_head. Layer i attends with
// config.layer_attention(i) (dalle_attention.h). Position t predicts token t + 1: text positions
// 0..T-2 the text, positions T-1..L-2 the image tokens.
#pragma once
#include "models/dalle/dalle_attention.h"
#include "models/dalle/dalle_config.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <vector>

namespace genvis::models {

class DalleAttentionLayerImpl : public torch::nn::Module {
public:
  DalleAttentionLayerImpl(int64_t hidden, int64_t heads);
  // q, k, v [B, n, C] of x [B, n, C].
  std::tuple<at::Tensor, at::Tensor, at::Tensor> project(const at::Tensor& x);
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(DalleAttentionLayer);

class DalleMLPImpl : public torch::nn::Module {
public:
  DalleMLPImpl(int64_t hidden, int64_t inner);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear fc{nullptr}, proj{nullptr};
};
TORCH_MODULE(DalleMLP);

struct DalleLayerCache {
  at::Tensor k, v;  // [B, L, C], filled up to DalleCache::length
};

struct DalleCache {
  std::vector<DalleLayerCache> layers;
  int64_t length = 0;  // positions whose keys and values are cached
};

class DalleBlockImpl : public torch::nn::Module {
public:
  DalleBlockImpl(const DalleConfig& config, DalleAttention kind);
  // The whole stream x [B, L, C]; stores the keys and values into cache when given.
  at::Tensor forward(const at::Tensor& x, const DalleLayout& layout, DalleLayerCache* cache = nullptr);
  // One position x [B, 1, C] at position i, reading and extending the cache.
  at::Tensor step(const at::Tensor& x, const DalleLayout& layout, DalleLayerCache& cache, int64_t i);
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  DalleAttentionLayer attn{nullptr};
  DalleMLP mlp{nullptr};
  DalleAttention kind;
};
TORCH_MODULE(DalleBlock);

struct DalleLoss {
  at::Tensor loss;        // (text + 7 image) / 8
  at::Tensor text_loss;   // cross-entropy over the text positions
  at::Tensor image_loss;  // cross-entropy over the image tokens
};

class DalleTransformerImpl : public torch::nn::Module {
public:
  explicit DalleTransformerImpl(const DalleConfig& config);

  // Final hidden states [B, L, C] of text_ids [B, T] (pads included) and image_ids [B, N].
  at::Tensor forward(const at::Tensor& text_ids, const at::Tensor& image_ids, DalleCache* cache = nullptr);
  DalleLoss loss(const at::Tensor& text_ids, const at::Tensor& image_ids, double image_weight = 7.0 / 8.0);

  // The cache after the text and the first `known` image tokens of image_ids (the rest may be
  // anything: attention is causal), and the image logits [B, image_vocab] for image token `known`.
  std::pair<DalleCache, at::Tensor> prefill(const at::Tensor& text_ids, const at::Tensor& image_ids, int64_t known);
  // Feeds image token number n (ids [B]) at stream position text_len + n; returns the logits
  // [B, image_vocab] for image token n + 1.
  at::Tensor step(DalleCache& cache, const at::Tensor& image_token, int64_t n);

  // The input embeddings of the whole stream [B, L, C] and of image token n alone [B, 1, C].
  at::Tensor embed(const at::Tensor& text_ids, const at::Tensor& image_ids);
  at::Tensor embed_image_token(const at::Tensor& ids, int64_t n);

  DalleConfig config;
  DalleLayout layout;
  torch::nn::Embedding text_embedding{nullptr}, text_position{nullptr}, image_embedding{nullptr};
  torch::nn::Embedding image_row{nullptr}, image_column{nullptr};
  torch::nn::ModuleList layers;
  std::vector<DalleBlock> blocks;
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear text_head{nullptr}, image_head{nullptr};
};
TORCH_MODULE(DalleTransformer);

// Text ids [B, T] from token lists: each truncated to text_len, then position p >= its length
// given the pad token text_vocab_size + p. UsageError for an id outside the BPE vocabulary.
at::Tensor dalle_text_ids(const std::vector<std::vector<int64_t>>& tokens, const DalleConfig& config);

}  // namespace genvis::models
