#include "models/clip_vision/clip_vision_original_keys.h"

#include "core/error.h"

#include <cmath>
#include <unordered_map>

namespace genvis::models {
namespace {

// open-clip ViT-H/14 (Wan's image encoder, ComfyUI's clip_vision_h): 1280 wide, 16 heads.
constexpr int64_t kViTHHeadDim = 80;

}  // namespace

const nn::KeyTable& clip_vision_wan_original_keys() {
  static const std::string L = "vision_model.encoder.layers.#.";
  static const nn::KeyTable table({
      {"visual.patch_embedding.", "vision_model.embeddings.patch_embedding."},
      {"visual.cls_embedding", "vision_model.embeddings.class_embedding"},
      {"visual.pos_embedding", "vision_model.embeddings.position_embedding.weight"},
      {"visual.pre_norm.", "vision_model.pre_layrnorm."},
      {"visual.post_norm.", "vision_model.post_layernorm."},
      {"visual.transformer.#.norm1.", L + "layer_norm1."},
      {"visual.transformer.#.norm2.", L + "layer_norm2."},
      {"visual.transformer.#.attn.to_qkv.",
       std::vector<std::string>{L + "self_attn.q_proj.", L + "self_attn.k_proj.", L + "self_attn.v_proj."}},
      {"visual.transformer.#.attn.proj.", L + "self_attn.out_proj."},
      {"visual.transformer.#.mlp.0.", L + "mlp.fc1."},
      {"visual.transformer.#.mlp.2.", L + "mlp.fc2."},
      {"visual.head", ""},
      {"textual.", ""},
      {"log_scale", ""},
  });
  return table;
}

bool is_clip_vision_wan_original(const std::vector<io::TensorInfo>& tensors) {
  for (const auto& t : tensors)
    if (t.name == "visual.transformer.0.attn.to_qkv.weight") return true;
  return false;
}

bool is_clip_vision_transformers(const std::vector<io::TensorInfo>& tensors) {
  for (const auto& t : tensors)
    if (t.name == "vision_model.embeddings.patch_embedding.weight") return true;
  return false;
}

nlohmann::json infer_clip_vision_config(const std::vector<io::TensorInfo>& tensors, bool original,
                                        const nlohmann::json& overrides, const std::string& source) {
  std::unordered_map<std::string, const io::TensorInfo*> names;
  for (const auto& t : tensors) names.emplace(t.name, &t);
  const auto file_name = [&](const std::string& module) {
    if (!original) return module;
    const auto f = clip_vision_wan_original_keys().to_file(module);
    return f ? f->name : module;
  };
  const auto find = [&](const std::string& module) -> const io::TensorInfo* {
    const auto it = names.find(file_name(module));
    return it == names.end() ? nullptr : it->second;
  };
  const auto need = [&](const std::string& module, size_t min_rank) -> const std::vector<int64_t>& {
    const io::TensorInfo* t = find(module);
    if (!t) throw LoadError(source, file_name(module), "missing (needed to read the CLIP image encoder's sizes)");
    if (t->shape.size() < min_rank)
      throw LoadError(source, t->name, "shape " + io::shape_string(t->shape) + " has too few dims");
    return t->shape;
  };
  const auto& patch = need("vision_model.embeddings.patch_embedding.weight", 4);  // [C, channels, p, p]
  const auto& positions = need("vision_model.embeddings.position_embedding.weight", 2);  // [(1,) N, C]
  const auto& fc1 = need("vision_model.encoder.layers.0.mlp.fc1.weight", 2);            // [intermediate, C]
  const int64_t hidden = patch[0], patch_size = patch[2], tokens = positions[positions.size() - 2];
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(tokens - 1))));
  if (tokens < 2 || side * side != tokens - 1)
    throw LoadError(source, file_name("vision_model.embeddings.position_embedding.weight"),
                    "shape " + io::shape_string(positions) + ": " + std::to_string(tokens) +
                        " positions are not a class token plus a square grid of patches");
  int64_t layers = 0;
  while (find("vision_model.encoder.layers." + std::to_string(layers) + ".layer_norm1.weight")) ++layers;
  nlohmann::json c = {{"hidden_size", hidden},
                      {"num_channels", patch[1]},
                      {"patch_size", patch_size},
                      {"image_size", side * patch_size},
                      {"intermediate_size", fc1[0]},
                      {"num_hidden_layers", layers},
                      {"hidden_act", "gelu"},
                      {"layer_norm_eps", 1e-5}};
  if (const auto* projection = find("visual_projection.weight"); projection && projection->shape.size() == 2)
    c["projection_dim"] = projection->shape[0];
  const nlohmann::json o = overrides.is_object() ? overrides : nlohmann::json::object();
  if (!o.contains("num_attention_heads")) {
    if (hidden % kViTHHeadDim != 0)
      throw LoadError(source, "the hidden size " + std::to_string(hidden) +
                                  " is not a multiple of ViT-H's 80-wide heads; give the head count in --model-config: "
                                  "{\"image_encoder\": {\"num_attention_heads\": N}}");
    c["num_attention_heads"] = hidden / kViTHHeadDim;
  }
  c.merge_patch(o);
  return c;
}

}  // namespace genvis::models
