// Configuration of a DF-GAN (Tao et al. 2022, "DF-GAN: A Simple and Effective Baseline for
// Text-to-Image Synthesis"), as written to `config.json` in its generator folder.
//
//   auto config = genvis::models::DFGANConfig::from_file("generator/config.json");
//
// {"model_type": "genvis_dfgan", "image_size": 64, "ngf": 32, "ndf": 32, "z_dim": 100,
//  "cond_dim": 256, "output": "tanh"}
//
// The official code's sizes: the generator maps z through a linear layer to 8*ngf x 4 x 4 (fewer
// below 64 px), then
// log2(image_size) - 2 upsampling blocks with channels ngf * min(2^i, 8) (widest first); the
// discriminator mirrors it with downsampling blocks to 8*ndf x 4 x 4. cond_dim is the sentence
// vector's width (the DAMSM's embedding_dim); each fusion block's affine layers see [z, sentence].
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace genvis::models {

struct DFGANConfig {
  int64_t image_size = 64;
  int64_t ngf = 32;
  int64_t ndf = 32;
  int64_t z_dim = 100;
  int64_t cond_dim = 256;
  // The generator's last step: "tanh" (the paper's) or "clamp" (no squashing while training, the
  // discriminator sees the raw values and pushes them back into range; clamped to [-1, 1] in eval
  // mode). On data with large flat white areas (emoji) the tanh generator saturates towards white
  // within a few dozen steps and its gradient vanishes for good (docs/results.md).
  std::string output = "tanh";

  // (in, out) channels of the generator's blocks (widest first) and of the discriminator's.
  std::vector<std::pair<int64_t, int64_t>> generator_channels() const;
  std::vector<std::pair<int64_t, int64_t>> discriminator_channels() const;
  // The 4x4 map's channels: what fc makes (8 * ngf from 64 px up) and what NetC reads (8 * ndf).
  int64_t generator_fc_channels() const;
  int64_t discriminator_out_channels() const;

  std::vector<std::string> validate() const;
  static DFGANConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static DFGANConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace genvis::models
