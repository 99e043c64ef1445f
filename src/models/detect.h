// Recognising what a weight file is from its tensor names and shapes (and safetensors
// metadata), without loading any data. Used by `genvis info` and, later, by the model loader to
// pick a family's key table.
#pragma once
#include "io/dtype.h"

#include <map>
#include <string>
#include <vector>

namespace genvis::models {

struct LayoutGuess {
  // "diffusers-unet", "diffusers-vae", "diffusers-wan-transformer", "diffusers-wan-vae",
  // "transformers-clip-text", "sd-single-file", "kohya-lora", "diffusers-lora",
  // "a1111-embedding", "diffusers-embedding", "ldm-unet" (a UNet alone in the original names);
  // Wan 2.1 components in their published layouts:
  // "wan-original-transformer" (the release's original names; ComfyUI's repackaged files have
  // them too), "comfyui-wan-transformer" (the same under model.diffusion_model.),
  // "wan-original-vae" (Wan2.1_VAE.pth), "comfyui-wan-vae" (the same names in safetensors),
  // "wan-original-umt5" (models_t5_umt5-xxl-enc-bf16.pth), "transformers-umt5" (also ComfyUI's
  // umt5_xxl files), "wan-original-clip-vision" (the release's open-clip .pth),
  // "transformers-clip-vision" (also ComfyUI's clip_vision_h); "unknown".
  std::string layout;
  // Diffusers class: a component's (e.g. "UNet2DConditionModel") or, for a single-file
  // checkpoint, the pipeline it holds (e.g. "StableDiffusionXLPipeline", the key of
  // pipelines/registry.h); empty for adapters and unknown files.
  std::string class_name;
  // "sd1", "sd2", "sdxl", "sdxl-refiner", "wan2.1"; empty when the names cannot tell.
  std::string family;
  // The pipeline class (pipelines/registry.h) that takes this file as its --model, when one does:
  // a single-file checkpoint's (= class_name) or a Wan transformer's ("WanPipeline",
  // "WanImageToVideoPipeline"); empty otherwise.
  std::string pipeline;
  // Human-readable facts that led to the guess and properties read off shapes
  // (e.g. "cross-attention dim 768", "inpainting (9 input channels)").
  std::vector<std::string> details;
  // For single-file checkpoints: component -> number of tensors under its prefix.
  std::map<std::string, size_t> components;
};

// `format` is the reader's ("safetensors", "pytorch-zip", ...; empty when unknown): files with the
// same names are told apart by it (wan-original-vae / comfyui-wan-vae).
LayoutGuess detect_layout(const std::vector<io::TensorInfo>& tensors,
                          const std::map<std::string, std::string>& metadata = {}, const std::string& format = "");

}  // namespace genvis::models
