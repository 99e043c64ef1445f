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
  // "a1111-embedding", "diffusers-embedding", "unknown".
  std::string layout;
  // Diffusers class: a component's (e.g. "UNet2DConditionModel") or, for a single-file
  // checkpoint, the pipeline it holds (e.g. "StableDiffusionXLPipeline", the key of
  // pipelines/registry.h); empty for adapters and unknown files.
  std::string class_name;
  // "sd1", "sd2", "sdxl", "sdxl-refiner", "wan2.1"; empty when the names cannot tell.
  std::string family;
  // Human-readable facts that led to the guess and properties read off shapes
  // (e.g. "cross-attention dim 768", "inpainting (9 input channels)").
  std::vector<std::string> details;
  // For single-file checkpoints: component -> number of tensors under its prefix.
  std::map<std::string, size_t> components;
};

LayoutGuess detect_layout(const std::vector<io::TensorInfo>& tensors,
                          const std::map<std::string, std::string>& metadata = {});

}  // namespace genvis::models
