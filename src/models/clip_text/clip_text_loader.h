// Loading CLIP text encoders from a diffusers component folder or from an original
// single-file Stable Diffusion checkpoint.
//
//   auto te = genvis::models::load_clip_text_model("sd15/text_encoder");          // config.json + weights
//   auto te2 = genvis::models::load_clip_text_model_with_projection("sdxl/text_encoder_2");
//
//   auto reader = genvis::io::open_weights("v1-5-pruned.safetensors");
//   CLIPTextModel te(config);
//   load_clip_text_weights(*te, *reader, kSD1TextPrefix, CLIPTextLayout::Transformers);
//
// Single-file layouts: SD1 and SDXL's first encoder store transformers names under a prefix;
// SD2 and SDXL's second encoder store OpenCLIP names (transformer.resblocks.N.attn.in_proj_weight,
// ln_1, mlp.c_fc, positional_embedding, ln_final, text_projection [C, P], ...), which are
// rewritten to transformers names (q/k/v split out of in_proj, text_projection transposed).
#pragma once
#include "io/weights.h"
#include "models/clip_text/clip_text_model.h"
#include "nn/state_dict.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace genvis::models {

inline constexpr const char* kSD1TextPrefix = "cond_stage_model.transformer.";
inline constexpr const char* kSD2TextPrefix = "cond_stage_model.model.";
inline constexpr const char* kSDXLTextPrefix = "conditioner.embedders.0.transformer.";
inline constexpr const char* kSDXLText2Prefix = "conditioner.embedders.1.model.";

enum class CLIPTextLayout { Transformers, OpenCLIP };

struct CLIPTextLoadOptions {
  at::ScalarType dtype = at::kFloat;  // weights are cast to this (F16 files compute in F32)
  at::Device device = at::Device(at::kCPU);
  // OpenCLIP files only: skip resblocks at or past config.num_hidden_layers. SD2 files hold all
  // 24 ViT-H blocks while the SD2 text encoder has 23 (it conditions on the penultimate layer).
  bool drop_extra_layers = false;
};

// Fills `model` (a CLIPTextModel or CLIPTextModelWithProjection) from the tensors under `prefix`.
// Strict: one LoadError lists every missing, unexpected and wrongly-shaped tensor. Ignored:
// text_model.embeddings.position_ids, logit_scale, and text_projection for a model without one.
nn::LoadReport load_clip_text_weights(torch::nn::Module& model, io::WeightReader& reader, const std::string& prefix,
                                      CLIPTextLayout layout, const CLIPTextLoadOptions& options = {});

// A diffusers component folder: config.json + model.safetensors (or model.safetensors.index.json,
// model.fp16.safetensors, pytorch_model.bin). The model is returned in eval mode.
CLIPTextModel load_clip_text_model(const std::string& folder, const CLIPTextLoadOptions& options = {});
CLIPTextModelWithProjection load_clip_text_model_with_projection(const std::string& folder,
                                                                 const CLIPTextLoadOptions& options = {});
// The weight file of a component folder; LoadError naming the candidates when there is none.
std::string find_clip_text_weights(const std::string& folder);

// A view of the OpenCLIP tensors under `prefix` with transformers names and layouts (the diffusers
// convert_open_clip_checkpoint table). Names it does not know pass through unchanged.
std::unique_ptr<io::WeightReader> open_clip_as_transformers(io::WeightReader& reader, const std::string& prefix);

// The inverse rewrite, for writing OpenCLIP-layout files: transformers names -> OpenCLIP names
// (q/k/v merged into in_proj, text_projection transposed). LoadError for names it cannot place.
std::vector<std::pair<std::string, at::Tensor>> transformers_to_open_clip(
    const std::vector<std::pair<std::string, at::Tensor>>& tensors);

}  // namespace genvis::models
