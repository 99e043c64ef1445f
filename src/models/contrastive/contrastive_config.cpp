#include "models/contrastive/contrastive_config.h"

#include "core/config_reader.h"
#include "core/error.h"

#include <algorithm>
#include <set>

namespace genvis::models {
namespace {

using json = nlohmann::json;

json text_config_json(const CLIPTextConfig& c) {
  return {{"vocab_size", c.vocab_size},
          {"hidden_size", c.hidden_size},
          {"intermediate_size", c.intermediate_size},
          {"num_hidden_layers", c.num_hidden_layers},
          {"num_attention_heads", c.num_attention_heads},
          {"max_position_embeddings", c.max_position_embeddings},
          {"hidden_act", c.hidden_act},
          {"layer_norm_eps", c.layer_norm_eps},
          {"pad_token_id", c.pad_token_id},
          {"bos_token_id", c.bos_token_id},
          {"eos_token_id", c.eos_token_id}};
}

}  // namespace

std::vector<std::string> ContrastiveConfig::validate() const {
  std::vector<std::string> problems;
  if (projection_dim < 1) problems.push_back("projection_dim must be >= 1");
  if (!(logit_scale_init_value >= 0 && logit_scale_init_value <= 4.6052))
    problems.push_back("logit_scale_init_value must be in [0, log(100)]");
  const auto& v = vision_config;
  if (v.image_size < 8 || v.image_size > 1024) problems.push_back("vision_config.image_size must be in 8..1024");
  if (v.block_out_channels.empty()) problems.push_back("vision_config.block_out_channels must not be empty");
  if (v.layers_per_block < 1) problems.push_back("vision_config.layers_per_block must be >= 1");
  if (v.norm_num_groups < 1) {
    problems.push_back("vision_config.norm_num_groups must be >= 1");
  } else {
    for (const int64_t c : v.block_out_channels)
      if (c < 1 || c % v.norm_num_groups != 0)
        problems.push_back("vision_config.block_out_channels: " + std::to_string(c) +
                           " is not a positive multiple of norm_num_groups " + std::to_string(v.norm_num_groups));
  }
  const auto levels = static_cast<int64_t>(v.block_out_channels.size());
  if (levels > 0 && levels < 16 && v.image_size % (int64_t{1} << (levels - 1)) != 0)
    problems.push_back("vision_config.image_size " + std::to_string(v.image_size) + " is not divisible by 2^" +
                       std::to_string(levels - 1) + " (one halving between levels)");
  if (text_config.max_position_embeddings < 3) problems.push_back("text_config.max_position_embeddings must be >= 3");
  for (const auto& p : text_config.validate()) problems.push_back("text_config." + p);
  return problems;
}

ContrastiveConfig ContrastiveConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw LoadError(source, "contrastive encoder config must be a JSON object");
  ContrastiveConfig c;
  std::vector<std::string> problems;
  config::check_keys(j, "", {}, {"projection_dim", "logit_scale_init_value", "vision_config", "text_config", "model_type"},
                     problems);
  config::read(j, "", "projection_dim", c.projection_dim, problems);
  config::read(j, "", "logit_scale_init_value", c.logit_scale_init_value, problems);

  if (j.contains("vision_config")) {
    const json& v = j.at("vision_config");
    if (!v.is_object()) {
      problems.push_back("vision_config must be a JSON object");
    } else {
      config::check_keys(v, "vision_config", {}, {"image_size", "block_out_channels", "layers_per_block", "norm_num_groups"},
                         problems);
      config::read(v, "vision_config", "image_size", c.vision_config.image_size, problems);
      config::read(v, "vision_config", "block_out_channels", c.vision_config.block_out_channels, problems);
      config::read(v, "vision_config", "layers_per_block", c.vision_config.layers_per_block, problems);
      config::read(v, "vision_config", "norm_num_groups", c.vision_config.norm_num_groups, problems);
    }
  }

  // The CLIP text encoder's own keys; its parser reports its values, this one unknown keys.
  c.text_config.max_position_embeddings = 32;
  if (j.contains("text_config")) {
    const json& t = j.at("text_config");
    if (!t.is_object()) {
      problems.push_back("text_config must be a JSON object");
    } else {
      json merged = text_config_json(c.text_config);
      std::set<std::string> known;
      for (const auto& [key, value] : merged.items()) known.insert(key);
      config::check_keys(t, "text_config", {}, known, problems);
      for (const auto& [key, value] : t.items())
        if (known.count(key)) merged[key] = value;
      try {
        c.text_config = CLIPTextConfig::from_json(merged, "text_config");
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    }
  }
  c.text_config.architectures = {"CLIPTextModel"};
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) {
    std::string what = "invalid contrastive encoder config (" + std::to_string(problems.size()) + " problems): ";
    for (size_t i = 0; i < problems.size(); ++i) what += (i ? "; " : "") + problems[i];
    throw LoadError(source, what);
  }
  return c;
}

ContrastiveConfig ContrastiveConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path, config::kMaxModelConfigBytes), path);
}

json ContrastiveConfig::to_json() const {
  return {{"model_type", "genvis_contrastive"},
          {"projection_dim", projection_dim},
          {"logit_scale_init_value", logit_scale_init_value},
          {"vision_config",
           {{"image_size", vision_config.image_size},
            {"block_out_channels", vision_config.block_out_channels},
            {"layers_per_block", vision_config.layers_per_block},
            {"norm_num_groups", vision_config.norm_num_groups}}},
          {"text_config", text_config_json(text_config)}};
}

}  // namespace genvis::models
