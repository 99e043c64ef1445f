// Wan 2.1's UMT5-XXL text encoder in the layout of its own release (models_t5_umt5-xxl-enc-bf16.pth,
// T5Encoder in wan/modules/t5.py), mapped onto transformers' UMT5EncoderModel names; and the
// config of a transformers-named file that comes without one (ComfyUI's
// text_encoders/umt5_xxl_fp16.safetensors: shared.weight, encoder.block.N.layer...).
//
//   original (file)                         transformers (module)
//   token_embedding.*                       shared.*
//   blocks.N.norm1.*                        encoder.block.N.layer.0.layer_norm.*
//   blocks.N.attn.{q,k,v,o}.*               encoder.block.N.layer.0.SelfAttention.{q,k,v,o}.*
//   blocks.N.pos_embedding.embedding.*      encoder.block.N.layer.0.SelfAttention.relative_attention_bias.*
//   blocks.N.norm2.*                        encoder.block.N.layer.1.layer_norm.*
//   blocks.N.ffn.{gate.0,fc1,fc2}.*         encoder.block.N.layer.1.DenseReluDense.{wi_0,wi_1,wo}.*
//   norm.*                                  encoder.final_layer_norm.*
// (The original's feed-forward is fc2(fc1(x) * gelu_tanh(gate(x))): gate = wi_0, fc1 = wi_1.)
#pragma once
#include "io/dtype.h"
#include "nn/key_table.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace genvis::models {

const nn::KeyTable& umt5_original_keys();

// Whether the tensors are a UMT5 encoder with the original names.
bool is_umt5_original(const std::vector<io::TensorInfo>& tensors);
// The prefix of a transformers-named UMT5 encoder (the name before "encoder.final_layer_norm.weight"
// when "<prefix>shared.weight" is there too); nullopt when there is none.
std::optional<std::string> umt5_transformers_prefix(const std::vector<io::TensorInfo>& tensors);

// A UMT5Config (JSON, transformers names) read off the shapes, original names when `original`,
// else transformers names under `prefix`: vocab_size, d_model, num_heads and
// relative_attention_num_buckets (the relative bias), d_kv, d_ff, num_layers. Not in the shapes:
// relative_attention_max_distance 128, layer_norm_epsilon 1e-6, feed_forward_proj gated-gelu
// (google/umt5-xxl's). `overrides` are merged last. LoadError naming `source` and a missing tensor.
nlohmann::json infer_umt5_config(const std::vector<io::TensorInfo>& tensors, bool original, const std::string& prefix,
                                 const nlohmann::json& overrides, const std::string& source);

}  // namespace genvis::models
