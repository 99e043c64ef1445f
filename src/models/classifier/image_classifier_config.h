// Configuration of genvis' image classifier (the Fashion-MNIST feature encoder of the evaluation
// suite), as written to `config.json` in its folder. Field names follow ContrastiveVisionConfig
// and diffusers where one exists (block_out_channels, layers_per_block, norm_num_groups).
//
//   auto config = genvis::models::ImageClassifierConfig::from_file("classifier/config.json");
//   nlohmann::json j = config.to_json();     // from_json(j) gives the same config back
//
// {"model_type": "genvis_image_classifier", "in_channels": 1, "image_size": 28,
//  "block_out_channels": [32, 64, 128], "layers_per_block": 2, "norm_num_groups": 8,
//  "pool_size": 3, "feature_dim": 128, "num_classes": 10, "class_names": ["T-shirt/top", ...]}
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::models {

struct ImageClassifierConfig {
  int64_t in_channels = 1;  // 1: grey (RGB inputs are converted with ITU-R 601 weights) or 3: RGB
  int64_t image_size = 28;  // inputs are resized to image_size x image_size
  std::vector<int64_t> block_out_channels = {32, 64, 128};  // one level each; 2x2 max pool between levels
  int64_t layers_per_block = 2;                             // conv3x3 -> GroupNorm -> SiLU, per level
  int64_t norm_num_groups = 8;
  int64_t pool_size = 3;      // the last level is average-pooled to pool_size x pool_size, then flattened
  int64_t feature_dim = 128;  // the penultimate layer: the features (FID) the head classifies
  int64_t num_classes = 10;
  std::vector<std::string> class_names;  // empty, or num_classes names (by label)

  // Every problem at once; empty when the config is usable.
  std::vector<std::string> validate() const;

  // Every unknown key, wrongly-typed and invalid value in one LoadError naming `source`. Missing
  // keys keep their defaults.
  static ImageClassifierConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static ImageClassifierConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace genvis::models
