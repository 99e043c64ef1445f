// The text-to-video training recipe (Sora's recipe at our scale): a tokenizer, a small causal 3D
// VAE, then a spacetime-patch diffusion transformer and a CLIP text encoder trained jointly by
// flow matching on clips of several durations and sizes, exported as a genvis.TextToVideoPipeline
// folder (pipelines/genvis_video) that `genvis generate` loads.
//
//   auto config = genvis::train::VideoRecipeConfig::from_file("configs/video-shapes-quick.json");
//   genvis::train::run_video_recipe(config, {.out_dir = "runs/video", .resume = true});
//   // then: genvis generate --model runs/video/model -p "a red star moving to the left" --frames 9
//
// Stages, each skipped when its final output exists:
//   1 tokenizer  train_bpe on the split's captions                  -> <out>/model/tokenizer/
//   2 vae        AutoencoderKLWan (our config: causal, the first frame encoded alone, so images and
//                clips share one latent space), loss = mse(decode(z), x) + kl_weight * KL(q(z|x) ||
//                N(0, I)) per latent element (vae.foreground_weight > 0: the MSE weighted towards
//                the objects, train/foreground_weights.h), z sampled with the step Rng, batches from the
//                buckets (data::VideoLoader). Then the latent cache: every clip encoded at every
//                bucket's size, <out>/latents/bucket-<i>.safetensors ("mean", "logvar"
//                [N, z, F', h, w], "foreground" [N, 1, F', h, w] u8: 1 where a latent position
//                encodes an object pixel) + <out>/latents.json (captions, buckets), and the per-channel
//                latents_mean / latents_std of posterior samples (over the set and every bucket)
//                written into model/vae/config.json, as Wan's VAE carries them.   Trainer folder <out>/vae/.
//                With vae.from, that folder's VAE is copied in (checked against vae.config) and
//                only the latent cache is computed.
//   3 dit        WanTransformer3DModel (our config; adaLN-zero: the modulation tables, time_proj
//                and proj_out start at zero, so every block starts as the identity) + CLIPTextModel,
//                one optimiser. Per step: the bucket and clip indices of VideoLoader (one size per
//                batch), x0 = (mean + std * n - latents_mean) / latents_std, sigma from the
//                timestep density (logit-normal by default, then shifted), x_t = (1 - sigma) x0 +
//                sigma eps, target eps - x0 (rectified flow), timestep 1000 sigma. Caption replaced
//                by "" with probability caption_dropout. Frame conditioning (frame_condition > 0):
//                with that probability a sample keeps its first k latent frames (k uniform in
//                1..F'-1) as given: the transformer sees mask + those frames' latents
//                (pipelines::video_frame_condition) and the loss covers the other frames only.
//                dit.foreground_weight w > 0: latent positions over object pixels (the cache's
//                "foreground" masks) weigh 1 + w (the validation loss stays unweighted).
//                EMA weights are exported.                                Trainer folder <out>/dit/.
//                Validation (validate_every and at the end): the loss on 4 fixed batches, and 8
//                captions sampled through the pipeline (20 UniPC steps, CFG 4) as frame strips
//                in <out>/dit/samples/step-N.png; validation.jsonl.
//   4 export     model/{text_encoder,transformer}/, scheduler/ (UniPC on flow sigmas, the
//                config's flow_shift) and model_index.json (genvis.TextToVideoPipeline, with the
//                first bucket as the default size and frame count).
#pragma once
#include "data/video_loader.h"
#include "schedulers/parameterization.h"
#include "train/recipe_config.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace genvis::train {

struct VideoRecipeConfig {
  recipe::DatasetSection dataset;  // a video dataset (shapes-video, emoji-video)
  std::vector<data::VideoBucket> buckets;  // "buckets": [{"frames", "height", "width", "weight"}]
  int64_t vocab_size = 0;
  nlohmann::json vae_config, transformer_config, text_encoder_config;
  double kl_weight = 1e-6;
  double vae_foreground_weight = 0.0;  // vae.foreground_weight
  std::optional<double> vae_init_logvar;
  // vae.from: a VAE folder trained before (config.json + diffusion_pytorch_model.safetensors,
  // e.g. another run's model/vae) used instead of training one; its config must match vae.config.
  // The latent cache is still computed. For transformer-only runs on one latent space (scaling).
  std::string vae_from;
  int64_t vae_batch_size = 0, dit_batch_size = 0;
  double caption_dropout = 0.1;
  // dit.foreground_weight: latent positions that encode object pixels (the VAE's foreground test,
  // cached with the latents) count 1 + w times in the flow-matching loss; 0: plain MSE.
  double dit_foreground_weight = 0.0;
  double frame_condition = 0.5;  // probability that a training sample has given first frames; 0: text only
  schedulers::FlowSigmaDensity timesteps;  // dit.timesteps {"density", "mean", "std", "shift"}
  double flow_shift = 3.0;  // dit.flow_shift: the exported sampler's shift
  double fps = 8;           // written into model_index.json for the video writers
  TrainConfig vae_train, dit_train;
  uint64_t seed = 0;

  // Every unknown key, missing key and invalid value (including the model configs') in one
  // UsageError naming `source`.
  static VideoRecipeConfig from_json(const nlohmann::json& json, const std::string& source = "recipe config");
  static VideoRecipeConfig from_file(const std::string& path);
};

struct VideoRecipeOptions {
  std::string out_dir;
  bool resume = false;  // as LDMRecipeOptions::resume
};

struct VideoRecipeResult {
  std::string model_dir;
  std::vector<std::string> ran, skipped;
  bool interrupted = false;
};

VideoRecipeResult run_video_recipe(const VideoRecipeConfig& config, const VideoRecipeOptions& options);

}  // namespace genvis::train
