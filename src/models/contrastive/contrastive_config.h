// Configuration of genvis' contrastive text-image encoder (a small CLIP), as written to
// `config.json` in its folder. Field names follow transformers' CLIPConfig where one exists
// (projection_dim, logit_scale_init_value, text_config, vision_config).
//
//   auto config = genvis::models::ContrastiveConfig::from_file("encoder/config.json");
//   nlohmann::json j = config.to_json();     // from_json(j) gives the same config back
//
// {"projection_dim": 128, "logit_scale_init_value": 2.6592,
//  "vision_config": {"image_size": 32, "block_out_channels": [32, 64, 128, 256],
//                    "layers_per_block": 1, "norm_num_groups": 8},
//  "text_config": {CLIPTextConfig keys: "vocab_size", "hidden_size", ... }}
//
// text_config.max_position_embeddings is the text context length: captions are truncated to it
// (BOS + ids + EOS), and padded with EOS; the pooled token is the first EOS.
#pragma once
#include "models/clip_text/clip_text_config.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::models {

struct ContrastiveVisionConfig {
  int64_t image_size = 32;  // inputs are resized to image_size x image_size
  std::vector<int64_t> block_out_channels = {32, 64, 128, 256};  // one level each; /2 between levels
  int64_t layers_per_block = 1;
  int64_t norm_num_groups = 8;
};

struct ContrastiveConfig {
  int64_t projection_dim = 128;
  double logit_scale_init_value = 2.6592;  // log(1 / 0.07), CLIP's initial temperature
  ContrastiveVisionConfig vision_config;
  CLIPTextConfig text_config;

  // Every problem at once; empty when the config is usable.
  std::vector<std::string> validate() const;

  // Every unknown key (at any level), wrongly-typed and invalid value in one LoadError naming
  // `source`. Missing keys keep their defaults.
  static ContrastiveConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static ContrastiveConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace genvis::models
