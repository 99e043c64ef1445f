// The dVAE recipe (`genvis train dvae`): DALL·E's discrete VAE (models/dalle/dvae.h) trained on
// one dataset, as the paper trains it, and reported on its reconstructions and codebook use.
//
//   auto config = genvis::train::DVAERecipeConfig::from_file("configs/dvae-emoji.json");
//   auto r = genvis::train::run_dvae_recipe(config, {.out_dir = "runs/dvae"});
//   // r.model_dir: config.json + model.safetensors; <out>/reconstruction.json
//
// Config: {"seed", "dataset": {...}, "model": {DVAEConfig keys but image_size, which is
// dataset.resolution}, "loss": {"reconstruction": "logit_laplace" | "mse", "straight_through",
// "foreground_weight" (0: off; object pixels weigh 1 + w in the reconstruction term),
// "kl_weight" (6.6), "kl_warmup_steps", "temperature_start" (1), "temperature_end" (1/16),
// "temperature_steps"}, "batch_size", "hflip", "report": {"num"}, "train": {...}}.
// Warm-up and annealing default to a quarter and the whole of train.steps (the paper: KL weight
// 0 -> 6.6 over 5,000 updates, temperature 1 -> 1/16 over 150,000, both half-cosine).
//
// Stages, each skipped when its output exists:
//   1 data    the split rendered once at dataset.resolution, in memory
//   2 train   a batch of batch_size random images per step (the step's Rng; flipped where the
//             caption allows and hflip), loss = reconstruction + kl_weight(step) * KL, the
//             Gumbel-softmax at temperature(step); validation (train.validate_every) logs the
//             reconstruction of a fixed batch with hard codes to <out>/train/validation.jsonl
//   3 export  <out>/model (save_dvae)
//   4 report  <out>/reconstruction.json: PSNR and MSE of the argmax codes' reconstructions of the
//             first report.num images, codebook perplexity and dead codes over them; a sheet of
//             originals above reconstructions in <out>/samples/
#pragma once
#include "models/dalle/dalle_config.h"
#include "train/recipe_config.h"
#include "train/text_image_encoder_recipe.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::train {

struct DVAERecipeConfig {
  uint64_t seed = 0;
  recipe::DatasetSection dataset;
  nlohmann::json model_config = nlohmann::json::object();
  std::string reconstruction = "logit_laplace";
  bool straight_through = false;
  double foreground_weight = 0.0;  // loss.foreground_weight: object pixels weigh 1 + this (train/foreground_weights.h)
  double kl_weight = 6.6;
  int64_t kl_warmup_steps = -1;  // -1: train.steps / 4
  double temperature_start = 1.0, temperature_end = 1.0 / 16;
  int64_t temperature_steps = -1;  // -1: train.steps
  int64_t batch_size = 32;
  bool hflip = true;
  int64_t report_num = 256;
  TrainConfig train;

  models::DVAEConfig model() const;  // model_config with image_size = dataset.resolution
  int64_t kl_warmup() const { return kl_warmup_steps >= 0 ? kl_warmup_steps : train.steps / 4; }
  int64_t temperature_anneal() const { return temperature_steps >= 0 ? temperature_steps : train.steps; }

  // Reads the keys above from j (a whole config, or the "dvae" section of a DALL·E config, where
  // `seed` and `dataset` come from the caller: with_dataset false).
  static DVAERecipeConfig from_json(const nlohmann::json& json, const std::string& source = "recipe config",
                                    bool with_dataset = true);
  static DVAERecipeConfig from_file(const std::string& path);
};

struct DVAERecipeResult {
  std::string model_dir;                  // <out>/model
  std::vector<std::string> ran, skipped;  // stage names
  bool interrupted = false;
  nlohmann::json report;                  // reconstruction.json's content
};

DVAERecipeResult run_dvae_recipe(const DVAERecipeConfig& config, const TextImageEncoderRecipeOptions& options);

}  // namespace genvis::train
