// Stable Diffusion 1.x / 2.x / XL generation: txt2img, img2img and inpainting with
// classifier-free guidance.
//
//   auto model = genvis::pipelines::load_stable_diffusion({.model = "sd15"});   // diffusers folder
//   genvis::pipelines::GenerateOptions o;  o.prompt = "a red apple";
//   genvis::pipelines::GenerateResult r = genvis::pipelines::generate(model, o);
//
// Stages (numbered the same in generate()): 1 encode prompts, 2 schedule, 3 initial latents,
// 4 denoise loop, 5 decode.
#pragma once
#include "models/autoencoder_kl/autoencoder_kl.h"
#include "models/autoencoder_kl/tiled.h"
#include "models/clip_text/clip_text_model.h"
#include "models/unet2d_condition/unet2d_condition.h"
#include "pipelines/pipeline.h"
#include "schedulers/schedule.h"
#include "tokenizers/clip_tokenizer.h"
#include "tokenizers/embedding_tokens.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace genvis::pipelines {

struct StableDiffusion {
  std::shared_ptr<tokenizers::CLIPTokenizer> tokenizer;
  models::CLIPTextModel text_encoder{nullptr};
  // SDXL only: OpenCLIP bigG with projection (its tokenizer is `tokenizer`, padding with 0).
  models::CLIPTextModelWithProjection text_encoder_2{nullptr};
  models::UNet2DConditionModel unet{nullptr};
  models::AutoencoderKL vae{nullptr};
  schedulers::NoiseScheduleConfig scheduler;
  std::string name;  // for the infotext "Model" field
  // Textual-inversion names usable in prompts (see pipelines/adapters.h); null when none.
  std::shared_ptr<tokenizers::EmbeddingTokens> embeddings;
  // SDXL (diffusers model_index.json): an empty negative prompt conditions on zeros.
  bool force_zeros_for_empty_prompt = true;
  at::ScalarType dtype = at::kFloat;
  at::ScalarType vae_dtype = at::kFloat;  // f32 when dtype is f16 and the VAE asks to upcast
  at::Device device = at::Device(at::kCPU);
  std::string quant;  // "int8": the UNet and text encoders carry int8 copies (quantize_int8 below)

  bool is_sdxl() const { return static_cast<bool>(text_encoder_2); }
  // The image size the model was made for (diffusers' default height and width): the UNet's
  // sample_size times the VAE's downscale factor, e.g. 512 for SD 1.x, 1024 for SDXL, 32 for
  // genvis-emoji-32; 512 (SDXL: 1024) when the UNet config has no sample_size.
  int64_t native_size() const;
  // A 9-channel inpainting UNet: latents + mask + masked-image latents.
  bool is_inpainting() const;
};

// Throws LoadError naming what is missing or wrong, UsageError for missing components.
StableDiffusion load_stable_diffusion(const ModelSource& source);

// Gives the UNet (all but its first/last convolutions and time embedders) and the text encoders
// int8 copies of their current weights (again after a LoRA is merged) and sets m.quant = "int8".
void quantize_int8(StableDiffusion& m);

struct GenerateOptions {
  std::string prompt, negative_prompt;
  // One prompt per image of the batch (evaluation: many captions in one denoising batch). When
  // set, its size must equal `batch` and `prompt` is not used; image i still gets seed + i.
  std::vector<std::string> prompts;
  int64_t steps = 20;
  std::string sampler = "euler";
  std::string schedule = "default";
  double cfg_scale = 7.0;
  uint64_t seed = 0;
  int64_t width = 512, height = 512;
  int64_t batch = 1;
  int clip_skip = 0;
  // img2img: an image tensor [1,3,H,W] in [-1,1] and how much of the schedule to run.
  at::Tensor init_image;
  double strength = 0.75;
  // Inpainting (with init_image): [1,1,H,W] in [0,1]; >= 0.5 is repainted, the rest kept.
  // 9-channel UNets get the mask and masked image as input; others blend the denoised latents.
  // strength 1 starts from pure noise (diffusers' inpainting pipeline).
  at::Tensor mask;
  // VAE encode/decode in overlapping tiles when the image is larger than one tile (pixels;
  // 0 = the VAE config's sample_size): bounded memory for large images, slightly different output.
  bool vae_tiling = false;
  int64_t vae_tile_size = 0;
  // SDXL micro-conditioning (diffusers defaults: original = target = the output size, crop 0,0).
  std::optional<std::pair<int64_t, int64_t>> original_size, target_size;  // (height, width)
  std::pair<int64_t, int64_t> crop_top_left{0, 0};
  // Replaces the seeded initial noise (before any sigma scaling): [batch,4,H/8,W/8].
  at::Tensor init_noise;
  // img2img/inpainting: replaces the seeded noise that samples the VAE posterior (of the init
  // image and of the masked image): [batch,4,H/8,W/8].
  at::Tensor posterior_noise;
  // Step caching: 1 runs the whole UNet at every evaluation; N > 1 runs it at every N-th
  // evaluation and only its outermost blocks in between (DeepCache, models::UNetDeepCache).
  int64_t cache_interval = 1;
  // Called after each denoising step (step index, total).
  std::function<void(int64_t, int64_t)> on_step;

  // Throws UsageError listing every problem at once.
  void validate() const;
};

struct GenerateResult {
  at::Tensor latents;  // [B,4,h,w] final latents
  at::Tensor images;   // [B,3,H,W] float in [0,1], before quantisation
};

// `callbacks` adds cancelling and previews (and progress beside options.on_step).
GenerateResult generate(StableDiffusion& model, const GenerateOptions& options, const Callbacks& callbacks = {});

// Latents (times the VAE scaling factor) -> images [B,3,H,W] f32 in [0,1] (tiled per options).
at::Tensor decode_latents(StableDiffusion& model, const at::Tensor& latents, const GenerateOptions& options);

// One image per prompt, `batch` prompts per call of generate() (the call for prompts[b..] uses
// seed options.seed + b), with a progress bar named `label`: [N,3,H,W] f32 on the CPU. Used by the
// evaluation commands, so that a result depends on the seed and batch size, not on the caller.
at::Tensor generate_each(StableDiffusion& model, const std::vector<std::string>& prompts, GenerateOptions options,
                         int64_t batch, const std::string& label);

struct PromptEmbeds {
  at::Tensor context;  // [1, 77*k, C] (A1111 chunks and emphasis; SDXL: CLIP-L | bigG)
  at::Tensor pooled;   // SDXL: [1, P] bigG text_embeds of the first chunk; undefined otherwise
};

// Conditioning for one prompt, at least `min_chunks` 77-token chunks.
PromptEmbeds encode_prompt(StableDiffusion& model, const std::string& prompt, int clip_skip, int64_t min_chunks = 1);

}  // namespace genvis::pipelines
