// LoRA files for Stable Diffusion 1.x / 2.x / XL: reading kohya-ss (AUTOMATIC1111, ComfyUI,
// stable-diffusion.cpp), diffusers/PEFT and legacy diffusers attention-processor layouts, applying
// them (merged into the weights or on the fly) and writing the kohya layout.
//
//   LoRATargets t{.unet = unet.ptr().get(), .unet_config = &unet->config, .text_encoder = te.ptr().get()};
//   LoRAFile lora = read_lora("style.safetensors", t);   // every name resolved, every shape checked
//   apply_lora(lora, t, 0.8, LoRAMode::Merge);
//
// Key tables (file name stem -> component + module path in the diffusers/transformers tree):
//   kohya   lora_unet_<path with . -> _>         SD1/SD2 diffusers names; SDXL files use the
//                                                 original LDM names (input_blocks_4_1_...), both read
//           lora_te_ / lora_te1_ / lora_te2_<path> text_encoder (SDXL: te1) / text_encoder_2
//           .lora_down.weight [r,in(,k,k)], .lora_up.weight [out,r(,1,1)], .alpha (scalar; 0 or
//           absent: alpha = r)
//   PEFT    unet.<path>.lora_A.weight / lora_B.weight, text_encoder(_2).<path>...; alpha = r unless
//           a <stem>.alpha tensor is present (diffusers' network_alphas)
//   legacy  unet.<...>.processor.to_q_lora.down.weight (diffusers < 0.21), <path>.lora.down.weight
// Scale = alpha / r; merged: W += multiplier * scale * up @ down (f32, stored in W's dtype).
// LyCORIS variants (LoHa, LoKr, DoRA, full diffs) are refused by name.
#pragma once
#include "models/unet2d_condition/unet2d_condition.h"

#include <ATen/ATen.h>
#include <map>
#include <optional>
#include <string>
#include <torch/nn/module.h>
#include <vector>

namespace genvis::models {

// The modules a LoRA can reach; null components are absent from the model.
struct LoRATargets {
  torch::nn::Module* unet = nullptr;
  const UNet2DConditionConfig* unet_config = nullptr;  // for the SDXL/LDM kohya names
  torch::nn::Module* text_encoder = nullptr;
  torch::nn::Module* text_encoder_2 = nullptr;  // SDXL
};

struct LoRAModule {
  std::string component;  // "unet", "text_encoder", "text_encoder_2"
  std::string module;     // path inside the component, e.g. "down_blocks.0.attentions.0.proj_in"
  at::Tensor down, up;    // as stored (any float dtype)
  double alpha = 0;       // alpha / rank is the scale
  int64_t rank() const { return down.size(0); }
  double scale() const { return alpha / static_cast<double>(rank()); }
};

struct LoRAFile {
  std::string path;
  std::string format;  // "kohya", "peft", "diffusers-legacy"
  std::vector<LoRAModule> modules;
  std::map<std::string, std::string> metadata;
};

// Reads and resolves a LoRA against `targets`. LoadError naming the file and every problem at
// once: unknown modules (a LoRA for another model family), shape mismatches, unpaired or
// non-finite tensors, unsupported LyCORIS variants.
LoRAFile read_lora(const std::string& path, const LoRATargets& targets);

enum class LoRAMode {
  Merge,    // folded into the weights (no cost per step; undone only by reloading)
  OnTheFly  // adapters evaluated beside the layers of attention blocks and CLIP layers (others merged)
};
// Whether a module's forward evaluates on-the-fly adapters: the layers of the UNet's attention
// blocks and of the CLIP encoder layers (nn::linear / nn::conv1x1 call sites).
bool lora_on_the_fly_capable(const std::string& component, const std::string& module);

struct LoRAApplyReport {
  size_t merged = 0, attached = 0;
};
// `multiplier` scales every module; `text_encoder_multiplier`, when given, replaces it for the
// text encoders' modules (A1111's <lora:name:te:unet>).
LoRAApplyReport apply_lora(const LoRAFile& lora, const LoRATargets& targets, double multiplier, LoRAMode mode,
                           std::optional<double> text_encoder_multiplier = std::nullopt);

// kohya-ss file names for a module: "lora_unet_down_blocks_0_attentions_0_proj_in" (SDXL: the LDM
// name, input_blocks_1_1_proj_in), "lora_te_..." (SDXL: lora_te1_ / lora_te2_).
std::string kohya_lora_name(const LoRATargets& targets, const std::string& component, const std::string& module);

// Writes modules in the kohya layout (down/up/alpha per module, in `dtype`) with the ss_* metadata
// A1111 and kohya tools read (ss_network_module, ss_network_dim, ss_network_alpha,
// ss_base_model_version) plus `metadata`. Atomic.
void save_lora_kohya(const std::string& path, const LoRATargets& targets, const std::vector<LoRAModule>& modules,
                     const std::map<std::string, std::string>& metadata = {}, at::ScalarType dtype = at::kHalf);

}  // namespace genvis::models
