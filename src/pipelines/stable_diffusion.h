// Stable Diffusion 1.x / 2.x generation: txt2img and img2img with classifier-free guidance.
//
//   auto model = genvis::pipelines::load_stable_diffusion({.model = "sd15"});   // diffusers folder
//   genvis::pipelines::GenerateOptions o;  o.prompt = "a red apple";
//   genvis::pipelines::GenerateResult r = genvis::pipelines::generate(model, o);
//
// Stages (numbered the same in generate()): 1 encode prompts, 2 schedule, 3 initial latents,
// 4 denoise loop, 5 decode.
#pragma once
#include "models/autoencoder_kl/autoencoder_kl.h"
#include "models/clip_text/clip_text_model.h"
#include "models/unet2d_condition/unet2d_condition.h"
#include "schedulers/schedule.h"
#include "tokenizers/clip_tokenizer.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace genvis::pipelines {

// Where the model comes from: a diffusers folder, completed or overridden by components.
struct ModelSource {
  std::string model;             // diffusers folder (model_index.json + component folders)
  std::string unet, vae, text_encoder, vocab, scheduler_config;  // component overrides
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::Device(at::kCPU);
};

struct StableDiffusion {
  std::shared_ptr<tokenizers::CLIPTokenizer> tokenizer;
  models::CLIPTextModel text_encoder{nullptr};
  models::UNet2DConditionModel unet{nullptr};
  models::AutoencoderKL vae{nullptr};
  schedulers::NoiseScheduleConfig scheduler;
  std::string name;  // for the infotext "Model" field
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::Device(at::kCPU);
};

// Throws LoadError naming what is missing or wrong; UsageError for an SDXL model (not yet).
StableDiffusion load_stable_diffusion(const ModelSource& source);

struct GenerateOptions {
  std::string prompt, negative_prompt;
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
  // Replaces the seeded initial noise (before any sigma scaling): [batch,4,H/8,W/8].
  at::Tensor init_noise;
  // img2img: replaces the seeded noise that samples the VAE posterior: [batch,4,H/8,W/8].
  at::Tensor posterior_noise;
  // Called after each denoising step (step index, total).
  std::function<void(int64_t, int64_t)> on_step;

  // Throws UsageError listing every problem at once.
  void validate() const;
};

struct GenerateResult {
  at::Tensor latents;  // [B,4,h,w] final latents
  at::Tensor images;   // [B,3,H,W] float in [0,1], before quantisation
};

GenerateResult generate(StableDiffusion& model, const GenerateOptions& options);

// Conditioning for one prompt: [1, 77*k, C] (A1111 chunks and emphasis).
at::Tensor encode_prompt(StableDiffusion& model, const std::string& prompt, int clip_skip, int64_t min_chunks = 1);

}  // namespace genvis::pipelines
