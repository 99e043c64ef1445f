// A whole R-precision run as `genvis eval r-precision` and the public API make it: choose captions
// of a dataset split, generate one image per caption with any registered pipeline (or take the
// dataset's own images), and rank the captions in a contrastive encoder's space.
//
//   RPrecisionRun run;  run.encoder = "models/genvis-contrastive-emoji";  run.model = "models/genvis-emoji-32";
//   nlohmann::ordered_json report = run_r_precision(run);   // {"metric": "r_precision", "value": ..., ...}
#pragma once
#include <ATen/ATen.h>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace genvis::eval {

struct RPrecisionRun {
  std::string encoder;        // contrastive encoder folder (required)
  std::string model;          // model to generate with (required unless images_from_dataset)
  bool images_from_dataset = false;
  std::string dataset = "emoji", path, split = "train";
  int64_t num = 200, k = 100, resolution = 0, size = 0;
  uint64_t seed = 0;          // caption choice, distractors, and image i's noise seed (seed + i)
  int64_t steps = 20;
  double cfg_scale = 7.0;
  std::string sampler = "euler";
  at::Device device = at::Device(at::kCPU);
  at::ScalarType dtype = at::kFloat;
};

// UsageError naming the field ('num', 'k', 'size', ...) for a bad setting; LoadError for a model
// or encoder that cannot be loaded.
nlohmann::ordered_json run_r_precision(const RPrecisionRun& run);

}  // namespace genvis::eval
