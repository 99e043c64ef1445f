// Stable Diffusion 1.x / 2.x / XL behind the Pipeline interface (registered for
// StableDiffusionPipeline, StableDiffusionXLPipeline and their img2img/inpaint classes):
// txt2img, img2img, inpainting, LoRA adapters and <lora:NAME:W> tags, textual-inversion embeddings.
// Extras: clip_skip, vae_tiling, vae_tile_size, original_size, target_size, crop_top_left.
#pragma once
#include "pipelines/pipeline.h"
#include "pipelines/stable_diffusion.h"

#include <memory>
#include <set>

namespace genvis::pipelines {

class StableDiffusionPipeline : public Pipeline {
public:
  explicit StableDiffusionPipeline(StableDiffusion model, std::string class_name = "StableDiffusionPipeline");
  const PipelineInfo& info() const override { return info_; }
  StableDiffusion& model() { return model_; }

  // The request as Stable Diffusion's own options (prompts without <lora:> tags); the adapters the
  // request names, resolved to files, are appended to `loras`.
  GenerateOptions options_for(const Request& request, std::vector<std::pair<std::string, AdapterRequest>>* loras = nullptr) const;

protected:
  Result run(const Request& request, const Callbacks& callbacks) override;

private:
  void apply_adapters(const Request& request, const std::vector<std::pair<std::string, AdapterRequest>>& loras);

  StableDiffusion model_;
  PipelineInfo info_;
  std::string applied_loras_;  // what is merged/attached now ("" = none)
  std::set<std::string> embedding_dirs_;
};

std::unique_ptr<Pipeline> load_stable_diffusion_pipeline(const ModelSource& source);

}  // namespace genvis::pipelines
