// The DF-GAN recipe (`genvis train dfgan`): a DF-GAN (models/dfgan) trained on one dataset,
// conditioned on the sentence vectors of a DAMSM it trains first (or one given), exported as a
// genvis.DFGANPipeline folder that `genvis generate --model` loads.
//
//   auto config = genvis::train::DFGANRecipeConfig::from_file("configs/dfgan-emoji.json");
//   auto r = genvis::train::run_dfgan_recipe(config, {.out_dir = "runs/dfgan-emoji"});
//   // r.model_dir: model_index.json, generator/, text_encoder/
//
// Stages, each skipped when its output exists:
//   1 damsm   `damsm`: a DAMSM folder (used as is), or a DAMSM recipe config object (its dataset,
//             tokenizer and seed are this recipe's) trained into <out>/damsm/
//   2 data    the split rendered once at dataset.resolution, in memory; the DAMSM's sentence vector
//             of every caption, computed once (the text encoder stays frozen, as DF-GAN's)
//   3 train   the grouped trainer, both groups every step in the order discriminator, generator
//             (Adam: lr 4e-4 and 1e-4, betas (0, 0.9), no weight decay, no clipping: the paper's,
//             overridable in `discriminator` / `generator`). Per step a batch of the loader's order
//             with augment.* applied, z ~ N(0, 1) from the step's Rng.
//               D: hinge on (real, sentence) + (hinge on (fake, sentence) + hinge on (real rolled
//                  by one, sentence)) / 2 + MA-GP (k * mean ||grad over image and sentence||^p,
//                  gradient_penalty.k, .p: 2 and 6; with gradient_penalty.every n > 1 only on
//                  steps divisible by n, times n, in f32, the other steps in train.autocast)
//               G: -D(G(z, sentence), sentence), plus with damsm_lambda > 0 (default 0, the paper:
//                  DF-GAN has no DAMSM loss) AttnGAN's DAMSM word- and sentence-level matching loss
//                  of the generated image against the batch's captions, times damsm_lambda
//             A non-finite loss stops the run naming the step and group. With train.validate_every
//             (and at the end): a sample grid of fixed captions (<out>/samples/), and in
//             <out>/train/validation.jsonl the discriminator's accuracy on real and generated
//             images of a fixed batch (collapse shows as 1.0 or 0.5) and the in-batch diversity of
//             the generator (mean pairwise distance of images of one caption with different z,
//             relative to real images'; mode collapse shows near 0). The generator's EMA
//             (generator.ema_decay > 0) is what validation and export use.
//   4 export  <out>/model (save_dfgan_model: the generator and the DAMSM); with an EMA, also
//             <out>/model-no-ema (the generator as trained, to measure what the EMA buys)
#pragma once
#include "train/damsm_recipe.h"
#include "train/recipe_config.h"
#include "train/text_gan_recipe.h"
#include "train/text_image_encoder_recipe.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace genvis::train {

struct DFGANRecipeConfig : text_gan::CommonConfig {
  GroupConfig generator, discriminator;
  double gp_k = 2.0, gp_p = 6.0;
  // gradient_penalty.every: the penalty on every n-th discriminator step only, weighted n times
  // (StyleGAN2's lazy regularisation); 1 (the paper) on every step. With n > 1 the other steps
  // may run in bf16 (train.autocast), the penalty's steps always run in f32.
  int64_t gp_every = 1;
  // AttnGAN's DAMSM loss on the generator's images (0: off, the paper). Not DF-GAN's: at a CPU budget
  // the matching-aware discriminator alone did not teach the generator its captions (docs/results.md).
  double damsm_lambda = 0.0;

  static DFGANRecipeConfig from_json(const nlohmann::json& json, const std::string& source = "recipe config");
  static DFGANRecipeConfig from_file(const std::string& path);
};

struct DFGANRecipeResult {
  std::string model_dir;                  // <out>/model
  std::vector<std::string> ran, skipped;  // stage names
  bool interrupted = false;
};

DFGANRecipeResult run_dfgan_recipe(const DFGANRecipeConfig& config, const TextImageEncoderRecipeOptions& options);

}  // namespace genvis::train
