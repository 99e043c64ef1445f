#include "models/wan/wan_original_keys.h"

#include "core/config_reader.h"
#include "core/error.h"

#include <unordered_map>

namespace genvis::models {
namespace {

// Wan's attention heads are 128 wide in every 2.1 release (1.3B: 1536 / 12, 14B: 5120 / 40).
constexpr int64_t kWanHeadDim = 128;

class TensorIndex {
public:
  TensorIndex(const std::vector<io::TensorInfo>& tensors, std::string prefix) : prefix_(std::move(prefix)) {
    for (const auto& t : tensors) by_name_.emplace(t.name, &t);
  }
  const io::TensorInfo* find(const std::string& name) const {
    const auto it = by_name_.find(prefix_ + name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  // The tensor, with `rank` dims; LoadError naming it otherwise.
  const io::TensorInfo& need(const std::string& name, size_t rank, const std::string& source) const {
    const io::TensorInfo* t = find(name);
    if (!t) throw LoadError(source, prefix_ + name, "missing (needed to read the Wan transformer's sizes)");
    if (t->shape.size() != rank)
      throw LoadError(source, prefix_ + name,
                      "shape " + io::shape_string(t->shape) + " has " + std::to_string(t->shape.size()) +
                          " dims, expected " + std::to_string(rank));
    return *t;
  }

private:
  std::string prefix_;
  std::unordered_map<std::string, const io::TensorInfo*> by_name_;
};

bool is_int(const nlohmann::json& j, const char* key) { return j.contains(key) && j.at(key).is_number_integer(); }

}  // namespace

const nn::KeyTable& wan_transformer_original_keys() {
  static const nn::KeyTable table({
      {"patch_embedding.", "patch_embedding."},
      {"text_embedding.0.", "condition_embedder.text_embedder.linear_1."},
      {"text_embedding.2.", "condition_embedder.text_embedder.linear_2."},
      {"time_embedding.0.", "condition_embedder.time_embedder.linear_1."},
      {"time_embedding.2.", "condition_embedder.time_embedder.linear_2."},
      {"time_projection.1.", "condition_embedder.time_proj."},
      {"img_emb.proj.0.", "condition_embedder.image_embedder.norm1."},
      {"img_emb.proj.1.", "condition_embedder.image_embedder.ff.net.0.proj."},
      {"img_emb.proj.3.", "condition_embedder.image_embedder.ff.net.2."},
      {"img_emb.proj.4.", "condition_embedder.image_embedder.norm2."},
      {"blocks.#.self_attn.q.", "blocks.#.attn1.to_q."},
      {"blocks.#.self_attn.k.", "blocks.#.attn1.to_k."},
      {"blocks.#.self_attn.v.", "blocks.#.attn1.to_v."},
      {"blocks.#.self_attn.o.", "blocks.#.attn1.to_out.0."},
      {"blocks.#.self_attn.norm_q.", "blocks.#.attn1.norm_q."},
      {"blocks.#.self_attn.norm_k.", "blocks.#.attn1.norm_k."},
      {"blocks.#.cross_attn.q.", "blocks.#.attn2.to_q."},
      {"blocks.#.cross_attn.k.", "blocks.#.attn2.to_k."},
      {"blocks.#.cross_attn.v.", "blocks.#.attn2.to_v."},
      {"blocks.#.cross_attn.o.", "blocks.#.attn2.to_out.0."},
      {"blocks.#.cross_attn.norm_q.", "blocks.#.attn2.norm_q."},
      {"blocks.#.cross_attn.norm_k.", "blocks.#.attn2.norm_k."},
      {"blocks.#.cross_attn.k_img.", "blocks.#.attn2.add_k_proj."},
      {"blocks.#.cross_attn.v_img.", "blocks.#.attn2.add_v_proj."},
      {"blocks.#.cross_attn.norm_k_img.", "blocks.#.attn2.norm_added_k."},
      // The original calls its norms norm1 (self-attention), norm3 (cross-attention, the only
      // one with weights) and norm2 (feed-forward); diffusers numbers them in order.
      {"blocks.#.norm3.", "blocks.#.norm2."},
      {"blocks.#.ffn.0.", "blocks.#.ffn.net.0.proj."},
      {"blocks.#.ffn.2.", "blocks.#.ffn.net.2."},
      {"blocks.#.modulation", "blocks.#.scale_shift_table"},
      {"head.head.", "proj_out."},
      {"head.modulation", "scale_shift_table"},
  });
  return table;
}

std::optional<std::string> wan_original_prefix(const std::vector<io::TensorInfo>& tensors) {
  bool plain[2] = {false, false}, prefixed[2] = {false, false};
  const std::string p = kComfyUIDiffusionPrefix;
  for (const auto& t : tensors) {
    if (t.name == "head.modulation") plain[0] = true;
    if (t.name == "blocks.0.self_attn.q.weight") plain[1] = true;
    if (t.name == p + "head.modulation") prefixed[0] = true;
    if (t.name == p + "blocks.0.self_attn.q.weight") prefixed[1] = true;
  }
  if (plain[0] && plain[1]) return std::string();
  if (prefixed[0] && prefixed[1]) return p;
  return std::nullopt;
}

WanModelConfig WanModelConfig::from_json(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) throw LoadError(source, "Wan config must be a JSON object");
  config::Problems problems;
  config::check_keys(json, "", {},
                     {"dim", "ffn_dim", "freq_dim", "in_dim", "out_dim", "num_heads", "num_layers", "eps", "model_type",
                      "text_len", "patch_size", "text_dim", "qk_norm", "cross_attn_norm", "window_size"},
                     problems);
  if (json.contains("_class_name") && json.at("_class_name") != "WanModel")
    problems.push_back("_class_name is " + json.at("_class_name").dump() + ", expected \"WanModel\"");
  WanModelConfig c;
  nlohmann::json& t = c.transformer;
  t = nlohmann::json::object();
  const auto copy_int = [&](const char* from, const char* to) {
    int64_t v = 0;
    if (config::read(json, "", from, v, problems)) t[to] = v;
  };
  copy_int("in_dim", "in_channels");
  copy_int("out_dim", "out_channels");
  copy_int("ffn_dim", "ffn_dim");
  copy_int("freq_dim", "freq_dim");
  copy_int("num_layers", "num_layers");
  copy_int("text_dim", "text_dim");
  double eps = 0;
  if (config::read(json, "", "eps", eps, problems)) t["eps"] = eps;
  std::vector<int64_t> patch;
  if (config::read(json, "", "patch_size", patch, problems)) t["patch_size"] = patch;
  bool flag = false;
  if (config::read(json, "", "cross_attn_norm", flag, problems)) t["cross_attn_norm"] = flag;
  if (config::read(json, "", "qk_norm", flag, problems)) t["qk_norm"] = flag ? "rms_norm_across_heads" : "none";
  int64_t dim = 0, heads = 0;
  const bool has_dim = config::read(json, "", "dim", dim, problems);
  const bool has_heads = config::read(json, "", "num_heads", heads, problems);
  if (has_heads && heads <= 0) problems.push_back("num_heads must be positive");
  else if (has_heads && has_dim && dim % heads != 0)
    problems.push_back("dim " + std::to_string(dim) + " is not a multiple of num_heads " + std::to_string(heads));
  else if (has_heads) t["num_attention_heads"] = heads;
  if (has_dim) t["_dim"] = dim;  // the hidden size: heads * head size (infer_wan_transformer_config)
  std::vector<int64_t> window;
  if (config::read(json, "", "window_size", window, problems) && window != std::vector<int64_t>{-1, -1})
    problems.push_back("window_size (local attention) is not supported; only [-1, -1]");
  config::read(json, "", "model_type", c.model_type, problems);
  if (c.model_type != "t2v" && c.model_type != "i2v")
    problems.push_back("model_type \"" + c.model_type + "\" is not supported (t2v and i2v are; flf2v and vace are not)");
  config::read(json, "", "text_len", c.text_len, problems);
  if (c.text_len < 1) problems.push_back("text_len must be positive");
  if (!problems.empty()) throw LoadError(source, "invalid Wan config: " + config::describe(problems));
  return c;
}

WanModelConfig WanModelConfig::from_file(const std::string& path) { return from_json(config::read_file(path), path); }

nlohmann::json infer_wan_transformer_config(const std::vector<io::TensorInfo>& tensors, const std::string& prefix,
                                            const nlohmann::json& overrides, const std::string& source) {
  const TensorIndex n(tensors, prefix);
  if (n.find("img_emb.emb_pos"))
    throw LoadError(source, prefix + "img_emb.emb_pos", "a first-last-frame-to-video (FLF2V) model; not supported");
  if (n.find("vace_patch_embedding.weight"))
    throw LoadError(source, prefix + "vace_patch_embedding.weight", "a VACE model; not supported");
  const auto& patch = n.need("patch_embedding.weight", 5, source).shape;  // [D, in, pt, ph, pw]
  const auto& text = n.need("text_embedding.0.weight", 2, source).shape;  // [D, text_dim]
  const auto& time = n.need("time_embedding.0.weight", 2, source).shape;  // [D, freq_dim]
  const auto& ffn = n.need("blocks.0.ffn.0.weight", 2, source).shape;     // [ffn_dim, D]
  const auto& head = n.need("head.head.weight", 2, source).shape;         // [out * pt*ph*pw, D]
  const int64_t dim = patch[0], patch_volume = patch[2] * patch[3] * patch[4];
  if (patch_volume <= 0 || head[0] % patch_volume != 0)
    throw LoadError(source, prefix + "head.head.weight",
                    "shape " + io::shape_string(head) + " is not a multiple of the patch volume " +
                        std::to_string(patch_volume));
  int64_t layers = 0;
  while (n.find("blocks." + std::to_string(layers) + ".modulation")) ++layers;

  nlohmann::json c = {{"patch_size", {patch[2], patch[3], patch[4]}},
                      {"in_channels", patch[1]},
                      {"out_channels", head[0] / patch_volume},
                      {"text_dim", text[1]},
                      {"freq_dim", time[1]},
                      {"ffn_dim", ffn[0]},
                      {"num_layers", layers},
                      {"cross_attn_norm", n.find("blocks.0.norm3.weight") != nullptr},
                      {"qk_norm", "rms_norm_across_heads"},
                      {"eps", 1e-6},
                      {"rope_max_seq_len", 1024}};
  if (n.find("img_emb.proj.1.weight")) {
    c["image_dim"] = n.need("img_emb.proj.1.weight", 2, source).shape[1];
    c["added_kv_proj_dim"] = dim;
  }

  // Heads: the overrides' (either count or size gives the other), else 128-wide.
  const nlohmann::json o = overrides.is_object() ? overrides : nlohmann::json::object();
  const int64_t config_dim = is_int(o, "_dim") ? o.at("_dim").get<int64_t>() : dim;
  int64_t heads = 0, head_dim = 0;
  if (is_int(o, "num_attention_heads") && is_int(o, "attention_head_dim")) {
    heads = o.at("num_attention_heads").get<int64_t>(), head_dim = o.at("attention_head_dim").get<int64_t>();
  } else if (is_int(o, "num_attention_heads")) {
    heads = o.at("num_attention_heads").get<int64_t>();
    if (heads <= 0 || config_dim % heads != 0)
      throw LoadError(source, "num_attention_heads " + std::to_string(heads) + " does not divide the hidden size " +
                                  std::to_string(config_dim));
    head_dim = config_dim / heads;
  } else if (is_int(o, "attention_head_dim")) {
    head_dim = o.at("attention_head_dim").get<int64_t>();
    if (head_dim <= 0 || config_dim % head_dim != 0)
      throw LoadError(source, "attention_head_dim " + std::to_string(head_dim) + " does not divide the hidden size " +
                                  std::to_string(config_dim));
    heads = config_dim / head_dim;
  } else if (config_dim % kWanHeadDim == 0) {
    heads = config_dim / kWanHeadDim, head_dim = kWanHeadDim;
  } else {
    throw LoadError(source, "the hidden size " + std::to_string(config_dim) +
                                " is not a multiple of Wan's 128-wide heads; give the head count in --model-config: "
                                "{\"transformer\": {\"num_attention_heads\": N}}");
  }
  nlohmann::json rest = o;
  rest.erase("_dim");
  c.merge_patch(rest);
  c["num_attention_heads"] = heads;
  c["attention_head_dim"] = head_dim;
  if (c.contains("added_kv_proj_dim") && !c.at("added_kv_proj_dim").is_null() && !o.contains("added_kv_proj_dim"))
    c["added_kv_proj_dim"] = heads * head_dim;
  return c;
}

}  // namespace genvis::models
