#include "models/detect.h"

#include "core/text.h"
#include "models/clip_vision/clip_vision_original_keys.h"
#include "models/umt5/umt5_original_keys.h"
#include "models/wan/wan_original_keys.h"

#include <algorithm>
#include <unordered_map>

namespace genvis::models {
namespace {

bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

class Names {
public:
  explicit Names(const std::vector<io::TensorInfo>& tensors) {
    for (const auto& t : tensors) by_name_.emplace(t.name, &t);
  }
  const io::TensorInfo* get(const std::string& name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  bool has(const std::string& name) const { return get(name) != nullptr; }
  bool any_prefix(const std::string& prefix) const { return count_prefix(prefix) > 0; }
  size_t count_prefix(const std::string& prefix) const {
    return std::count_if(by_name_.begin(), by_name_.end(), [&](const auto& kv) { return starts_with(kv.first, prefix); });
  }
  bool any_containing(const std::string& part) const {
    return std::any_of(by_name_.begin(), by_name_.end(), [&](const auto& kv) { return contains(kv.first, part); });
  }
  // The first tensor whose name starts with `prefix` and ends with `suffix` (any middle).
  const io::TensorInfo* find(const std::string& prefix, const std::string& suffix) const {
    const io::TensorInfo* best = nullptr;
    for (const auto& [name, t] : by_name_)
      if (starts_with(name, prefix) && name.size() >= prefix.size() + suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 && (!best || name < best->name))
        best = t;
    return best;
  }
  size_t size() const { return by_name_.size(); }
  const std::unordered_map<std::string, const io::TensorInfo*>& all() const { return by_name_; }

private:
  std::unordered_map<std::string, const io::TensorInfo*> by_name_;
};

int64_t dim(const io::TensorInfo* t, size_t i) { return t && t->shape.size() > i ? t->shape[i] : -1; }

void describe_unet_input(const io::TensorInfo* conv_in, LayoutGuess& g) {
  const int64_t in = dim(conv_in, 1);
  if (in == 9) g.details.push_back("inpainting (9 input channels)");
  else if (in > 0) g.details.push_back(std::to_string(in) + " input channels");
}

// Diffusers UNet2DConditionModel (unet/diffusion_pytorch_model.safetensors).
bool detect_diffusers_unet(const Names& n, LayoutGuess& g) {
  if (!n.has("conv_in.weight") || !n.has("time_embedding.linear_1.weight") || !n.any_prefix("down_blocks.")) return false;
  g.layout = "diffusers-unet";
  g.class_name = "UNet2DConditionModel";
  const auto* to_k = n.find("down_blocks.", ".attn2.to_k.weight");
  if (!to_k) to_k = n.find("mid_block.", ".attn2.to_k.weight");
  const auto* proj_in = n.find("down_blocks.", ".proj_in.weight");
  if (n.has("add_embedding.linear_1.weight")) g.family = "sdxl";
  else if (proj_in && proj_in->shape.size() == 2) g.family = "sd2";
  else if (to_k) g.family = "sd1";
  if (to_k) g.details.push_back("cross-attention dim " + std::to_string(dim(to_k, 1)));
  g.details.push_back("model channels " + std::to_string(dim(n.get("conv_in.weight"), 0)));
  describe_unet_input(n.get("conv_in.weight"), g);
  if (proj_in) g.details.push_back(proj_in->shape.size() == 2 ? "linear projection" : "conv projection");
  return true;
}

// Diffusers AutoencoderKL (2D) or AutoencoderKLWan (3D causal, 5-D conv weights).
bool detect_diffusers_vae(const Names& n, LayoutGuess& g) {
  const auto* conv = n.get("encoder.conv_in.weight");
  if (!conv || !n.has("decoder.conv_in.weight")) return false;
  if (conv->shape.size() == 5) {
    g.layout = "diffusers-wan-vae";
    g.class_name = "AutoencoderKLWan";
    g.family = "wan2.1";
  } else {
    g.layout = "diffusers-vae";
    g.class_name = "AutoencoderKL";
  }
  g.details.push_back("latent channels " + std::to_string(dim(n.get("decoder.conv_in.weight"), 1)));
  g.details.push_back("base channels " + std::to_string(dim(conv, 0)));
  return true;
}

bool detect_clip_text(const Names& n, LayoutGuess& g) {
  const auto* tok = n.get("text_model.embeddings.token_embedding.weight");
  if (!tok) return false;
  g.layout = "transformers-clip-text";
  g.class_name = n.has("text_projection.weight") ? "CLIPTextModelWithProjection" : "CLIPTextModel";
  const size_t layers = [&] {
    size_t i = 0;
    while (n.has("text_model.encoder.layers." + std::to_string(i) + ".layer_norm1.weight")) ++i;
    return i;
  }();
  g.details.push_back("vocab " + std::to_string(dim(tok, 0)) + ", hidden " + std::to_string(dim(tok, 1)) + ", " +
                      std::to_string(layers) + " layers");
  return true;
}

bool detect_wan_transformer(const Names& n, LayoutGuess& g) {
  if (!n.has("patch_embedding.weight") || !n.any_prefix("blocks.0.attn1.")) return false;
  g.layout = "diffusers-wan-transformer";
  g.class_name = "WanTransformer3DModel";
  g.family = "wan2.1";
  g.pipeline = n.has("condition_embedder.image_embedder.norm1.weight") ? "WanImageToVideoPipeline" : "WanPipeline";
  size_t blocks = 0;
  while (n.any_prefix("blocks." + std::to_string(blocks) + ".")) ++blocks;
  g.details.push_back(std::to_string(blocks) + " blocks, hidden " + std::to_string(dim(n.get("patch_embedding.weight"), 0)));
  return true;
}

// Float8 weights: their count, and whether they are ComfyUI's "scaled" kind (a scale per tensor).
void describe_float8(const Names& n, LayoutGuess& g) {
  size_t f8 = 0;
  for (const auto& [name, t] : n.all()) f8 += t->dtype == io::DType::F8_E4M3 || t->dtype == io::DType::F8_E5M2;
  if (f8 == 0) return;
  const bool scaled = n.has("scaled_fp8") || n.any_containing(".scale_weight");
  g.details.push_back(std::to_string(f8) + " float8 tensors" +
                      (scaled ? " with per-tensor scales (ComfyUI *_scaled): cannot be loaded, use an fp16/bf16 file"
                              : ""));
}

// Wan's release layout (blocks.N.self_attn.q, head.modulation), bare or under ComfyUI's prefix.
bool detect_wan_original_transformer(const std::vector<io::TensorInfo>& tensors, const Names& n, LayoutGuess& g) {
  const auto prefix = wan_original_prefix(tensors);
  if (!prefix) return false;
  const std::string& p = *prefix;
  g.layout = p.empty() ? "wan-original-transformer" : "comfyui-wan-transformer";
  g.class_name = "WanTransformer3DModel";
  g.family = "wan2.1";
  const bool i2v = n.has(p + "img_emb.proj.1.weight");
  g.pipeline = i2v ? "WanImageToVideoPipeline" : "WanPipeline";
  size_t blocks = 0;
  while (n.has(p + "blocks." + std::to_string(blocks) + ".modulation")) ++blocks;
  const auto* patch = n.get(p + "patch_embedding.weight");
  g.details.push_back(std::to_string(blocks) + " blocks, hidden " + std::to_string(dim(patch, 0)) + ", ffn " +
                      std::to_string(dim(n.get(p + "blocks.0.ffn.0.weight"), 0)) + ", " +
                      std::to_string(dim(patch, 1)) + " input channels, text dim " +
                      std::to_string(dim(n.get(p + "text_embedding.0.weight"), 1)));
  g.details.push_back(i2v ? "image-to-video (CLIP image dim " + std::to_string(dim(n.get(p + "img_emb.proj.1.weight"), 1)) + ")"
                          : "text-to-video");
  if (!p.empty()) g.details.push_back("tensors under " + p);
  if (n.has(p + "img_emb.emb_pos")) g.details.push_back("first-last-frame (FLF2V) model: not supported");
  describe_float8(n, g);
  return true;
}

bool detect_wan_original_vae(const std::vector<io::TensorInfo>& tensors, const Names& n, const std::string& format,
                             LayoutGuess& g) {
  if (!n.has("encoder.conv1.weight") || !n.has("decoder.upsamples.0.residual.0.gamma")) return false;
  g.layout = format == "safetensors" ? "comfyui-wan-vae" : "wan-original-vae";
  g.class_name = "AutoencoderKLWan";
  g.family = "wan2.1";
  g.details.push_back("latent channels " + std::to_string(dim(n.get("conv2.weight"), 0)) + ", base channels " +
                      std::to_string(dim(n.get("encoder.conv1.weight"), 0)));
  describe_float8(n, g);
  return true;
}

bool detect_umt5(const std::vector<io::TensorInfo>& tensors, const Names& n, LayoutGuess& g) {
  std::string p;
  if (is_umt5_original(tensors)) {
    g.layout = "wan-original-umt5";
  } else if (const auto prefix = umt5_transformers_prefix(tensors);
             prefix && n.has(*prefix + "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight")) {
    // transformers' T5 has the relative bias in block 0 only; UMT5 in every block.
    g.layout = "transformers-umt5";
    p = *prefix;
  } else {
    return false;
  }
  g.class_name = "UMT5EncoderModel";
  g.family = "wan2.1";
  const bool original = g.layout == "wan-original-umt5";
  const auto* embedding = n.get(original ? "token_embedding.weight" : p + "shared.weight");
  if (!embedding) embedding = n.get(p + "encoder.embed_tokens.weight");
  size_t layers = 0;
  while (n.has(original ? "blocks." + std::to_string(layers) + ".attn.q.weight"
                        : p + "encoder.block." + std::to_string(layers) + ".layer.0.SelfAttention.q.weight"))
    ++layers;
  g.details.push_back("vocab " + std::to_string(dim(embedding, 0)) + ", d_model " + std::to_string(dim(embedding, 1)) +
                      ", " + std::to_string(layers) + " layers");
  if (!p.empty()) g.details.push_back("tensors under " + p);
  describe_float8(n, g);
  return true;
}

bool detect_clip_vision(const std::vector<io::TensorInfo>& tensors, const Names& n, LayoutGuess& g) {
  const bool original = is_clip_vision_wan_original(tensors);
  if (!original && !is_clip_vision_transformers(tensors)) return false;
  g.layout = original ? "wan-original-clip-vision" : "transformers-clip-vision";
  g.class_name = !original && n.has("visual_projection.weight") ? "CLIPVisionModelWithProjection" : "CLIPVisionModel";
  const auto* patch = n.get(original ? "visual.patch_embedding.weight" : "vision_model.embeddings.patch_embedding.weight");
  size_t layers = 0;
  while (n.has(original ? "visual.transformer." + std::to_string(layers) + ".norm1.weight"
                        : "vision_model.encoder.layers." + std::to_string(layers) + ".layer_norm1.weight"))
    ++layers;
  g.details.push_back("hidden " + std::to_string(dim(patch, 0)) + ", patch " + std::to_string(dim(patch, 2)) + ", " +
                      std::to_string(layers) + " layers");
  if (original && n.any_prefix("textual.")) g.details.push_back("text tower (textual.*): not used, skipped");
  describe_float8(n, g);
  return true;
}

// Original CompVis/Stability single-file checkpoints (model.diffusion_model.*).
bool detect_single_file(const Names& n, LayoutGuess& g) {
  const auto* conv_in = n.get("model.diffusion_model.input_blocks.0.0.weight");
  if (!conv_in) return false;
  g.layout = "sd-single-file";
  const std::vector<std::pair<std::string, std::string>> prefixes = {
      {"unet", "model.diffusion_model."},
      {"vae", "first_stage_model."},
      {"text_encoder (CLIP, HF layout)", "cond_stage_model.transformer."},
      {"text_encoder (OpenCLIP)", "cond_stage_model.model."},
      {"text_encoders (SDXL conditioner)", "conditioner.embedders."},
      {"ema", "model_ema."},
  };
  for (const auto& [component, prefix] : prefixes)
    if (const size_t c = n.count_prefix(prefix)) g.components[component] = c;

  const bool sdxl_unet = n.has("model.diffusion_model.label_emb.0.0.weight");
  if (sdxl_unet) {
    g.family = n.any_prefix("conditioner.embedders.1.") ? "sdxl" : "sdxl-refiner";
  } else if (n.any_prefix("cond_stage_model.model.")) {
    g.family = "sd2";
  } else if (n.any_prefix("cond_stage_model.transformer.")) {
    g.family = "sd1";
  } else {
    // UNet alone: SD2 uses linear proj_in, SD1 a 1x1 conv.
    const auto* proj = n.find("model.diffusion_model.input_blocks.", ".proj_in.weight");
    if (proj) g.family = proj->shape.size() == 2 ? "sd2" : "sd1";
  }
  if (const auto* to_k = n.find("model.diffusion_model.input_blocks.", ".attn2.to_k.weight"))
    g.details.push_back("cross-attention dim " + std::to_string(dim(to_k, 1)));
  g.details.push_back("model channels " + std::to_string(dim(conv_in, 0)));
  describe_unet_input(conv_in, g);
  // The diffusers pipeline class the checkpoint converts to: the pipeline registry's key.
  const bool inpainting = dim(conv_in, 1) == 9;
  if (g.family == "sdxl") g.class_name = inpainting ? "StableDiffusionXLInpaintPipeline" : "StableDiffusionXLPipeline";
  else if (g.family == "sdxl-refiner") g.class_name = "StableDiffusionXLImg2ImgPipeline";
  else if (!g.family.empty()) g.class_name = inpainting ? "StableDiffusionInpaintPipeline" : "StableDiffusionPipeline";
  return true;
}

// A UNet alone in the original names, bare (ComfyUI's diffusion_models files, ComfyUI-GGUF).
bool detect_ldm_unet(const Names& n, LayoutGuess& g) {
  const auto* conv_in = n.get("input_blocks.0.0.weight");
  if (!conv_in || !n.has("out.2.weight")) return false;
  g.layout = "ldm-unet";
  g.class_name = "UNet2DConditionModel";
  if (n.has("label_emb.0.0.weight")) {
    g.family = "sdxl";
  } else if (const auto* proj = n.find("input_blocks.", ".proj_in.weight")) {
    g.family = proj->shape.size() == 2 ? "sd2" : "sd1";
  }
  if (const auto* to_k = n.find("input_blocks.", ".attn2.to_k.weight"))
    g.details.push_back("cross-attention dim " + std::to_string(dim(to_k, 1)));
  g.details.push_back("model channels " + std::to_string(dim(conv_in, 0)));
  describe_unet_input(conv_in, g);
  g.details.push_back("load with --unet FILE beside a model's text encoder and VAE");
  return true;
}

bool detect_lora(const Names& n, const std::map<std::string, std::string>& metadata, LayoutGuess& g) {
  const bool kohya = n.any_prefix("lora_unet_") || n.any_prefix("lora_te_") || n.any_prefix("lora_te1_") ||
                     n.any_prefix("lora_te2_");
  const bool diffusers = n.any_containing(".lora_A.weight") || n.any_containing(".lora.down.weight") ||
                         n.any_containing(".lora_linear_layer.down.weight");
  if (!kohya && !diffusers) return false;
  g.layout = kohya ? "kohya-lora" : "diffusers-lora";
  if (const auto it = metadata.find("ss_base_model_version"); it != metadata.end()) {
    const std::string& v = it->second;
    g.family = starts_with(v, "sdxl") ? "sdxl" : starts_with(v, "sd_v2") ? "sd2" : starts_with(v, "sd_v1") ? "sd1" : "";
    g.details.push_back("base model " + v);
  } else if (n.any_prefix("lora_te2_") || n.any_prefix("text_encoder_2.")) {
    g.family = "sdxl";
  }
  if (const auto it = metadata.find("ss_network_dim"); it != metadata.end()) g.details.push_back("rank " + it->second);
  if (const auto it = metadata.find("ss_network_alpha"); it != metadata.end()) g.details.push_back("alpha " + it->second);
  size_t modules = 0;
  for (const auto& [name, t] : n.all())
    if (contains(name, "lora_down.weight") || contains(name, "lora_A.weight") || contains(name, "lora.down.weight") ||
        contains(name, "lora_linear_layer.down.weight"))
      ++modules;
  g.details.push_back(std::to_string(modules) + " adapted modules");
  return true;
}

bool detect_embedding(const Names& n, LayoutGuess& g) {
  if (const auto* e = n.get("emb_params")) {
    g.layout = "a1111-embedding";
    g.details.push_back(std::to_string(e->shape.size() == 2 ? e->shape[0] : 1) + " vector(s) of " +
                        std::to_string(e->shape.empty() ? 0 : e->shape.back()));
    return true;
  }
  if (n.any_prefix("string_to_param.")) {
    g.layout = "a1111-embedding";
    return true;
  }
  if (n.has("clip_l") && n.has("clip_g") && n.size() == 2) {
    g.layout = "a1111-embedding";
    g.family = "sdxl";
    return true;
  }
  // diffusers learned_embeds: one (or a few) tensors named by their placeholder token.
  if (n.size() >= 1 && n.size() <= 4 && std::all_of(n.all().begin(), n.all().end(), [](const auto& kv) {
        return kv.first.find('.') == std::string::npos && kv.second->shape.size() >= 1 && kv.second->shape.size() <= 2 &&
               io::dtype_is_floating(kv.second->dtype) && kv.first.size() >= 3 && kv.first.front() == '<' &&
               kv.first.back() == '>';
      })) {
    g.layout = "diffusers-embedding";
    for (const auto& [name, t] : n.all()) g.details.push_back("token " + name + " " + io::shape_string(t->shape));
    return true;
  }
  return false;
}

}  // namespace

LayoutGuess detect_layout(const std::vector<io::TensorInfo>& tensors, const std::map<std::string, std::string>& metadata,
                          const std::string& format) {
  const Names n(tensors);
  LayoutGuess g;
  if (detect_single_file(n, g)) {
    g.pipeline = g.class_name;
    return g;
  }
  if (detect_lora(n, metadata, g) || detect_diffusers_unet(n, g) || detect_ldm_unet(n, g) || detect_diffusers_vae(n, g) ||
      detect_clip_text(n, g) || detect_wan_transformer(n, g) || detect_wan_original_transformer(tensors, n, g) ||
      detect_wan_original_vae(tensors, n, format, g) || detect_umt5(tensors, n, g) || detect_clip_vision(tensors, n, g) ||
      detect_embedding(n, g))
    return g;
  g = LayoutGuess{};
  g.layout = "unknown";
  return g;
}

}  // namespace genvis::models
