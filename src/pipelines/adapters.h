// Personalisation adapters on a loaded Stable Diffusion model: LoRA files (kohya, PEFT) and
// textual-inversion embeddings, and AUTOMATIC1111's <lora:name:weight> prompt tags.
//
//   auto model = load_stable_diffusion({.model = "sd15"});
//   load_lora(model, "loras/style.safetensors", 0.8);                 // merged into the weights
//   load_embeddings(model, "embeddings");                             // names usable in prompts
//   std::vector<PromptLoRA> tags;
//   std::string prompt = extract_lora_tags("a cat <lora:style:0.6>", tags);   // "a cat "
#pragma once
#include "models/clip_text/embedding_file.h"
#include "models/lora/lora_file.h"
#include "pipelines/stable_diffusion.h"

#include <optional>
#include <string>
#include <vector>

namespace genvis::pipelines {

models::LoRATargets lora_targets(StableDiffusion& model);

// Reads, checks and applies a LoRA file. text_encoder_multiplier defaults to `multiplier`.
// LoadError for a file that does not fit the model (see models::read_lora).
models::LoRAApplyReport load_lora(StableDiffusion& model, const std::string& path, double multiplier,
                                  models::LoRAMode mode = models::LoRAMode::Merge,
                                  std::optional<double> text_encoder_multiplier = std::nullopt);

// Makes the embedding's name usable in prompts (SDXL: both encoders get their vectors).
// LoadError when its vector width does not match the text encoder(s).
void add_embedding(StableDiffusion& model, const models::EmbeddingFile& embedding);
// Every embedding file in `dir`; returns how many were added.
size_t load_embeddings(StableDiffusion& model, const std::string& dir);

// <lora:NAME:W> (W default 1) and <lora:NAME:TE_W:UNET_W>, as in AUTOMATIC1111.
struct PromptLoRA {
  std::string name;
  double unet_multiplier = 1.0, text_encoder_multiplier = 1.0;
};
// The prompt without its LoRA tags; the tags are appended to `found`. UsageError for a tag with
// an empty name or a weight that is not a number.
std::string extract_lora_tags(const std::string& prompt, std::vector<PromptLoRA>& found);
// NAME.safetensors (or .pt, .ckpt) in `dir`; LoadError listing what the folder has otherwise;
// UsageError for a name that is a path (a "/", "\\" or a leading "..").
std::string find_lora_file(const std::string& dir, const std::string& name);

}  // namespace genvis::pipelines
