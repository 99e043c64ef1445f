// The latent diffusion training recipe: a tokenizer, a VAE, then a UNet and a CLIP text encoder
// trained from scratch on one dataset, exported as a diffusers folder that
// pipelines::load_stable_diffusion reads like any downloaded model.
//
//   auto config = genvis::train::LDMRecipeConfig::from_json(json, "ldm.json");  // every bad key at once
//   genvis::train::run_ldm_recipe(config, {.out_dir = "runs/ldm", .resume = true});
//   // then: genvis generate --model runs/ldm/model -p "a red circle" --width 32 --height 32
//
// Stages (numbered the same in run_ldm_recipe), each skipped when its final output exists:
//   1 tokenizer  train_bpe on the split's captions            -> <out>/model/tokenizer/
//   2 vae        AutoencoderKL, loss = mse(decode(z), x) + kl_weight * KL(q(z|x) || N(0, I)), z
//                sampled with the step Rng (vae.init_logvar sets the logvar outputs' starting bias:
//                the noise the decoder first sees); KL is averaged per latent element (so kl_weight does not
//                depend on the resolution). Training batches use horizontal flips where the dataset
//                allows them. Then every training sample is encoded once, unflipped, at the dataset
//                resolution: <out>/latents.safetensors holds the posterior "mean" and "logvar"
//                [N, C, h, w] (latents.json: captions, scaling_factor). scaling_factor = 1 / std of
//                posterior samples over the set (exact: sqrt(var(mean) + E[exp(logvar)])), written
//                into <out>/model/vae/config.json.    Trainer folder <out>/vae/.
//   3 text_pretrain  only with text_encoder.pretrain: a contrastive text-image encoder
//                (train/contrastive_recipe) whose text tower has exactly the text encoder's config
//                and the tokenizer of stage 1, trained on the same split -> <out>/text_pretrain/
//                (a ContrastiveRecipe folder: model/, train/, eval.json). Its text tower's weights
//                (text_model.*) are the text encoder's starting point in stage 4.
//   4 diffusion  UNet + text encoder trained jointly by one optimiser, the text encoder from a
//                random start, or with text_encoder.pretrain from the contrastive tower (and with
//                text_encoder.freeze it stays there; a frozen random one is refused). Measured for
//                the default model in its card (scripts/text_encoder_comparison.sh). Per step and sample: index uniform over the set (with
//                replacement, from the step Rng), x0 = (mean + std * n) * scaling_factor, caption
//                replaced by "" with probability caption_dropout (classifier-free guidance), t
//                uniform in [0, T), x_t = sqrt(acp_t) x0 + sqrt(1 - acp_t) eps,
//                loss = mse(unet(x_t, t, last_hidden_state(encode_padded(caption, eos))), eps):
//                the conditioning the pipeline computes with clip_skip 0. With
//                diffusion.scheduler.prediction_type "v_prediction" the target is v; with
//                diffusion.snr_gamma each sample's MSE is weighted by min_snr_weight; with
//                diffusion.timesteps t follows that density instead of the uniform one.   Trainer folder <out>/diffusion/.
//                EMA weights (ema_decay > 0) are the ones exported.
//   5 export     <out>/model/{unet,text_encoder}/, scheduler/scheduler_config.json (the training
//                schedule, EulerDiscreteScheduler) and model_index.json (StableDiffusionPipeline).
//
// Config keys the recipe sets itself (any value given must agree): vae in/out_channels 3,
// sample_size = resolution; unet in/out_channels = latent_channels, sample_size = resolution / f,
// cross_attention_dim = text hidden_size; text_encoder vocab_size, bos/eos/pad ids from the
// tokenizer, architectures ["CLIPTextModel"], max_position_embeddings 77. text_encoder.pretrain has
// the contrastive recipe's keys but dataset, tokenizer, seed and model.text_config (all taken
// from this config): {"model": {"projection_dim", "vision_config", ...}, "batch_size", "train",
// optional "augment", "eval"}.
#pragma once
#include "train/contrastive_recipe.h"
#include "train/recipe_config.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace genvis::train {

struct LDMRecipeConfig {
  using Dataset = recipe::DatasetSection;
  Dataset dataset;
  int64_t vocab_size = 0;
  nlohmann::json vae_config, unet_config, text_encoder_config, scheduler_config;  // diffusers/transformers keys
  double kl_weight = 1e-4;
  // The posterior's starting log-variance (vae.init_logvar; nullopt = the layers' own init, about
  // 0, i.e. noise as large as the latents). Small images learn far faster from a small start.
  std::optional<double> vae_init_logvar;
  int64_t vae_batch_size = 0, diffusion_batch_size = 0;
  double caption_dropout = 0.1;
  // diffusion.snr_gamma: min-SNR-gamma loss weights (schedulers::min_snr_weight); nullopt = plain MSE.
  std::optional<double> snr_gamma;
  // diffusion.foreground_weight: latent positions over object pixels (train/foreground_weights.h's
  // test on the rendered image, any pixel of the position's patch) weigh 1 + w in the loss, the
  // rest 1; 0 = unweighted.
  double foreground_weight = 0;
  // diffusion.timesteps: the density of the training timesteps, as the video recipe's flow noise
  // levels (recipe::read_noise_density): u drawn from it in (0, 1), t = floor(u * T). nullopt =
  // t uniform over [0, T) (drawn as before the option existed).
  std::optional<schedulers::FlowSigmaDensity> timesteps;
  TrainConfig vae_train, diffusion_train;
  uint64_t seed = 0;
  // text_encoder.pretrain, as the contrastive recipe config it expands to (stage 3), when given.
  std::optional<ContrastiveRecipeConfig> text_pretrain;
  bool freeze_text_encoder = false;  // text_encoder.freeze (needs text_encoder.pretrain)

  // Every unknown key, missing key and invalid value (including those of the model configs and
  // the two TrainConfigs) in one UsageError naming `source`.
  static LDMRecipeConfig from_json(const nlohmann::json& json, const std::string& source = "recipe config");
  static LDMRecipeConfig from_file(const std::string& path);
};

struct LDMRecipeOptions {
  std::string out_dir;
  // Continue an unfinished stage from its latest checkpoint. Without it an unfinished stage that
  // has checkpoints is a UsageError (nothing is overwritten). Finished stages are always skipped.
  bool resume = false;
};

struct LDMRecipeResult {
  std::string model_dir;                 // <out>/model
  std::vector<std::string> ran, skipped;  // stage names
  bool interrupted = false;               // SIGINT/SIGTERM: a checkpoint was written, rerun with resume
};

LDMRecipeResult run_ldm_recipe(const LDMRecipeConfig& config, const LDMRecipeOptions& options);

}  // namespace genvis::train
