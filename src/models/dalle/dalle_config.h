// Configurations of DALL·E's two models (Ramesh et al. 2021, "Zero-Shot Text-to-Image
// Generation"), as written to `config.json` in the `dvae/` and `transformer/` folders.
//
//   auto vae = genvis::models::DVAEConfig::from_file("dvae/config.json");
//   auto dalle = genvis::models::DalleConfig::from_file("transformer/config.json");
//
// dVAE: {"model_type": "genvis_dvae", "image_size": 64, "in_channels": 3, "hidden_size": 64,
//        "num_groups": 3, "blocks_per_group": 1, "vocab_size": 512, "embedding_dim": 128}
//   The official encoder/decoder shape: num_groups groups of bottleneck residual blocks at widths
//   hidden_size * 2^g, a 2x max-pool between groups (num_groups - 1 halvings), logits over
//   vocab_size codes per position; the decoder mirrors it with nearest upsampling and outputs
//   2 * in_channels maps (logit-Laplace location and log-scale). embedding_dim is the width the
//   decoder's first 1x1 convolution gives each code (the official n_init).
//
// Transformer: {"model_type": "genvis_dalle", "text_vocab_size": 1024, "text_len": 32,
//               "image_vocab_size": 512, "image_rows": 16, "image_cols": 16, "hidden_size": 256,
//               "num_layers": 8, "num_heads": 4, "mlp_ratio": 4, "conv_kernel": 11,
//               "attention": ["row", "column", "row", "row", ..., "conv"]}
//   One stream of text_len text tokens (BPE ids; position p's padding is its own token
//   text_vocab_size + p, as the paper) followed by image_rows * image_cols image tokens.
//   attention[i] is layer i's mask over image tokens: "row", "column", "conv" (a causal
//   conv_kernel x conv_kernel neighbourhood) or "full" (causal); text tokens are always causal and
//   every image token sees all of the text. Empty: the paper's pattern (row attention except
//   column attention in every layer i with (i - 2) % 4 == 0, conv attention in the last layer).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::models {

struct DVAEConfig {
  int64_t image_size = 64;
  int64_t in_channels = 3;
  int64_t hidden_size = 64;
  int64_t num_groups = 3;
  int64_t blocks_per_group = 1;
  int64_t vocab_size = 512;
  int64_t embedding_dim = 128;

  int64_t downsample() const { return int64_t{1} << (num_groups - 1); }
  int64_t grid_size() const { return image_size / downsample(); }  // tokens per side

  std::vector<std::string> validate() const;
  static DVAEConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static DVAEConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

enum class DalleAttention { Full, Row, Column, Conv };

DalleAttention parse_dalle_attention(const std::string& name);  // UsageError for an unknown name
const char* dalle_attention_name(DalleAttention kind);

struct DalleConfig {
  int64_t text_vocab_size = 1024;  // BPE ids 0..text_vocab_size-1
  int64_t text_len = 32;
  int64_t image_vocab_size = 512;
  int64_t image_rows = 16;
  int64_t image_cols = 16;
  int64_t hidden_size = 256;
  int64_t num_layers = 8;
  int64_t num_heads = 4;
  int64_t mlp_ratio = 4;
  int64_t conv_kernel = 11;  // odd
  std::vector<std::string> attention;  // per layer; empty: the paper's pattern

  int64_t image_len() const { return image_rows * image_cols; }
  int64_t sequence_len() const { return text_len + image_len(); }
  int64_t text_tokens() const { return text_vocab_size + text_len; }  // with the per-position pads
  int64_t pad_token(int64_t position) const { return text_vocab_size + position; }
  // Layer i's image attention (the explicit list, or the paper's pattern).
  DalleAttention layer_attention(int64_t layer) const;

  std::vector<std::string> validate() const;
  static DalleConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static DalleConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace genvis::models
