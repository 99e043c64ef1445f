#include "models/classifier/image_classifier_config.h"

#include "core/config_reader.h"
#include "core/error.h"

#include <algorithm>
#include <set>

namespace genvis::models {
namespace {

using json = nlohmann::json;

}  // namespace

std::vector<std::string> ImageClassifierConfig::validate() const {
  std::vector<std::string> problems;
  if (in_channels != 1 && in_channels != 3) problems.push_back("in_channels must be 1 (grey) or 3 (RGB)");
  if (image_size < 4 || image_size > 1024) problems.push_back("image_size must be in 4..1024");
  if (block_out_channels.empty() || block_out_channels.size() > 8)
    problems.push_back("block_out_channels must have 1..8 levels");
  if (layers_per_block < 1) problems.push_back("layers_per_block must be >= 1");
  if (norm_num_groups < 1) {
    problems.push_back("norm_num_groups must be >= 1");
  } else {
    for (const int64_t c : block_out_channels)
      if (c < 1 || c % norm_num_groups != 0)
        problems.push_back("block_out_channels: " + std::to_string(c) + " is not a positive multiple of norm_num_groups " +
                           std::to_string(norm_num_groups));
  }
  const auto levels = static_cast<int64_t>(block_out_channels.size());
  if (levels >= 1 && levels <= 8 && image_size >= 4 && (image_size >> (levels - 1)) < 1)
    problems.push_back("image_size " + std::to_string(image_size) + " is too small for " + std::to_string(levels) +
                       " levels (one halving between levels)");
  if (pool_size < 1 || pool_size > 16) problems.push_back("pool_size must be in 1..16");
  if (feature_dim < 1) problems.push_back("feature_dim must be >= 1");
  if (num_classes < 2) problems.push_back("num_classes must be >= 2");
  if (!class_names.empty() && static_cast<int64_t>(class_names.size()) != num_classes)
    problems.push_back("class_names has " + std::to_string(class_names.size()) + " names for num_classes " +
                       std::to_string(num_classes));
  return problems;
}

ImageClassifierConfig ImageClassifierConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw LoadError(source, "image classifier config must be a JSON object");
  ImageClassifierConfig c;
  std::vector<std::string> problems;
  const std::set<std::string> known = {"model_type",      "in_channels",     "image_size",  "block_out_channels",
                                       "layers_per_block", "norm_num_groups", "pool_size", "feature_dim", "num_classes",
                                       "class_names"};
  config::check_keys(j, "", {}, known, problems);
  if (j.contains("model_type") && j.at("model_type") != "genvis_image_classifier")
    problems.push_back("model_type must be \"genvis_image_classifier\", got " + j.at("model_type").dump());
  config::read(j, "", "in_channels", c.in_channels, problems);
  config::read(j, "", "image_size", c.image_size, problems);
  config::read(j, "", "block_out_channels", c.block_out_channels, problems);
  config::read(j, "", "layers_per_block", c.layers_per_block, problems);
  config::read(j, "", "norm_num_groups", c.norm_num_groups, problems);
  config::read(j, "", "pool_size", c.pool_size, problems);
  config::read(j, "", "feature_dim", c.feature_dim, problems);
  config::read(j, "", "num_classes", c.num_classes, problems);
  config::read(j, "", "class_names", c.class_names, problems);
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) {
    std::string what = "invalid image classifier config (" + std::to_string(problems.size()) + " problems): ";
    for (size_t i = 0; i < problems.size(); ++i) what += (i ? "; " : "") + problems[i];
    throw LoadError(source, what);
  }
  return c;
}

ImageClassifierConfig ImageClassifierConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path, config::kMaxModelConfigBytes), path);
}

json ImageClassifierConfig::to_json() const {
  return {{"model_type", "genvis_image_classifier"},
          {"in_channels", in_channels},
          {"image_size", image_size},
          {"block_out_channels", block_out_channels},
          {"layers_per_block", layers_per_block},
          {"norm_num_groups", norm_num_groups},
          {"pool_size", pool_size},
          {"feature_dim", feature_dim},
          {"num_classes", num_classes},
          {"class_names", class_names}};
}

}  // namespace genvis::models
