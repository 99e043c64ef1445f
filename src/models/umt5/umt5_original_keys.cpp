#include "models/umt5/umt5_original_keys.h"

#include "core/error.h"

#include <unordered_map>

namespace genvis::models {

const nn::KeyTable& umt5_original_keys() {
  static const nn::KeyTable table({
      {"token_embedding.", "shared."},
      {"blocks.#.norm1.", "encoder.block.#.layer.0.layer_norm."},
      {"blocks.#.attn.q.", "encoder.block.#.layer.0.SelfAttention.q."},
      {"blocks.#.attn.k.", "encoder.block.#.layer.0.SelfAttention.k."},
      {"blocks.#.attn.v.", "encoder.block.#.layer.0.SelfAttention.v."},
      {"blocks.#.attn.o.", "encoder.block.#.layer.0.SelfAttention.o."},
      {"blocks.#.pos_embedding.embedding.", "encoder.block.#.layer.0.SelfAttention.relative_attention_bias."},
      {"blocks.#.norm2.", "encoder.block.#.layer.1.layer_norm."},
      {"blocks.#.ffn.gate.0.", "encoder.block.#.layer.1.DenseReluDense.wi_0."},
      {"blocks.#.ffn.fc1.", "encoder.block.#.layer.1.DenseReluDense.wi_1."},
      {"blocks.#.ffn.fc2.", "encoder.block.#.layer.1.DenseReluDense.wo."},
      {"norm.", "encoder.final_layer_norm."},
  });
  return table;
}

bool is_umt5_original(const std::vector<io::TensorInfo>& tensors) {
  bool embedding = false, attention = false, bias = false;
  for (const auto& t : tensors) {
    embedding = embedding || t.name == "token_embedding.weight";
    attention = attention || t.name == "blocks.0.attn.q.weight";
    bias = bias || t.name == "blocks.0.pos_embedding.embedding.weight";
  }
  return embedding && attention && bias;
}

std::optional<std::string> umt5_transformers_prefix(const std::vector<io::TensorInfo>& tensors) {
  static const std::string kFinal = "encoder.final_layer_norm.weight";
  std::unordered_map<std::string, const io::TensorInfo*> names;
  for (const auto& t : tensors) names.emplace(t.name, &t);
  for (const auto& t : tensors)
    if (t.name.size() >= kFinal.size() && t.name.compare(t.name.size() - kFinal.size(), kFinal.size(), kFinal) == 0) {
      const std::string prefix = t.name.substr(0, t.name.size() - kFinal.size());
      if (names.count(prefix + "encoder.block.0.layer.0.SelfAttention.q.weight") &&
          (names.count(prefix + "shared.weight") || names.count(prefix + "encoder.embed_tokens.weight")))
        return prefix;
    }
  return std::nullopt;
}

nlohmann::json infer_umt5_config(const std::vector<io::TensorInfo>& tensors, bool original, const std::string& prefix,
                                 const nlohmann::json& overrides, const std::string& source) {
  std::unordered_map<std::string, const io::TensorInfo*> names;
  for (const auto& t : tensors) names.emplace(t.name, &t);
  // The file's name for a module tensor.
  const auto file_name = [&](const std::string& module) {
    if (!original) return prefix + module;
    const auto f = umt5_original_keys().to_file(module);
    return f ? f->name : module;
  };
  const auto find = [&](const std::string& module) -> const io::TensorInfo* {
    const auto it = names.find(file_name(module));
    return it == names.end() ? nullptr : it->second;
  };
  const auto need = [&](const std::string& module, size_t rank) -> const std::vector<int64_t>& {
    const io::TensorInfo* t = find(module);
    if (!t && module == "shared.weight" && !original) t = find("encoder.embed_tokens.weight");
    if (!t) throw LoadError(source, file_name(module), "missing (needed to read the UMT5 encoder's sizes)");
    if (t->shape.size() != rank)
      throw LoadError(source, t->name, "shape " + io::shape_string(t->shape) + ", expected " + std::to_string(rank) + " dims");
    return t->shape;
  };
  const auto& embedding = need("shared.weight", 2);                                                  // [vocab, d_model]
  const auto& bias = need("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 2);  // [buckets, heads]
  const auto& q = need("encoder.block.0.layer.0.SelfAttention.q.weight", 2);                         // [heads * d_kv, d_model]
  const auto& wi = need("encoder.block.0.layer.1.DenseReluDense.wi_0.weight", 2);                    // [d_ff, d_model]
  if (bias[1] <= 0 || q[0] % bias[1] != 0)
    throw LoadError(source, file_name("encoder.block.0.layer.0.SelfAttention.q.weight"),
                    "shape " + io::shape_string(q) + " is not a multiple of the " + std::to_string(bias[1]) +
                        " heads of the relative attention bias");
  int64_t layers = 0;
  while (find("encoder.block." + std::to_string(layers) + ".layer.0.SelfAttention.q.weight")) ++layers;
  nlohmann::json c = {{"architectures", {"UMT5EncoderModel"}},
                      {"vocab_size", embedding[0]},
                      {"d_model", embedding[1]},
                      {"num_heads", bias[1]},
                      {"relative_attention_num_buckets", bias[0]},
                      {"d_kv", q[0] / bias[1]},
                      {"d_ff", wi[0]},
                      {"num_layers", layers},
                      {"relative_attention_max_distance", 128},
                      {"layer_norm_epsilon", 1e-6},
                      {"feed_forward_proj", "gated-gelu"}};
  if (overrides.is_object()) c.merge_patch(overrides);
  return c;
}

}  // namespace genvis::models
