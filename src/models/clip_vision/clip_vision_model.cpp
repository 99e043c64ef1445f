#include "models/clip_vision/clip_vision_model.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "io/weights.h"
#include "models/clip_vision/clip_vision_original_keys.h"
#include "models/transformers_config_keys.h"
#include "nn/state_dict.h"

#include <filesystem>
#include <nlohmann/json.hpp>

namespace genvis::models {

CLIPTextConfig CLIPVisionConfig::layer_config() const {
  CLIPTextConfig c;
  c.hidden_size = hidden_size;
  c.intermediate_size = intermediate_size;
  c.num_hidden_layers = num_hidden_layers;
  c.num_attention_heads = num_attention_heads;
  c.hidden_act = hidden_act;
  c.layer_norm_eps = layer_norm_eps;
  return c;
}

std::vector<std::string> CLIPVisionConfig::validate() const {
  std::vector<std::string> problems;
  const auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) problems.push_back(std::string(name) + " must be positive (got " + std::to_string(v) + ")");
  };
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_channels", num_channels);
  positive("image_size", image_size);
  positive("patch_size", patch_size);
  if (hidden_size > 0 && num_attention_heads > 0 && hidden_size % num_attention_heads != 0)
    problems.push_back("hidden_size is not divisible by num_attention_heads");
  if (patch_size > 0 && image_size % patch_size != 0)
    problems.push_back("image_size " + std::to_string(image_size) + " is not divisible by patch_size " +
                       std::to_string(patch_size));
  if (hidden_act != "quick_gelu" && hidden_act != "gelu")
    problems.push_back("hidden_act must be \"quick_gelu\" or \"gelu\" (got \"" + hidden_act + "\")");
  if (!(layer_norm_eps > 0)) problems.push_back("layer_norm_eps must be positive");
  return problems;
}

CLIPVisionConfig CLIPVisionConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (j.is_object() && j.contains("vision_config") && j.at("vision_config").is_object())
    return from_json(j.at("vision_config"), source + " (vision_config)");
  if (!j.is_object()) throw LoadError(source, "CLIP vision config must be a JSON object");
  static const std::set<std::string> kKeys = with_transformers_common_keys(
      {"hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers", "num_attention_heads",
       "num_channels", "image_size", "patch_size", "hidden_act", "layer_norm_eps", "attention_dropout", "dropout",
       "initializer_range", "initializer_factor"});
  CLIPVisionConfig c;
  config::Problems problems;
  config::check_keys(j, "", {}, kKeys, problems);
  const auto read = [&](const char* key, auto& field) { config::read(j, "", key, field, problems); };
  read("hidden_size", c.hidden_size);
  read("intermediate_size", c.intermediate_size);
  read("projection_dim", c.projection_dim);
  read("num_hidden_layers", c.num_hidden_layers);
  read("num_attention_heads", c.num_attention_heads);
  read("num_channels", c.num_channels);
  read("image_size", c.image_size);
  read("patch_size", c.patch_size);
  read("hidden_act", c.hidden_act);
  read("layer_norm_eps", c.layer_norm_eps);
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) throw LoadError(source, "invalid CLIP vision config: " + config::describe(problems));
  return c;
}

CLIPVisionConfig CLIPVisionConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path), path);
}

CLIPVisionEmbeddingsImpl::CLIPVisionEmbeddingsImpl(const CLIPVisionConfig& c) {
  class_embedding = register_parameter("class_embedding", torch::randn({c.hidden_size}));
  patch_embedding = register_module(
      "patch_embedding", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.num_channels, c.hidden_size, c.patch_size)
                                               .stride(c.patch_size)
                                               .bias(false)));
  position_embedding = register_module("position_embedding", torch::nn::Embedding(c.num_positions(), c.hidden_size));
}

at::Tensor CLIPVisionEmbeddingsImpl::forward(const at::Tensor& pixel_values) {
  const int64_t b = pixel_values.size(0);
  const at::Tensor patches = patch_embedding(pixel_values.to(patch_embedding->weight.scalar_type()))
                                 .flatten(2)
                                 .transpose(1, 2);  // [B, (S/p)^2, C]
  const at::Tensor cls = class_embedding.view({1, 1, -1}).expand({b, 1, class_embedding.size(0)});
  return at::cat({cls, patches}, 1) + position_embedding->weight.unsqueeze(0);
}

