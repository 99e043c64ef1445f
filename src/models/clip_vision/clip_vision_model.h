// transformers' CLIPVisionModel (the `vision_model.` keys): Wan 2.1 image-to-video's image encoder,
// whose penultimate hidden states condition the transformer.
//
//   auto vision = genvis::models::load_clip_vision_model("image_encoder");      // a transformers folder
//   CLIPVisionOutput out = vision->forward(pixel_values /*[B,3,S,S], CLIP-normalised*/);
//   at::Tensor image_embeds = out.hidden_states[out.hidden_states.size() - 2];   // [B,(S/p)^2+1,C]
//
// Pre-LN ViT: patch convolution (no bias) + class token + learned positions, pre_layrnorm (sic),
// encoder layers shared with the CLIP text model (no mask), post_layernorm on the class token.
#pragma once
#include "models/clip_text/clip_text_model.h"

#include <nlohmann/json.hpp>
#include <string>
#include <torch/nn/modules/conv.h>
#include <vector>

namespace genvis::models {

// transformers' CLIPVisionConfig field names and defaults (ViT-B/32).
struct CLIPVisionConfig {
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t projection_dim = 512;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 32;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;

  int64_t num_positions() const { return (image_size / patch_size) * (image_size / patch_size) + 1; }
  // The encoder layers' settings, as a CLIPTextConfig (the layers are the same modules).
  CLIPTextConfig layer_config() const;
  std::vector<std::string> validate() const;
  // A CLIPVisionConfig, or a CLIPConfig's vision_config; every problem in one LoadError.
  static CLIPVisionConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static CLIPVisionConfig from_file(const std::string& path);
};

struct CLIPVisionOutput {
  at::Tensor last_hidden_state;           // [B, N, C]: the last layer's output (no post LN)
  std::vector<at::Tensor> hidden_states;  // L+1 x [B, N, C]: pre_layrnorm(embeddings), then each layer
  at::Tensor pooler_output;               // [B, C] = post_layernorm(last_hidden_state[:, 0])
};

struct CLIPVisionEmbeddingsImpl : torch::nn::Module {
  explicit CLIPVisionEmbeddingsImpl(const CLIPVisionConfig& config);
  at::Tensor forward(const at::Tensor& pixel_values);  // [B,3,S,S] -> [B, N, C]
  at::Tensor class_embedding;                          // [C]
  torch::nn::Conv2d patch_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};
};
TORCH_MODULE(CLIPVisionEmbeddings);

struct CLIPVisionTransformerImpl : torch::nn::Module {
  explicit CLIPVisionTransformerImpl(const CLIPVisionConfig& config);
  CLIPVisionOutput forward(const at::Tensor& pixel_values);

  CLIPVisionConfig config;
  CLIPVisionEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(CLIPVisionTransformer);

struct CLIPVisionModelImpl : torch::nn::Module {
  explicit CLIPVisionModelImpl(const CLIPVisionConfig& config);
  // pixel_values [B, num_channels, image_size, image_size]; UsageError for another shape.
  CLIPVisionOutput forward(const at::Tensor& pixel_values);
  CLIPVisionTransformer vision_model{nullptr};
};
TORCH_MODULE(CLIPVisionModel);

// A CLIP image encoder in any published layout, in eval mode: a transformers folder (config.json
// + model.safetensors or pytorch_model.bin), or one weight file without a config, its sizes read
// off the shapes (clip_vision_original_keys.h): the Wan release's
// models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth (its text tower is skipped) or a
// transformers-named file such as ComfyUI's clip_vision_h.safetensors. A
// CLIPVisionModelWithProjection's visual_projection is skipped. `overrides` (CLIPVisionConfig
// keys) are merged last. LoadError naming the file and the key.
CLIPVisionModel load_clip_vision_model(const std::string& path, at::ScalarType dtype = at::kFloat,
                                       const nlohmann::json& overrides = nlohmann::json::object());

}  // namespace genvis::models
