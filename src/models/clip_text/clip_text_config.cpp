#include "models/clip_text/clip_text_config.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "models/transformers_config_keys.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace genvis::models {
bool CLIPTextConfig::has_projection() const {
  return std::find(architectures.begin(), architectures.end(), "CLIPTextModelWithProjection") != architectures.end();
}

std::vector<std::string> CLIPTextConfig::validate() const {
  std::vector<std::string> problems;
  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) problems.push_back(std::string(name) + " must be positive (got " + std::to_string(v) + ")");
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("projection_dim", projection_dim);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("max_position_embeddings", max_position_embeddings);
  if (hidden_size > 0 && num_attention_heads > 0 && hidden_size % num_attention_heads != 0)
    problems.push_back("hidden_size " + std::to_string(hidden_size) + " is not divisible by num_attention_heads " +
                       std::to_string(num_attention_heads));
  if (hidden_act != "quick_gelu" && hidden_act != "gelu")
    problems.push_back("hidden_act must be \"quick_gelu\" or \"gelu\" (got \"" + hidden_act + "\")");
  if (!(layer_norm_eps > 0)) {
    std::ostringstream s;
    s << "layer_norm_eps must be positive (got " << layer_norm_eps << ")";
    problems.push_back(s.str());
  }
  if (eos_token_id != 2 && (eos_token_id < 0 || eos_token_id >= vocab_size))
    problems.push_back("eos_token_id " + std::to_string(eos_token_id) + " is outside the vocabulary (vocab_size " +
                       std::to_string(vocab_size) + ")");
  for (const auto& a : architectures)
    if (a != "CLIPTextModel" && a != "CLIPTextModelWithProjection")
      problems.push_back("architectures: \"" + a + "\" is not a CLIP text model");
  return problems;
}

CLIPTextConfig CLIPTextConfig::from_json(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) throw LoadError(source, "CLIP text config must be a JSON object");
  static const std::set<std::string> kKeys = with_transformers_common_keys(
      {"vocab_size", "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers", "num_attention_heads",
       "max_position_embeddings", "hidden_act", "layer_norm_eps", "attention_dropout", "dropout"});
  CLIPTextConfig c;
  std::vector<std::string> problems;
  config::check_keys(json, "", {}, kKeys, problems);
  const auto read = [&](const char* key, auto& field) { config::read(json, "", key, field, problems); };
  read("architectures", c.architectures);
  read("vocab_size", c.vocab_size);
  read("hidden_size", c.hidden_size);
  read("intermediate_size", c.intermediate_size);
  read("projection_dim", c.projection_dim);
  read("num_hidden_layers", c.num_hidden_layers);
  read("num_attention_heads", c.num_attention_heads);
  read("max_position_embeddings", c.max_position_embeddings);
  read("hidden_act", c.hidden_act);
  read("layer_norm_eps", c.layer_norm_eps);
  read("attention_dropout", c.attention_dropout);
  read("dropout", c.dropout);
  read("pad_token_id", c.pad_token_id);
  read("bos_token_id", c.bos_token_id);
  read("eos_token_id", c.eos_token_id);
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) {
    std::string what = "invalid CLIP text config (" + std::to_string(problems.size()) + " problems): ";
    for (size_t i = 0; i < problems.size(); ++i) what += (i ? "; " : "") + problems[i];
    throw LoadError(source, what);
  }
  return c;
}

CLIPTextConfig CLIPTextConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path, config::kMaxModelConfigBytes), path);
}

}  // namespace genvis::models
