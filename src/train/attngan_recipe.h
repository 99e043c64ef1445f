// The AttnGAN recipe (`genvis train attngan`): an AttnGAN (models/attngan) trained on one dataset
// with a DAMSM it trains first (or one given) as text encoder and as the matching loss on the
// final image, exported as a genvis.AttnGANPipeline folder that `genvis generate --model` loads.
//
//   auto config = genvis::train::AttnGANRecipeConfig::from_file("configs/attngan-emoji.json");
//   auto r = genvis::train::run_attngan_recipe(config, {.out_dir = "runs/attngan-emoji"});
//   // r.model_dir: model_index.json, generator/, text_encoder/
//
// Stages, each skipped when its output exists:
//   1 damsm   `damsm`: a DAMSM folder (used as is), or a DAMSM recipe config object (its dataset,
//             tokenizer and seed are this recipe's) trained into <out>/damsm/
//   2 data    the split rendered once at dataset.resolution (the last stage's size); the frozen
//             DAMSM's word features and sentence vector of every caption, computed once
//   3 train   the grouped trainer, both groups every step in the order discriminators, generator
//             (Adam lr 2e-4, betas (0.5, 0.999), constant, no weight decay or clipping: the
//             official code's; overridable in `discriminator` / `generator`). Per step a batch of
//             the loader's order with augment.* applied; z, eps ~ N(0, 1) from the step's Rng.
//               D (each stage k, real images area-resized to its size):
//                  (BCE(D_k(real), 1) + BCE(D_k(real, s), 1)) / 2 +
//                  (BCE(D_k(fake), 0) + BCE(D_k(fake, s), 0) + BCE(D_k(real_i, s_i+1), 0)) / 3
//               G: sum_k (BCE(D_k(fake_k), 1) + BCE(D_k(fake_k, s), 1))
//                  + damsm_lambda * (word-level + sentence-level DAMSM matching losses of the final
//                    image against the batch's captions) + kl_weight * KL(conditioning augmentation)
//             A non-finite loss stops the run naming the step and group. Validation (every
//             train.validate_every and at the end) as DF-GAN's (text_gan_recipe.h): sample grid,
//             the last discriminator's conditional accuracy, diversity. The generator's EMA
//             (generator.ema_decay, default 0.999 as the official avg_param_G) is what validation
//             and export use.
//   4 export  <out>/model (save_attngan_model: the generator and the DAMSM); with an EMA, also
//             <out>/model-no-ema (the generator as trained, to measure what the EMA buys)
#pragma once
#include "train/recipe_config.h"
#include "train/text_gan_recipe.h"
#include "train/text_image_encoder_recipe.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::train {

struct AttnGANRecipeConfig : text_gan::CommonConfig {
  GroupConfig generator, discriminator;
  double damsm_lambda = 5.0;  // the official birds setting (COCO: 50)
  double kl_weight = 1.0;

  static AttnGANRecipeConfig from_json(const nlohmann::json& json, const std::string& source = "recipe config");
  static AttnGANRecipeConfig from_file(const std::string& path);
};

struct AttnGANRecipeResult {
  std::string model_dir;                  // <out>/model
  std::vector<std::string> ran, skipped;  // stage names
  bool interrupted = false;
};

AttnGANRecipeResult run_attngan_recipe(const AttnGANRecipeConfig& config, const TextImageEncoderRecipeOptions& options);

}  // namespace genvis::train
