// Wan 2.1's transformer in the layout of its own release (github Wan-Video/Wan2.1, WanModel in
// wan/modules/model.py; HF Wan-AI/Wan2.1-T2V-1.3B, -14B, -I2V-14B-480P/720P) and of ComfyUI's
// repackaged files (the same names, optionally under "model.diffusion_model."), mapped onto the
// diffusers names WanTransformer3DModel registers.
//
//   original (file)                         diffusers (module)
//   patch_embedding.*                       patch_embedding.*
//   text_embedding.{0,2}.*                  condition_embedder.text_embedder.linear_{1,2}.*
//   time_embedding.{0,2}.*                  condition_embedder.time_embedder.linear_{1,2}.*
//   time_projection.1.*                     condition_embedder.time_proj.*
//   img_emb.proj.{0,1,3,4}.* (I2V)          condition_embedder.image_embedder.{norm1,ff.net.0.proj,ff.net.2,norm2}.*
//   blocks.N.self_attn.{q,k,v,o,norm_q,norm_k}.*   blocks.N.attn1.{to_q,to_k,to_v,to_out.0,norm_q,norm_k}.*
//   blocks.N.cross_attn.{...,k_img,v_img,norm_k_img}.*  blocks.N.attn2.{...,add_k_proj,add_v_proj,norm_added_k}.*
//   blocks.N.norm3.* (cross-attention norm) blocks.N.norm2.*
//   blocks.N.ffn.{0,2}.*                    blocks.N.ffn.net.{0.proj,2}.*
//   blocks.N.modulation                     blocks.N.scale_shift_table
//   head.head.*, head.modulation            proj_out.*, scale_shift_table
//
//   auto r = genvis::io::open_weights("wan2.1_t2v_1.3B_fp16.safetensors");
//   const std::string prefix = wan_original_prefix(r->tensors());          // "" or "model.diffusion_model."
//   nlohmann::json config = infer_wan_transformer_config(r->tensors(), prefix, {}, r->path());
#pragma once
#include "io/dtype.h"
#include "nn/key_table.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::models {

inline constexpr const char* kComfyUIDiffusionPrefix = "model.diffusion_model.";

// The table above (nn/key_table.h), both ways.
const nn::KeyTable& wan_transformer_original_keys();

// Whether the tensors are a Wan 2.1 transformer with the original names, and under which prefix
// ("" or "model.diffusion_model."); nullopt otherwise.
std::optional<std::string> wan_original_prefix(const std::vector<io::TensorInfo>& tensors);

// The Wan release's config.json ("_class_name": "WanModel"): dim, ffn_dim, freq_dim, in_dim,
// out_dim, num_heads, num_layers, eps, model_type ("t2v" or "i2v"), text_len, and optionally
// patch_size, text_dim, qk_norm, cross_attn_norm, window_size.
struct WanModelConfig {
  nlohmann::json transformer;  // the keys it gives, in WanTransformer3DModel's names
  std::string model_type = "t2v";
  int64_t text_len = 512;      // the prompt length the release pads to (max_sequence_length)
  // Unknown keys, wrong types and unsupported settings (flf2v/vace, windowed attention) in one
  // LoadError naming `source`.
  static WanModelConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static WanModelConfig from_file(const std::string& path);
};

// A WanTransformer3DModel config (JSON, diffusers names) read off original-named tensors under
// `prefix`: hidden size, patch size, in/out channels, text and frequency dims, feed-forward size,
// layers, the cross-attention norm and, for I2V (img_emb.*), the image dim. Not in the shapes:
// the head count (hidden / 128, Wan's head size in every release), eps 1e-6, rope_max_seq_len
// 1024. `overrides` (diffusers names; num_attention_heads alone sets the head size too) are merged
// last. LoadError naming `source` and the tensor when one is missing or the model is a kind this
// engine cannot run (first-last-frame, VACE).
nlohmann::json infer_wan_transformer_config(const std::vector<io::TensorInfo>& tensors, const std::string& prefix,
                                            const nlohmann::json& overrides, const std::string& source);

}  // namespace genvis::models
