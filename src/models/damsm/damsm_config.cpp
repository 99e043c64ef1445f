#include "models/damsm/damsm_config.h"

#include "core/config_reader.h"
#include "core/error.h"

namespace genvis::models {
namespace {

using json = nlohmann::json;

// The object at root[key] (absent: nothing to read); a problem when it is not an object.
const json* sub_object(const json& root, const char* key, std::vector<std::string>& problems) {
  if (!root.contains(key)) return nullptr;
  if (!root.at(key).is_object()) {
    problems.push_back(std::string(key) + " must be a JSON object");
    return nullptr;
  }
  return &root.at(key);
}

}  // namespace

std::vector<std::string> DamsmConfig::validate() const {
  std::vector<std::string> problems;
  if (embedding_dim < 2 || embedding_dim % 2 != 0) problems.push_back("embedding_dim must be an even number >= 2");
  for (const auto& [name, g] : {std::pair{"gamma1", gamma1}, std::pair{"gamma2", gamma2}, std::pair{"gamma3", gamma3}})
    if (!(g > 0 && g <= 100)) problems.push_back(std::string(name) + " must be in (0, 100]");
  const auto& t = text_config;
  if (t.vocab_size < 2) problems.push_back("text_config.vocab_size must be >= 2");
  if (t.word_embedding_dim < 1) problems.push_back("text_config.word_embedding_dim must be >= 1");
  if (t.max_length < 1 || t.max_length > 256) problems.push_back("text_config.max_length must be in 1..256");
  if (!(t.dropout >= 0 && t.dropout < 1)) problems.push_back("text_config.dropout must be in [0, 1)");
  const auto& v = vision_config;
  if (v.image_size < 8 || v.image_size > 1024) problems.push_back("vision_config.image_size must be in 8..1024");
  if (v.block_out_channels.size() < 2) problems.push_back("vision_config.block_out_channels needs at least 2 levels");
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
  if (v.region_level < 0 || v.region_level >= levels)
    problems.push_back("vision_config.region_level must name a level (0.." + std::to_string(levels - 1) + ")");
  return problems;
}

DamsmConfig DamsmConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw LoadError(source, "DAMSM config must be a JSON object");
  DamsmConfig c;
  std::vector<std::string> problems;
  config::check_keys(j, "", {}, {"model_type", "embedding_dim", "gamma1", "gamma2", "gamma3", "text_config", "vision_config"},
                     problems);
  config::read(j, "", "embedding_dim", c.embedding_dim, problems);
  config::read(j, "", "gamma1", c.gamma1, problems);
  config::read(j, "", "gamma2", c.gamma2, problems);
  config::read(j, "", "gamma3", c.gamma3, problems);
  if (const json* t = sub_object(j, "text_config", problems)) {
    config::check_keys(*t, "text_config", {}, {"vocab_size", "word_embedding_dim", "max_length", "dropout"}, problems);
    config::read(*t, "text_config", "vocab_size", c.text_config.vocab_size, problems);
    config::read(*t, "text_config", "word_embedding_dim", c.text_config.word_embedding_dim, problems);
    config::read(*t, "text_config", "max_length", c.text_config.max_length, problems);
    config::read(*t, "text_config", "dropout", c.text_config.dropout, problems);
  }
  if (const json* v = sub_object(j, "vision_config", problems)) {
    config::check_keys(*v, "vision_config", {},
                       {"image_size", "block_out_channels", "layers_per_block", "norm_num_groups", "region_level"}, problems);
    config::read(*v, "vision_config", "image_size", c.vision_config.image_size, problems);
    config::read(*v, "vision_config", "block_out_channels", c.vision_config.block_out_channels, problems);
    config::read(*v, "vision_config", "layers_per_block", c.vision_config.layers_per_block, problems);
    config::read(*v, "vision_config", "norm_num_groups", c.vision_config.norm_num_groups, problems);
    config::read(*v, "vision_config", "region_level", c.vision_config.region_level, problems);
  }
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) throw LoadError(source, "invalid DAMSM config: " + config::describe(problems));
  return c;
}

DamsmConfig DamsmConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path, config::kMaxModelConfigBytes), path);
}

json DamsmConfig::to_json() const {
  return {{"model_type", "genvis_damsm"},
          {"embedding_dim", embedding_dim},
          {"gamma1", gamma1},
          {"gamma2", gamma2},
          {"gamma3", gamma3},
          {"text_config",
           {{"vocab_size", text_config.vocab_size},
            {"word_embedding_dim", text_config.word_embedding_dim},
            {"max_length", text_config.max_length},
            {"dropout", text_config.dropout}}},
          {"vision_config",
           {{"image_size", vision_config.image_size},
            {"block_out_channels", vision_config.block_out_channels},
            {"layers_per_block", vision_config.layers_per_block},
            {"norm_num_groups", vision_config.norm_num_groups},
            {"region_level", vision_config.region_level}}}};
}

}  // namespace genvis::models