CLIPVisionTransformerImpl::CLIPVisionTransformerImpl(const CLIPVisionConfig& c) : config(c) {
  if (const auto problems = c.validate(); !problems.empty())
    throw UsageError("invalid CLIP vision config: " + config::describe(problems));
  const auto norm = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
  };
  embeddings = register_module("embeddings", CLIPVisionEmbeddings(c));
  pre_layrnorm = register_module("pre_layrnorm", norm());
  encoder = register_module("encoder", CLIPEncoder(c.layer_config()));
  post_layernorm = register_module("post_layernorm", norm());
}

CLIPVisionOutput CLIPVisionTransformerImpl::forward(const at::Tensor& pixel_values) {
  CLIPVisionOutput out;
  at::Tensor h = pre_layrnorm(embeddings(pixel_values));
  out.hidden_states.push_back(h);
  for (const auto& layer : *encoder->layers) {
    h = layer->as<CLIPEncoderLayer>()->forward(h, at::Tensor());
    out.hidden_states.push_back(h);
  }
  out.last_hidden_state = h;
  out.pooler_output = post_layernorm(h.select(1, 0));
  return out;
}

CLIPVisionModelImpl::CLIPVisionModelImpl(const CLIPVisionConfig& c) {
  vision_model = register_module("vision_model", CLIPVisionTransformer(c));
}

CLIPVisionOutput CLIPVisionModelImpl::forward(const at::Tensor& pixel_values) {
  const auto& c = vision_model->config;
  if (pixel_values.dim() != 4 || pixel_values.size(1) != c.num_channels || pixel_values.size(2) != c.image_size ||
      pixel_values.size(3) != c.image_size)
    throw UsageError("CLIP vision input must be [B," + std::to_string(c.num_channels) + "," +
                     std::to_string(c.image_size) + "," + std::to_string(c.image_size) + "]");
  return vision_model->forward(pixel_values);
}

CLIPVisionModel load_clip_vision_model(const std::string& path, at::ScalarType dtype, const nlohmann::json& overrides) {
  const nlohmann::json patch = overrides.is_object() ? overrides : nlohmann::json::object();
  nn::LoadOptions options;
  options.dtype = dtype;
  // Position ids are computed; a WithProjection checkpoint's projection is not part of this model.
  options.ignore_unexpected = [](const std::string& name) {
    return name == "vision_model.embeddings.position_ids" || name.rfind("visual_projection.", 0) == 0;
  };
  std::optional<CLIPVisionConfig> config;
  std::unique_ptr<io::WeightReader> reader;
  if (std::filesystem::is_directory(path)) {
    const std::string config_path = path + "/config.json";
    nlohmann::json j = config::read_file(config_path);
    if (j.is_object() && j.contains("vision_config") && j.at("vision_config").is_object())
      j.at("vision_config").merge_patch(patch);
    else if (j.is_object())
      j.merge_patch(patch);
    config = CLIPVisionConfig::from_json(j, config_path);
    reader = io::open_weights(io::find_weight_file(
        path, {"model.safetensors", "model.safetensors.index.json", "model.fp16.safetensors", "pytorch_model.bin"},
        "CLIP image encoder"));
  } else {
    reader = io::open_weights(path);
    const bool original = is_clip_vision_wan_original(reader->tensors());
    if (!original && !is_clip_vision_transformers(reader->tensors()))
      throw LoadError(path, "not a CLIP image encoder (looked for the Wan release's "
                            "visual.transformer.0.attn.to_qkv.weight and transformers' "
                            "vision_model.embeddings.patch_embedding.weight)");
    config = CLIPVisionConfig::from_json(infer_clip_vision_config(reader->tensors(), original, patch, path), path);
    if (original) {
      clip_vision_wan_original_keys().apply(options);
      options.ignore_unexpected = nullptr;
      options.squeeze_singleton_dims = true;
    }
  }
  CLIPVisionModel model(*config);
  nn::load_state_dict(*model, *reader, options);
  model->eval();
  return model;
}

}  // namespace genvis::models
