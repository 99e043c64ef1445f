#include "models/single_file/single_file.h"

#include "core/error.h"
#include "io/weights.h"
#include "models/autoencoder_kl/ldm_keys.h"
#include "models/clip_text/clip_text_loader.h"
#include "core/text.h"
#include "models/detect.h"
#include "models/unet2d_condition/ldm_keys.h"

#include <algorithm>
#include <array>
#include <unordered_map>

namespace genvis::models {
namespace {

using json = nlohmann::json;

constexpr std::array<const char*, 4> kComponents{"unet", "vae", "text_encoder", "text_encoder_2"};

std::string str(int64_t v) { return std::to_string(v); }

// A value the shapes could not tell: "<component>.<key> = <value>: <reason>". Dropped when an
// override sets the key.
struct Assumption {
  std::string component, key;
  json value;
  std::string reason;
};

class Tensors {
public:
  explicit Tensors(const std::vector<io::TensorInfo>& tensors) {
    for (const auto& t : tensors) by_name_.emplace(t.name, &t);
  }
  const io::TensorInfo* get(const std::string& name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  bool has(const std::string& name) const { return get(name) != nullptr; }
  const io::TensorInfo& require(const std::string& name, const std::string& what) const {
    const auto* t = get(name);
    if (!t) throw LoadError("", name, "not found (looked for the " + what + ")");
    return *t;
  }
  size_t count_prefix(const std::string& prefix) const {
    return std::count_if(by_name_.begin(), by_name_.end(), [&](const auto& kv) { return kv.first.rfind(prefix, 0) == 0; });
  }
  // How many of prefix+"0"+suffix, prefix+"1"+suffix, ... exist in a row.
  int64_t count_indexed(const std::string& prefix, const std::string& suffix) const {
    int64_t i = 0;
    while (has(prefix + str(i) + suffix)) ++i;
    return i;
  }

private:
  std::unordered_map<std::string, const io::TensorInfo*> by_name_;
};

int64_t dim(const io::TensorInfo& t, size_t i) {
  if (t.shape.size() <= i)
    throw LoadError("", t.name,
                    "expected at least " + str(static_cast<int64_t>(i) + 1) + " dims, got " + io::shape_string(t.shape));
  return t.shape[i];
}

// An int when every entry is the same (how the released configs write it), else the list.
json same_or_list(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [&](int64_t x) { return x == v.front(); }) ? json(v.front()) : json(v);
}

// Heads of 64 channels (SD2/SDXL UNets, every OpenCLIP/CLIP text encoder); 1 when that does not divide.
int64_t heads_of_64(int64_t channels) { return channels >= 64 && channels % 64 == 0 ? channels / 64 : 1; }

// ---------------------------------------------------------------------------------------------
// UNet (model.diffusion_model.*): the LDM numbering is walked level by level. input_blocks: 0 is
// conv_in, then per level `layers` entries (.0 resnet, .1 attention if the level has one), then
// a downsampler (.0.op) except after the last level. output_blocks: per level, deepest first,
// layers+1 entries.

struct UNetLevel {
  int64_t channels = 0, layers = 0;
  bool down_attention = false, up_attention = false;
  int64_t down_depth = 0, up_depth = 0;  // transformer blocks per attention
};

json infer_unet(const Tensors& t, const std::string& family, int64_t pooled_dim, std::vector<Assumption>& assumed) {
  const std::string p = kLdmUNetPrefix;
  const auto& conv_in = t.require(p + "input_blocks.0.0.weight", "UNet conv_in");
  const auto& conv_out = t.require(p + "out.2.weight", "UNet conv_out");
  const auto& time_in = t.require(p + "time_embed.0.weight", "UNet timestep embedding");
  const auto depth_at = [&](const std::string& block) {
    return t.count_indexed(block + "1.transformer_blocks.", ".norm1.weight");
  };
  const auto attention_at = [&](const std::string& block) {
    const bool attention = t.has(block + "1.proj_in.weight");
    if (attention && depth_at(block) == 0)
      throw LoadError("", block + "1.transformer_blocks.0.norm1.weight", "not found (the attention block has a proj_in)");
    return attention;
  };

  // 1. down levels
  std::vector<UNetLevel> levels(1);
  int64_t k = 1;
  for (;; ++k) {
    const std::string b = p + "input_blocks." + str(k) + ".";
    UNetLevel& level = levels.back();
    if (const auto* conv = t.get(b + "0.in_layers.2.weight")) {
      const int64_t channels = dim(*conv, 0), depth = depth_at(b);
      const bool attention = attention_at(b);
      if (level.layers == 0) {
        level.channels = channels;
        level.down_attention = attention;
        level.down_depth = depth;
      } else if (channels != level.channels || attention != level.down_attention || depth != level.down_depth) {
        throw LoadError("", b + "*",
                        "UNet input block differs from the others of its level in channels, attention or transformer depth");
      }
      ++level.layers;
    } else if (level.layers > 0 && t.has(b + "0.op.weight")) {
      levels.emplace_back();
    } else {
      break;
    }
  }
  if (levels.back().layers == 0)
    throw LoadError(
        "", p + "input_blocks." + str(k) + ".0.in_layers.2.weight",
        "not found (looked for a UNet down-block resnet after " + (k == 1 ? std::string("conv_in") : "a downsampler") + ")");
  const size_t n = levels.size();

  // 2. mid block
  const std::string mid = p + "middle_block.";
  t.require(mid + "0.in_layers.2.weight", "UNet mid-block resnet");
  const auto& mid_proj =
      t.require(mid + "1.proj_in.weight", "UNet mid-block attention (only UNetMidBlock2DCrossAttn is supported)");
  const int64_t mid_depth = depth_at(mid);
  const auto& to_k = t.require(mid + "1.transformer_blocks.0.attn2.to_k.weight", "UNet cross-attention");
  t.require(mid + "2.in_layers.2.weight", "UNet mid-block second resnet");

  // 3. up levels must mirror the down levels
  k = 0;
  for (size_t i = 0; i < n; ++i) {
    UNetLevel& level = levels[n - 1 - i];
    for (int64_t j = 0; j <= level.layers; ++j, ++k) {
      const std::string b = p + "output_blocks." + str(k) + ".";
      const auto& conv =
          t.require(b + "0.in_layers.2.weight", "UNet up-block resnet (level " + str(static_cast<int64_t>(i)) + ")");
      const bool attention = attention_at(b);
      const int64_t depth = depth_at(b);
      if (dim(conv, 0) != level.channels)
        throw LoadError("", conv.name,
                        "has " + str(dim(conv, 0)) + " output channels, the matching down level " + str(level.channels));
      if (j == 0) {
        level.up_attention = attention;
        level.up_depth = depth;
      } else if (attention != level.up_attention || depth != level.up_depth) {
        throw LoadError("", b + "*", "UNet output block differs from the others of its level in attention or transformer depth");
      }
    }
  }
  if (t.has(p + "output_blocks." + str(k) + ".0.in_layers.2.weight"))
    throw LoadError("", p + "output_blocks." + str(k) + ".0.in_layers.2.weight",
                    "more output blocks than the " + str(static_cast<int64_t>(n)) + " down levels imply");

  std::vector<int64_t> channels, layers, depths;
  json down_types = json::array(), up_types = json::array();
  for (size_t i = 0; i < n; ++i) {
    const UNetLevel& l = levels[i];
    if (l.down_attention && l.up_attention && l.down_depth != l.up_depth)
      throw LoadError("", p + "output_blocks",
                      "level " + str(static_cast<int64_t>(i)) + " has " + str(l.down_depth) +
                          " transformer blocks going down and " + str(l.up_depth) +
                          " going up (reverse_transformer_layers_per_block) - unsupported");
    channels.push_back(l.channels);
    layers.push_back(l.layers);
    // Levels without attention: diffusers still lists a depth; the last level's is the mid block's.
    depths.push_back(l.down_attention ? l.down_depth : l.up_attention ? l.up_depth : i + 1 == n ? mid_depth : 1);
    down_types.push_back(l.down_attention ? "CrossAttnDownBlock2D" : "DownBlock2D");
    up_types.push_back(levels[n - 1 - i].up_attention ? "CrossAttnUpBlock2D" : "UpBlock2D");
  }
  if (depths.back() != mid_depth)
    throw LoadError(
        "", mid + "1.transformer_blocks",
        "mid block has " + str(mid_depth) + " transformer blocks, the last level " + str(depths.back()) + " - unsupported");
  const int64_t model_channels = dim(conv_in, 0);
  if (model_channels != channels[0] || dim(time_in, 1) != model_channels)
    throw LoadError("", time_in.name,
                    "shape " + io::shape_string(time_in.shape) + " does not fit conv_in " + io::shape_string(conv_in.shape));

  json u = json::object();
  u["_class_name"] = "UNet2DConditionModel";
  u["_diffusers_version"] = "0.31.0";
  u["act_fn"] = "silu";
  u["addition_embed_type"] = nullptr;
  u["addition_embed_type_num_heads"] = 64;
  u["addition_time_embed_dim"] = nullptr;
  u["attention_type"] = "default";
  u["block_out_channels"] = channels;
  u["center_input_sample"] = false;
  u["class_embed_type"] = nullptr;
  u["class_embeddings_concat"] = false;
  u["conv_in_kernel"] = dim(conv_in, 2);
  u["conv_out_kernel"] = dim(conv_out, 2);
  u["cross_attention_dim"] = dim(to_k, 1);
  u["cross_attention_norm"] = nullptr;
  u["down_block_types"] = down_types;
  u["downsample_padding"] = 1;
  u["dropout"] = 0.0;
  u["dual_cross_attention"] = false;
  u["encoder_hid_dim"] = nullptr;
  u["encoder_hid_dim_type"] = nullptr;
  u["flip_sin_to_cos"] = true;
  u["freq_shift"] = 0;
  u["in_channels"] = dim(conv_in, 1);  // 9: inpainting (latents + mask + masked-image latents)
  u["layers_per_block"] = same_or_list(layers);
  u["mid_block_only_cross_attention"] = nullptr;
  u["mid_block_scale_factor"] = 1;
  u["mid_block_type"] = "UNetMidBlock2DCrossAttn";
  u["norm_eps"] = 1e-5;
  u["norm_num_groups"] = 32;
  u["num_attention_heads"] = nullptr;
  u["num_class_embeds"] = nullptr;
  u["only_cross_attention"] = false;
  u["out_channels"] = dim(conv_out, 0);
  u["projection_class_embeddings_input_dim"] = nullptr;
  u["resnet_out_scale_factor"] = 1.0;
  u["resnet_skip_time_act"] = false;
  u["resnet_time_scale_shift"] = "default";
  u["reverse_transformer_layers_per_block"] = nullptr;
  u["time_cond_proj_dim"] = nullptr;
  u["time_embedding_act_fn"] = nullptr;
  u["time_embedding_dim"] = dim(time_in, 0) == 4 * model_channels ? json(nullptr) : json(dim(time_in, 0));
  u["time_embedding_type"] = "positional";
  u["timestep_post_act"] = nullptr;
  u["transformer_layers_per_block"] = same_or_list(depths);
  u["up_block_types"] = up_types;
  u["upcast_attention"] = false;
  u["use_linear_projection"] = mid_proj.shape.size() == 2;  // Linear [C,C] vs 1x1 conv [C,C,1,1]

  // SDXL: label_emb takes [pooled text embedding | 6 sinusoids of addition_time_embed_dim].
  if (const auto* label = t.get(p + "label_emb.0.0.weight")) {
    const int64_t inputs = dim(*label, 1);
    u["addition_embed_type"] = "text_time";
    u["projection_class_embeddings_input_dim"] = inputs;
    if (pooled_dim > 0 && inputs > pooled_dim && (inputs - pooled_dim) % 6 == 0) {
      u["addition_time_embed_dim"] = (inputs - pooled_dim) / 6;
    } else {
      u["addition_time_embed_dim"] = 256;
      assumed.push_back({"unet", "addition_time_embed_dim", 256,
                         "the SDXL default; label_emb's " + str(inputs) +
                             " inputs do not split into the pooled text embedding (" + str(pooled_dim) + ") + 6 time ids"});
    }
  }

  // Not stored: head counts (only their product with head_dim is), sample size, upcasting.
  if (family == "sd1") {
    u["attention_head_dim"] = 8;
    assumed.push_back(
        {"unet", "attention_head_dim", 8, "heads per block, the SD1 default (head counts are not stored in the weights)"});
  } else {
    std::vector<int64_t> heads;
    for (const int64_t c : channels) heads.push_back(heads_of_64(c));
    u["attention_head_dim"] = heads;
    const bool exact = std::all_of(channels.begin(), channels.end(), [](int64_t c) { return heads_of_64(c) * 64 == c; });
    assumed.push_back({"unet", "attention_head_dim", heads,
                       std::string("heads per block = block_out_channels / 64 (64-channel heads, the ") +
                           (family == "sd2" ? "SD2" : "SDXL") + " layout; head counts are not stored in the weights)" +
                           (exact ? "" : "; channels that are no multiple of 64 got 1 head")});
  }
  const int64_t sample_size = family == "sd1" ? 64 : family == "sd2" ? 96 : 128;
  u["sample_size"] = sample_size;
  assumed.push_back({"unet", "sample_size", sample_size,
                     family == "sd1"   ? "512 px, the SD1 default"
                     : family == "sd2" ? "768 px, the SD 2.x 768-v default (512-base models: 64)"
                                       : "1024 px, the SDXL default"});
  if (family == "sd2")
    assumed.push_back(
        {"unet", "upcast_attention", false, "SD 2.0 value (SD 2.1 configs say true; it only matters in half precision)"});
  return u;
}

// ---------------------------------------------------------------------------------------------
// VAE (first_stage_model.*): encoder.down.N.block.M, decoder.up.N.block.M (N counted from the
// lowest resolution), mid.block_1/attn_1/block_2.

json infer_vae(const Tensors& t, const std::string& family, std::vector<Assumption>& assumed) {
  const std::string p = kLdmVAEPrefix;
  const auto& conv_in = t.require(p + "encoder.conv_in.weight", "VAE encoder conv_in");
  const int64_t levels = t.count_indexed(p + "encoder.down.", ".block.0.conv1.weight");
  if (levels == 0) t.require(p + "encoder.down.0.block.0.conv1.weight", "VAE encoder blocks");
  std::vector<int64_t> channels;
  for (int64_t i = 0; i < levels; ++i)
    channels.push_back(dim(t.require(p + "encoder.down." + str(i) + ".block.0.conv1.weight", "VAE"), 0));
  const int64_t layers = t.count_indexed(p + "encoder.down.0.block.", ".conv1.weight");
  // The decoder has one more resnet per level than the encoder.
  t.require(p + "decoder.up." + str(levels - 1) + ".block." + str(layers) + ".conv1.weight", "VAE decoder blocks");
  const auto& post_in = t.require(p + "decoder.conv_in.weight", "VAE decoder conv_in");
  const auto& post_out = t.require(p + "decoder.conv_out.weight", "VAE decoder conv_out");

  json v = json::object();
  v["_class_name"] = "AutoencoderKL";
  v["_diffusers_version"] = "0.31.0";
  v["act_fn"] = "silu";
  v["block_out_channels"] = channels;
  v["down_block_types"] = std::vector<std::string>(channels.size(), "DownEncoderBlock2D");
  v["force_upcast"] = true;
  v["in_channels"] = dim(conv_in, 1);
  v["latent_channels"] = dim(post_in, 1);
  v["latents_mean"] = nullptr;
  v["latents_std"] = nullptr;
  v["layers_per_block"] = layers;
  v["mid_block_add_attention"] = t.has(p + "encoder.mid.attn_1.q.weight");
  v["norm_num_groups"] = 32;
  v["out_channels"] = dim(post_out, 0);
  v["shift_factor"] = nullptr;
  v["up_block_types"] = std::vector<std::string>(channels.size(), "UpDecoderBlock2D");
  v["use_post_quant_conv"] = t.has(p + "post_quant_conv.weight");
  v["use_quant_conv"] = t.has(p + "quant_conv.weight");

  const double scaling = family == "sdxl" ? 0.13025 : 0.18215;
  v["scaling_factor"] = scaling;
  assumed.push_back(
      {"vae", "scaling_factor", scaling,
       std::string("latent scale of the ") + (family == "sdxl" ? "SDXL" : "SD1/SD2") + " VAE (not stored in the weights)"});
  const int64_t sample_size = family == "sd1" ? 512 : family == "sd2" ? 768 : 1024;
  v["sample_size"] = sample_size;
  assumed.push_back({"vae", "sample_size", sample_size, "the released config's value (unused by the model)"});
  return v;
}

// ---------------------------------------------------------------------------------------------
// CLIP text encoders: transformers names under a prefix (SD1, SDXL's first encoder) or OpenCLIP
// names (SD2, SDXL's second encoder).

struct TextEncoderSpec {
  std::string component;  // "text_encoder" / "text_encoder_2"
  std::string prefix;
  CLIPTextLayout layout;
  bool with_projection = false;  // CLIPTextModelWithProjection
  bool penultimate = false;      // SD2: the model ends one block before the stored ones
  std::string hidden_act, model;  // activation and the released model it comes from
};

std::string torch_dtype(io::DType d) {
  switch (d) {
    case io::DType::F16: return "float16";
    case io::DType::BF16: return "bfloat16";
    case io::DType::F32: return "float32";
    default: return "";
  }
}

json infer_clip(const Tensors& t, const TextEncoderSpec& s, std::vector<Assumption>& assumed) {
  const std::string what = s.component + " (" + s.model + ")";
  const io::TensorInfo *tok = nullptr, *pos = nullptr, *fc1 = nullptr, *proj = nullptr;
  int64_t stored_layers = 0, projection_dim = 0;
  if (s.layout == CLIPTextLayout::Transformers) {
    // Some SD1 files predate transformers' text_model wrapper.
    const std::string base = t.has(s.prefix + "embeddings.token_embedding.weight") ? s.prefix : s.prefix + "text_model.";
    tok = &t.require(base + "embeddings.token_embedding.weight", what + " token embedding");
    pos = &t.require(base + "embeddings.position_embedding.weight", what + " position embedding");
    fc1 = &t.require(base + "encoder.layers.0.mlp.fc1.weight", what + " first layer");
    stored_layers = t.count_indexed(base + "encoder.layers.", ".layer_norm1.weight");
    if ((proj = t.get(s.prefix + "text_projection.weight"))) projection_dim = dim(*proj, 0);  // Linear [P, C]
  } else {
    tok = &t.require(s.prefix + "token_embedding.weight", what + " token embedding");
    pos = &t.require(s.prefix + "positional_embedding", what + " positional embedding");
    fc1 = &t.require(s.prefix + "transformer.resblocks.0.mlp.c_fc.weight", what + " first block");
    stored_layers = t.count_indexed(s.prefix + "transformer.resblocks.", ".ln_1.weight");
    if ((proj = t.get(s.prefix + "text_projection"))) projection_dim = dim(*proj, 1);  // x @ proj, [C, P]
  }
  if (s.with_projection && !proj)
    t.require(s.prefix + (s.layout == CLIPTextLayout::OpenCLIP ? "text_projection" : "text_projection.weight"),
              what + " text projection");
  const int64_t hidden = dim(*tok, 1);

  json c = json::object();
  c["architectures"] = json::array({s.with_projection ? "CLIPTextModelWithProjection" : "CLIPTextModel"});
  c["model_type"] = "clip_text_model";
  c["vocab_size"] = dim(*tok, 0);
  c["hidden_size"] = hidden;
  c["intermediate_size"] = dim(*fc1, 0);
  c["projection_dim"] = projection_dim > 0 ? projection_dim : hidden;
  c["max_position_embeddings"] = dim(*pos, 0);
  c["layer_norm_eps"] = 1e-5;
  c["attention_dropout"] = 0.0;
  c["dropout"] = 0.0;
  c["initializer_range"] = 0.02;
  c["initializer_factor"] = 1.0;
  // The released transformers configs (eos 2: pool at argmax(input_ids), i.e. the first 49407).
  c["bos_token_id"] = 0;
  c["eos_token_id"] = 2;
  c["pad_token_id"] = 1;
  if (const std::string d = torch_dtype(tok->dtype); !d.empty()) c["torch_dtype"] = d;

  c["num_hidden_layers"] = stored_layers;
  if (s.penultimate && stored_layers > 1) {
    c["num_hidden_layers"] = stored_layers - 1;
    assumed.push_back({s.component, "num_hidden_layers", stored_layers - 1,
                       "SD2 conditions on the penultimate layer: the last of the " + str(stored_layers) +
                           " stored blocks is dropped (diffusers' SD2 text encoder has 23 of ViT-H's 24)"});
  }
  const int64_t heads = heads_of_64(hidden);
  c["num_attention_heads"] = heads;
  assumed.push_back({s.component, "num_attention_heads", heads,
                     "hidden_size / 64 (64-dim heads, as in " + s.model + "; head counts are not stored in the weights)" +
                         (heads * 64 == hidden ? "" : "; hidden_size " + str(hidden) + " is no multiple of 64, so 1 head")});
  c["hidden_act"] = s.hidden_act;
  assumed.push_back({s.component, "hidden_act", s.hidden_act, "the activation of " + s.model + " (not stored in the weights)"});
  return c;
}

// ---------------------------------------------------------------------------------------------

struct FamilySpec {
  std::vector<TextEncoderSpec> text_encoders;
};

FamilySpec family_spec(const std::string& family) {
  const TextEncoderSpec clip_l{"text_encoder", kSD1TextPrefix, CLIPTextLayout::Transformers, false, false, "quick_gelu",
                               "OpenAI CLIP ViT-L/14"};
  if (family == "sd1") return {{clip_l}};
  if (family == "sd2")
    return {{{"text_encoder", kSD2TextPrefix, CLIPTextLayout::OpenCLIP, false, true, "gelu", "OpenCLIP ViT-H/14"}}};
  TextEncoderSpec sdxl_l = clip_l;
  sdxl_l.prefix = kSDXLTextPrefix;
  return {{sdxl_l, {"text_encoder_2", kSDXLText2Prefix, CLIPTextLayout::OpenCLIP, true, false, "gelu", "OpenCLIP ViT-bigG/14"}}};
}

json& component(SingleFileConfigs& c, const std::string& name) {
  if (name == "unet") return c.unet;
  if (name == "vae") return c.vae;
  if (name == "text_encoder") return c.text_encoder;
  return c.text_encoder_2;
}

void apply_overrides(SingleFileConfigs& c, const json& overrides, std::vector<Assumption>& assumed) {
  if (overrides.is_null()) return;
  if (!overrides.is_object())
    throw UsageError(
        "single-file config overrides must be a JSON object {\"unet\": {...}, \"vae\": {...}, \"text_encoder\": {...}, "
        "\"text_encoder_2\": {...}}, got " +
        std::string(overrides.type_name()));
  std::string unknown;
  for (const auto& item : overrides.items())
    if (std::find(kComponents.begin(), kComponents.end(), item.key()) == kComponents.end())
      unknown += (unknown.empty() ? "'" : ", '") + item.key() + "'";
  if (!unknown.empty())
    throw UsageError("single-file config overrides: unknown component(s) " + unknown +
                     " (known: unet, vae, text_encoder, text_encoder_2)");
  for (const auto& item : overrides.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    if (value.is_null()) continue;
    if (!value.is_object())
      throw UsageError("single-file config override '" + key + "' must be a JSON object of config keys, got " +
                       value.type_name());
    json& target = component(c, key);
    if (target.is_null())
      throw UsageError("single-file config override '" + key + "': this " + c.family + " checkpoint has no " + key);
    target.merge_patch(value);
    assumed.erase(std::remove_if(assumed.begin(), assumed.end(),
                                 [&](const Assumption& a) { return a.component == key && value.contains(a.key); }),
                  assumed.end());
  }
}

}  // namespace

SingleFileConfigs infer_single_file_configs(const std::vector<io::TensorInfo>& tensors, const json& overrides) {
  const LayoutGuess guess = detect_layout(tensors);
  if (guess.layout != "sd-single-file")
    throw LoadError("", "not an original single-file Stable Diffusion checkpoint: no " + std::string(kLdmUNetPrefix) +
                            "input_blocks.0.0.weight (the tensors look like '" + guess.layout + "')");
  if (guess.family == "sdxl-refiner")
    throw LoadError("", "SDXL refiner checkpoints (a single OpenCLIP encoder under conditioner.embedders.0.) are not supported");
  if (guess.family != "sd1" && guess.family != "sd2" && guess.family != "sdxl")
    throw LoadError("", "cannot tell SD1/SD2/SDXL: looked for " + std::string(kSD1TextPrefix) + "* (SD1), " + kSD2TextPrefix +
                            "* (SD2), label_emb + " + kSDXLText2Prefix + "* (SDXL) and a UNet proj_in");

  const Tensors t(tensors);
  SingleFileConfigs c;
  c.family = guess.family;
  const FamilySpec spec = family_spec(c.family);

  // Every component must be there; one error lists what is not.
  std::string missing;
  const auto need = [&](const std::string& prefix, const std::string& what) {
    if (t.count_prefix(prefix) == 0) missing += (missing.empty() ? "" : "; ") + what + " (no " + prefix + "* tensors)";
  };
  need(kLdmUNetPrefix, "UNet");
  need(kLdmVAEPrefix, "VAE");
  for (const auto& te : spec.text_encoders) need(te.prefix, te.component + " " + te.model);
  if (!missing.empty()) throw LoadError("", "incomplete " + c.family + " single-file checkpoint: missing " + missing);

  std::vector<Assumption> assumed;
  c.text_encoder = infer_clip(t, spec.text_encoders[0], assumed);
  int64_t pooled_dim = 0;
  if (spec.text_encoders.size() > 1) {
    c.text_encoder_2 = infer_clip(t, spec.text_encoders[1], assumed);
    pooled_dim = c.text_encoder_2["projection_dim"].get<int64_t>();
  }
  c.unet = infer_unet(t, c.family, pooled_dim, assumed);
  c.vae = infer_vae(t, c.family, assumed);

  apply_overrides(c, overrides, assumed);
  for (const auto& a : assumed) c.assumptions.push_back(a.component + "." + a.key + " = " + a.value.dump() + ": " + a.reason);

  // Fail here, naming the component, rather than half-way through loading.
  UNet2DConditionConfig::from_json(c.unet, "single-file unet config");
  AutoencoderKLConfig::from_json(c.vae, "single-file vae config");
  CLIPTextConfig::from_json(c.text_encoder, "single-file text_encoder config");
  if (!c.text_encoder_2.is_null()) CLIPTextConfig::from_json(c.text_encoder_2, "single-file text_encoder_2 config");
  return c;
}

LdmUNetFile infer_ldm_unet_file(const std::string& path, const std::vector<io::TensorInfo>& tensors, const json& overrides) {
  LdmUNetFile f;
  if (Tensors(tensors).has(std::string(kLdmUNetPrefix) + "input_blocks.0.0.weight")) f.prefix = kLdmUNetPrefix;
  // The UNet's tensors with bare names (what detect_layout's "ldm-unet" reads the family off) and
  // under the checkpoint prefix (what infer_unet reads the config off).
  std::vector<io::TensorInfo> bare, named;
  for (const auto& t : tensors) {
    if (!starts_with(t.name, f.prefix)) continue;
    bare.push_back(t);
    bare.back().name = t.name.substr(f.prefix.size());
    named.push_back(t);
    named.back().name = kLdmUNetPrefix + bare.back().name;
  }
  const LayoutGuess guess = detect_layout(bare);
  if (guess.layout != "ldm-unet")
    throw LoadError(path, "not a UNet in the original (LDM) names: no input_blocks.0.0.weight and out.2.weight, bare or under " +
                              std::string(kLdmUNetPrefix) + " (a diffusers UNet is a folder with config.json)");
  f.family = guess.family.empty() ? "sd1" : guess.family;  // no attention level: SD1's defaults
  const Tensors t(named);
  std::vector<Assumption> assumed;
  try {
    f.config = infer_unet(t, f.family, /*pooled_dim=*/0, assumed);
  } catch (const LoadError& e) {
    throw LoadError(path, e.what());
  }
  if (!overrides.is_null() && !overrides.is_object()) throw UsageError("the UNet overrides must be a JSON object");
  if (overrides.is_object()) {
    f.config.merge_patch(overrides);
    std::erase_if(assumed, [&](const Assumption& a) { return overrides.contains(a.key); });
  }
  for (const auto& a : assumed) f.assumptions.push_back(a.component + "." + a.key + " = " + a.value.dump() + ": " + a.reason);
  UNet2DConditionConfig::from_json(f.config, path + " (UNet config read off the shapes)");
  return f;
}

UNet2DConditionModel load_ldm_unet_file(const std::string& path, const json& overrides, at::ScalarType dtype) {
  const LdmUNetFile f = infer_ldm_unet_file(path, io::open_weights(path)->tensors(), overrides);
  return load_unet2d_condition_single_file(path, UNet2DConditionConfig::from_json(f.config, path), dtype, f.prefix);
}

SingleFileModel load_single_file(const std::string& path, const json& overrides, at::ScalarType dtype, at::Device device) {
  auto reader = io::open_weights(path);
  SingleFileModel m;
  try {
    m.configs = infer_single_file_configs(reader->tensors(), overrides);
  } catch (const LoadError& e) {
    if (e.file().empty()) throw LoadError(path, e.what());
    throw;
  }
  m.family = m.configs.family;

  m.unet = load_unet2d_condition_single_file(path, UNet2DConditionConfig::from_json(m.configs.unet, path), dtype);
  m.unet->to(device);
  m.vae = load_autoencoder_kl_single_file(path, AutoencoderKLConfig::from_json(m.configs.vae, path), dtype);
  m.vae->to(device);

  const FamilySpec spec = family_spec(m.family);
  CLIPTextLoadOptions options;
  options.dtype = dtype;
  options.device = device;
  const auto load_text = [&](torch::nn::Module& model, const TextEncoderSpec& s) {
    CLIPTextLoadOptions o = options;
    o.drop_extra_layers = s.penultimate;
    load_clip_text_weights(model, *reader, s.prefix, s.layout, o);
    model.to(device);
    model.eval();
  };
  m.text_encoder = CLIPTextModel(CLIPTextConfig::from_json(m.configs.text_encoder, path));
  load_text(*m.text_encoder, spec.text_encoders[0]);
  if (spec.text_encoders.size() > 1) {
    m.text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig::from_json(m.configs.text_encoder_2, path));
    load_text(*m.text_encoder_2, spec.text_encoders[1]);
  }
  return m;
}

}  // namespace genvis::models
