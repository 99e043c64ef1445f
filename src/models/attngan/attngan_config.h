// Configuration of an AttnGAN (Xu et al. 2018, "AttnGAN: Fine-Grained Text to Image Generation
// with Attentional Generative Adversarial Networks"), as written to `config.json` in its generator
// folder.
//
//   auto config = genvis::models::AttnGANConfig::from_file("generator/config.json");
//
// {"model_type": "genvis_attngan", "image_size": 64, "branch_num": 3, "gf_dim": 32, "df_dim": 32,
//  "z_dim": 100, "condition_dim": 100, "embedding_dim": 256, "r_num": 2}
//
// The official code's hyper-parameters (cfg.GAN.*, cfg.TREE.BRANCH_NUM, cfg.TEXT.EMBEDDING_DIM),
// with the stage sizes scaled to our data: branch_num stages make images of image_size /
// 2^(branch_num - 1) (the base, >= 8 px), then twice that, ... up to image_size (the paper: 64,
// 128, 256; ours at 64 px: 16, 32, 64). The first stage maps [c, z] to gf_dim * 2^u channels at
// 4x4 and upsamples u = log2(base / 4) times to gf_dim channels (the paper's u = 4 from
// gf_dim * 16); each later stage attends over the words, adds r_num residual blocks and upsamples
// once. Each stage's discriminator encodes its image to 8 * df_dim channels at 4x4.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::models {

struct AttnGANConfig {
  int64_t image_size = 64;
  int64_t branch_num = 3;
  int64_t gf_dim = 32;
  int64_t df_dim = 32;
  int64_t z_dim = 100;
  int64_t condition_dim = 100;
  int64_t embedding_dim = 256;  // the DAMSM's word and sentence width
  int64_t r_num = 2;

  int64_t base_size() const { return image_size >> (branch_num - 1); }
  std::vector<int64_t> stage_sizes() const;  // base_size() ... image_size
  int64_t init_upsamples() const;            // log2(base_size() / 4)

  std::vector<std::string> validate() const;
  static AttnGANConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static AttnGANConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace genvis::models
