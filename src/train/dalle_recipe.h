// The DALL·E recipe (`genvis train dalle`): tokenizer, dVAE (trained first, or a given folder),
// the image tokens of the whole set, then the text+image-token transformer; exported as a
// genvis.DallePipeline folder (pipelines/dalle/dalle_pipeline.h).
//
//   auto config = genvis::train::DalleRecipeConfig::from_file("configs/dalle-emoji.json");
//   auto r = genvis::train::run_dalle_recipe(config, {.out_dir = "runs/dalle"});
//
// Config: {"seed", "dataset", "tokenizer": {"vocab_size"}, "dvae": FOLDER or {a dVAE recipe's
// keys but seed and dataset (train/dvae_recipe.h)}, "transformer": {"model": {DalleConfig keys;
// the vocabularies and grid are set by the recipe}, "batch_size", "caption_dropout" (0.1: the
// all-padding caption's share, for guidance on logits), "hflip", "train": {...}}, "reranker":
// optional ContrastiveEncoder folder copied into the model, "samples": captions in the validation
// sheet (8)}.
//
// Stages, each skipped when its output exists:
//   1 tokenizer  byte-level BPE on the split's captions -> <out>/tokenizer
//   2 dvae       the dVAE recipe into <out>/dvae (or the given folder)
//   3 codes      every image's tokens, and its mirror image's where the caption allows a flip,
//                -> <out>/codes.safetensors
//   4 train      per step batch_size random (caption, tokens) pairs from the step's Rng (the
//                mirrored tokens half the time where allowed, the all-padding caption with
//                caption_dropout), loss (text + 7 image) / 8; validation: the loss of a fixed
//                batch and a sheet of samples of fixed captions (top_k 0, temperature 1) in
//                <out>/samples/, to <out>/train/validation.jsonl
//   5 export     <out>/model (save_dalle_model)
#pragma once
#include "train/dvae_recipe.h"
#include "train/recipe_config.h"
#include "train/text_image_encoder_recipe.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::train {

struct DalleRecipeConfig {
  uint64_t seed = 0;
  recipe::DatasetSection dataset;
  int64_t vocab_size = 1024;
  std::string dvae_folder;   // a trained dVAE, or empty: dvae (below) is trained
  DVAERecipeConfig dvae;
  nlohmann::json model_config = nlohmann::json::object();
  int64_t batch_size = 32;
  double caption_dropout = 0.1;
  bool hflip = true;
  TrainConfig train;
  std::string reranker;
  int64_t samples = 8;

  static DalleRecipeConfig from_json(const nlohmann::json& json, const std::string& source = "recipe config");
  static DalleRecipeConfig from_file(const std::string& path);
};

struct DalleRecipeResult {
  std::string model_dir;                  // <out>/model
  std::vector<std::string> ran, skipped;  // stage names
  bool interrupted = false;
};

DalleRecipeResult run_dalle_recipe(const DalleRecipeConfig& config, const TextImageEncoderRecipeOptions& options);

}  // namespace genvis::train
