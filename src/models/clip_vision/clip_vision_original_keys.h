// Wan 2.1 I2V's image encoder in the layout of its own release
// (models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth: XLMRobertaCLIP in wan/modules/clip.py,
// of which only the `visual.` tower is used), mapped onto transformers' CLIPVisionModel names; and
// the config of a transformers-named file that comes without one (ComfyUI's
// clip_vision/clip_vision_h.safetensors: vision_model.*, visual_projection.weight).
//
//   original (file)                          transformers (module)
//   visual.patch_embedding.weight            vision_model.embeddings.patch_embedding.weight
//   visual.cls_embedding [1,1,C]             vision_model.embeddings.class_embedding [C]
//   visual.pos_embedding [1,N,C]             vision_model.embeddings.position_embedding.weight [N,C]
//   visual.pre_norm.*, visual.post_norm.*    vision_model.pre_layrnorm.*, vision_model.post_layernorm.*
//   visual.transformer.N.norm{1,2}.*         vision_model.encoder.layers.N.layer_norm{1,2}.*
//   visual.transformer.N.attn.to_qkv.*       vision_model.encoder.layers.N.self_attn.{q,k,v}_proj.* (split)
//   visual.transformer.N.attn.proj.*         vision_model.encoder.layers.N.self_attn.out_proj.*
//   visual.transformer.N.mlp.{0,2}.*         vision_model.encoder.layers.N.mlp.{fc1,fc2}.*
//   visual.head, textual.*, log_scale        (not part of the vision model: skipped)
// Load with squeeze_singleton_dims (the class and position embeddings carry a batch dim).
#pragma once
#include "io/dtype.h"
#include "nn/key_table.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::models {

const nn::KeyTable& clip_vision_wan_original_keys();

// Whether the tensors are the Wan release's open-clip ViT (visual.transformer.0.attn.to_qkv.weight),
// or a transformers CLIPVisionModel (vision_model.embeddings.patch_embedding.weight).
bool is_clip_vision_wan_original(const std::vector<io::TensorInfo>& tensors);
bool is_clip_vision_transformers(const std::vector<io::TensorInfo>& tensors);

// A CLIPVisionConfig (JSON, transformers names) read off the shapes (original names when
// `original`): hidden_size, num_channels, patch_size, image_size (from the positions),
// intermediate_size, num_hidden_layers, projection_dim (when visual_projection is there). Not in the
// shapes: the head count (hidden / 80: ViT-H/14's 16 heads of 80), hidden_act gelu and
// layer_norm_eps 1e-5 (open-clip ViT-H/14's). `overrides` are merged last (num_attention_heads
// for another head size). LoadError naming `source` and a missing tensor.
nlohmann::json infer_clip_vision_config(const std::vector<io::TensorInfo>& tensors, bool original,
                                        const nlohmann::json& overrides, const std::string& source);

}  // namespace genvis::models
