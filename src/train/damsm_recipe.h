// The DAMSM recipe (`genvis train damsm`): AttnGAN's Deep Attentional Multimodal Similarity Model
// (models/damsm: a bidirectional LSTM text encoder and our own CNN image encoder) trained from
// scratch on one dataset with the DAMSM word-level and sentence-level matching losses, saved as a
// DamsmEncoder folder. It is AttnGAN's training loss, DF-GAN's text encoder and a second
// R-precision judge beside the contrastive encoder.
//
//   auto config = genvis::train::DamsmRecipeConfig::from_file("configs/damsm-emoji.json");
//   auto r = genvis::train::run_damsm_recipe(config, {.out_dir = "runs/damsm-emoji"});
//   auto damsm = genvis::models::DamsmEncoder::load(r.model_dir);
//
// Stages (numbered as in text_image_encoder_recipe.cpp), each skipped when its output exists:
//   1 tokenizer  train_bpe on the split's captions                     -> <out>/model/tokenizer/
//   2 data       the split rendered once at dataset.resolution, in memory; captions tokenised
//   3 train      the contrastive recipe's shuffled order and augmentation (augment.*). Loss, per
//                batch: L_w1 + L_w2 + L_s1 + L_s2 (AttnGAN eq. 11 and 13: both matching
//                directions, word and sentence level, gammas from the model config), in f32;
//                samples with the same caption text are not negatives. Trainer folder
//                <out>/train/; with train.validate_every, R-precision of real images.
//   4 save       <out>/model/{config.json, model.safetensors, tokenizer/}
//   5 eval       R-precision of the dataset's own images in the AttnGAN protocol (global image
//                vector against sentence vectors; train split and held-out split, eval.num each,
//                k = eval.k) -> <out>/eval.json
//
// Config: {"dataset", "tokenizer": {"vocab_size"}, "model": DamsmConfig keys, "batch_size",
// "augment", "eval", "train"} as the contrastive recipe. The recipe sets
// model.vision_config.image_size (dataset.resolution) and model.text_config.vocab_size (the
// tokenizer's); a different value given is a problem.
#pragma once
#include "train/text_image_encoder_recipe.h"

#include <nlohmann/json.hpp>
#include <string>

namespace genvis::train {

struct DamsmRecipeConfig : TextImageEncoderRecipeConfig {
  // Every unknown key, missing key and invalid value in one UsageError naming `source`.
  static DamsmRecipeConfig from_json(const nlohmann::json& json, const std::string& source = "recipe config");
  static DamsmRecipeConfig from_file(const std::string& path);
};

const TextImageEncoderKind& damsm_kind();

TextImageEncoderRecipeResult run_damsm_recipe(const DamsmRecipeConfig& config, const TextImageEncoderRecipeOptions& options);

}  // namespace genvis::train
