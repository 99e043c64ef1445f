// Original single-file Stable Diffusion checkpoints (CompVis/LDM and Stability SGM layouts,
// .safetensors or .ckpt) for SD1, SD2 and SDXL: component configs read off the tensor shapes,
// then every component loaded from the one file.
//
//   auto reader = genvis::io::open_weights("v1-5-pruned-emaonly.safetensors");
//   SingleFileConfigs c = infer_single_file_configs(reader->tensors());
//   for (const auto& a : c.assumptions) std::cout << a << "\n";   // what the shapes could not tell
//
//   SingleFileModel m = load_single_file("sd_xl_base_1.0.safetensors",
//                                        {{"unet", {{"sample_size", 96}}}}, at::kHalf, at::Device(at::kCUDA));
//   // m.unet, m.vae, m.text_encoder, m.text_encoder_2 (SDXL only; nullptr otherwise): eval mode, on the device
//
// Read off shapes: UNet in/out channels (9 = inpainting), block_out_channels, layers_per_block,
// which levels have attention (down/up block types), transformer depth per level,
// cross_attention_dim, linear vs 1x1-conv projection, SDXL text_time conditioning; VAE channels,
// levels, latent channels, mid attention; CLIP vocab, hidden, intermediate, layers, positions,
// projection. Not stored anywhere (the documented defaults of the released models are used and
// listed in `assumptions`): attention head counts, CLIP activation, SD2's penultimate-layer text
// encoder, the VAE scaling factor, sample sizes.
#pragma once
#include "io/dtype.h"
#include "models/autoencoder_kl/autoencoder_kl.h"
#include "models/clip_text/clip_text_model.h"
#include "models/unet2d_condition/unet2d_condition.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::models {

// Each config is the object a diffusers/transformers config.json would hold.
struct SingleFileConfigs {
  std::string family;  // "sd1", "sd2", "sdxl"
  nlohmann::json unet, vae, text_encoder;
  nlohmann::json text_encoder_2;  // null unless sdxl (OpenCLIP bigG, CLIPTextModelWithProjection)
  // "<component>.<key> = <value>: <why>" for every value the shapes could not tell and no
  // override gave.
  std::vector<std::string> assumptions;
};

// `overrides` = {"unet": {...}, "vae": {...}, "text_encoder": {...}, "text_encoder_2": {...}}
// (any subset), each merged onto the inferred config with JSON merge-patch. Unknown components, a
// non-object value, or text_encoder_2 for a family without one: UsageError. A file that is not a
// complete SD1/SD2/SDXL single file, or whose shapes contradict each other: LoadError naming the
// tensors looked for. The merged configs are validated (LoadError naming the component).
SingleFileConfigs infer_single_file_configs(const std::vector<io::TensorInfo>& tensors,
                                            const nlohmann::json& overrides = nlohmann::json::object());

struct SingleFileModel {
  std::string family;
  UNet2DConditionModel unet{nullptr};
  AutoencoderKL vae{nullptr};
  CLIPTextModel text_encoder{nullptr};
  CLIPTextModelWithProjection text_encoder_2{nullptr};  // sdxl only
  SingleFileConfigs configs;
};

// Every component strict-loaded (weights cast to `dtype`), in eval mode, on `device`.
SingleFileModel load_single_file(const std::string& path, const nlohmann::json& overrides = nlohmann::json::object(),
                                 at::ScalarType dtype = at::kFloat, at::Device device = at::Device(at::kCPU));

// A UNet alone in the original LDM names: ComfyUI's diffusion_models/*.safetensors and
// ComfyUI-GGUF's *.gguf for SD1/SD2/SDXL (bare names), or the model.diffusion_model.* part of a
// checkpoint without the rest. The family comes from the UNet's own tensors (label_emb: SDXL; a
// linear proj_in: SD2; else SD1), the config is read off the shapes as for a whole checkpoint,
// `overrides` (a UNet config object) merged onto it. LoadError naming the file when it is not such
// a UNet.
struct LdmUNetFile {
  std::string family, prefix;  // prefix: "" or "model.diffusion_model."
  nlohmann::json config;
  std::vector<std::string> assumptions;
};
LdmUNetFile infer_ldm_unet_file(const std::string& path, const std::vector<io::TensorInfo>& tensors,
                                const nlohmann::json& overrides = nlohmann::json::object());
UNet2DConditionModel load_ldm_unet_file(const std::string& path, const nlohmann::json& overrides = nlohmann::json::object(),
                                        at::ScalarType dtype = at::kFloat);

}  // namespace genvis::models
