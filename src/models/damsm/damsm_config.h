// Configuration of genvis' DAMSM (AttnGAN's Deep Attentional Multimodal Similarity Model), as
// written to `config.json` in its folder.
//
//   auto config = genvis::models::DamsmConfig::from_file("damsm/config.json");
//
// {"model_type": "genvis_damsm", "embedding_dim": 256, "gamma1": 4, "gamma2": 5, "gamma3": 10,
//  "text_config": {"vocab_size": 1024, "word_embedding_dim": 300, "max_length": 18,
//                  "dropout": 0.5},
//  "vision_config": {"image_size": 64, "block_out_channels": [32, 64, 128, 256],
//                    "layers_per_block": 1, "norm_num_groups": 8, "region_level": 2}}
//
// embedding_dim is AttnGAN's TEXT.EMBEDDING_DIM: the width of word, sentence, region and global
// image features alike (the bidirectional LSTM has embedding_dim / 2 units each way).
// text_config.max_length: captions are cut to their first max_length tokens (AttnGAN's
// WORDS_NUM). vision_config.region_level: the level whose feature map gives the region
// features (0 = the first, image_size pixels; each later level halves the side).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::models {

struct DamsmTextConfig {
  int64_t vocab_size = 1024;
  int64_t word_embedding_dim = 300;
  int64_t max_length = 18;
  double dropout = 0.5;
};

struct DamsmVisionConfig {
  int64_t image_size = 64;
  std::vector<int64_t> block_out_channels = {32, 64, 128, 256};
  int64_t layers_per_block = 1;
  int64_t norm_num_groups = 8;
  int64_t region_level = 2;

  // The side of the region feature map: image_size / 2^region_level.
  int64_t region_side() const { return image_size >> region_level; }
};

struct DamsmConfig {
  int64_t embedding_dim = 256;
  double gamma1 = 4.0;
  double gamma2 = 5.0;
  double gamma3 = 10.0;
  DamsmTextConfig text_config;
  DamsmVisionConfig vision_config;

  // Every problem at once; empty when the config is usable.
  std::vector<std::string> validate() const;
  // Every unknown key (at any level), wrongly-typed and invalid value in one LoadError naming
  // `source`. Missing keys keep their defaults.
  static DamsmConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static DamsmConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace genvis::models
