// Configuration of a CLIP text encoder, read from a transformers `config.json`
// (CLIPTextConfig; field names and defaults are the transformers ones).
//
//   auto config = genvis::models::CLIPTextConfig::from_file("text_encoder/config.json");
//
// SD1 uses CLIP ViT-L/14 (768, quick_gelu), SD2 OpenCLIP ViT-H/14 (1024, gelu, 23 layers),
// SDXL both CLIP-L and OpenCLIP bigG (1280, gelu, with text_projection).
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace genvis::models {

struct CLIPTextConfig {
  std::vector<std::string> architectures;  // "CLIPTextModel" or "CLIPTextModelWithProjection"
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t projection_dim = 512;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";  // "quick_gelu" (OpenAI CLIP) or "gelu" (OpenCLIP, exact erf)
  double layer_norm_eps = 1e-5;
  double attention_dropout = 0.0;
  double dropout = 0.0;
  int64_t pad_token_id = 1;
  int64_t bos_token_id = 49406;
  // Pitfall: most published configs say 2 (a legacy value); transformers then pools at
  // argmax(input_ids), i.e. the first 49407. Any other value pools at its first occurrence.
  int64_t eos_token_id = 49407;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  bool has_projection() const;

  // Every problem at once; empty when the config is usable.
  std::vector<std::string> validate() const;

  // Unknown keys are ignored; wrongly-typed and invalid values are all reported in one
  // LoadError naming `source`.
  static CLIPTextConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static CLIPTextConfig from_file(const std::string& path);
};

}  // namespace genvis::models
