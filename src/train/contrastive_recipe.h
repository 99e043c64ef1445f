// The contrastive encoder recipe: a CLIP-style text-image encoder (models/contrastive) trained
// from scratch on one dataset with the symmetric InfoNCE loss, saved as a ContrastiveEncoder
// folder. It is the separately trained judge of eval::r_precision: it shares nothing with the
// generator it scores.
//
//   auto config = genvis::train::ContrastiveRecipeConfig::from_file("configs/contrastive-emoji.json");
//   auto r = genvis::train::run_contrastive_recipe(config, {.out_dir = "runs/contrastive-emoji"});
//   auto encoder = genvis::models::ContrastiveEncoder::load(r.model_dir);
//
// Stages (numbered the same in run_contrastive_recipe), each skipped when its output exists:
//   1 tokenizer  train_bpe on the split's captions                     -> <out>/model/tokenizer/
//   2 data       the split rendered once at dataset.resolution, in memory; captions tokenised
//   3 train      per step, the loader's shuffled order (DataLoader::indices: epochs without
//                replacement, a pure function of the step); augmentation from the step Rng: one
//                affine resample per image (horizontal flip where the dataset allows it, object
//                scale in augment.scale, shift up to augment.shift of the side, edges replicated),
//                plus Gaussian noise of std augment.noise. Loss: symmetric InfoNCE,
//                logits = exp(min(logit_scale, log 100)) * img @ txt.T in f32; samples with the
//                same caption text are all positives (targets spread evenly over them).
//                Trainer folder <out>/train/ (checkpoints, metrics.jsonl, loss.png). EMA weights
//                (ema_decay > 0) are the ones saved. With train.validate_every, R-precision of
//                real images is logged as training goes.
//   4 save       <out>/model/{config.json, model.safetensors, tokenizer/}
//   5 eval       R-precision of the dataset's own images (train split and, when the dataset has
//                one, the held-out split; eval.num samples each, at most the split's size;
//                k = eval.k) -> <out>/eval.json
//
// Config keys the recipe sets itself (any value given must agree): model.vision_config.image_size
// = dataset.resolution; model.text_config vocab_size, bos/eos/pad ids from the tokenizer.
#pragma once
#include "train/text_image_encoder_recipe.h"

#include <nlohmann/json.hpp>
#include <string>

namespace genvis::train {

// The config keys of text_image_encoder_recipe.h; model: ContrastiveConfig keys.
struct ContrastiveRecipeConfig : TextImageEncoderRecipeConfig {
  // Every unknown key, missing key and invalid value (including the model config's and the
  // TrainConfig's) in one UsageError naming `source`.
  static ContrastiveRecipeConfig from_json(const nlohmann::json& json, const std::string& source = "recipe config");
  static ContrastiveRecipeConfig from_file(const std::string& path);
};
using ContrastiveRecipeOptions = TextImageEncoderRecipeOptions;
using ContrastiveRecipeResult = TextImageEncoderRecipeResult;

const TextImageEncoderKind& contrastive_kind();

ContrastiveRecipeResult run_contrastive_recipe(const ContrastiveRecipeConfig& config,
                                               const ContrastiveRecipeOptions& options);

}  // namespace genvis::train
