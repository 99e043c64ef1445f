#include "models/clip_text/clip_text_config.h"

#include "core/error.h"
#include "core/file.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

namespace genvis::models {
namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;

template <typename T>
void read_field(const nlohmann::json& json, const char* key, T& field, std::vector<std::string>& problems) {
  const auto it = json.find(key);
  if (it == json.end() || it->is_null()) return;
  try {
    if constexpr (std::is_same_v<T, int64_t>) {
      if (!it->is_number_integer()) throw std::invalid_argument("expected an integer");
    } else if constexpr (std::is_same_v<T, double>) {
      if (!it->is_number()) throw std::invalid_argument("expected a number");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) throw std::invalid_argument("expected a string");
    } else {
      if (!it->is_array() || !std::all_of(it->begin(), it->end(), [](const auto& x) { return x.is_string(); }))
        throw std::invalid_argument("expected a list of strings");
    }
    field = it->get<T>();
  } catch (const std::exception& e) {
    problems.push_back(std::string(key) + ": " + e.what() + " (got " + it->dump() + ")");
  }
}

}  // namespace

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
  CLIPTextConfig c;
  std::vector<std::string> problems;
  read_field(json, "architectures", c.architectures, problems);
  read_field(json, "vocab_size", c.vocab_size, problems);
  read_field(json, "hidden_size", c.hidden_size, problems);
  read_field(json, "intermediate_size", c.intermediate_size, problems);
  read_field(json, "projection_dim", c.projection_dim, problems);
  read_field(json, "num_hidden_layers", c.num_hidden_layers, problems);
  read_field(json, "num_attention_heads", c.num_attention_heads, problems);
  read_field(json, "max_position_embeddings", c.max_position_embeddings, problems);
  read_field(json, "hidden_act", c.hidden_act, problems);
  read_field(json, "layer_norm_eps", c.layer_norm_eps, problems);
  read_field(json, "attention_dropout", c.attention_dropout, problems);
  read_field(json, "dropout", c.dropout, problems);
  read_field(json, "pad_token_id", c.pad_token_id, problems);
  read_field(json, "bos_token_id", c.bos_token_id, problems);
  read_field(json, "eos_token_id", c.eos_token_id, problems);
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) {
    std::string what = "invalid CLIP text config (" + std::to_string(problems.size()) + " problems): ";
    for (size_t i = 0; i < problems.size(); ++i) what += (i ? "; " : "") + problems[i];
    throw LoadError(source, what);
  }
  return c;
}

CLIPTextConfig CLIPTextConfig::from_file(const std::string& path) {
  const std::string text = read_text_file(path, kMaxConfigBytes);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw LoadError(path, std::string("not valid JSON: ") + e.what());
  }
  return from_json(json, path);
}

}  // namespace genvis::models
