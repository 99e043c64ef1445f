#include "models/single_file/ldm_export_keys.h"

#include "core/error.h"
#include "core/text.h"

#include <array>
#include <regex>
#include <utility>

namespace genvis::models {
namespace {

[[noreturn]] void no_ldm_name(const std::string& name, const char* component) {
  throw LoadError("", name, std::string("no original (LDM) name for this ") + component + " tensor");
}

// Inside a UNet resnet: diffusers leaf -> LDM leaf.
std::string unet_resnet_leaf(const std::string& name, const std::string& rest) {
  static const std::array<std::pair<const char*, const char*>, 6> kLeaf{{{"norm1.", "in_layers.0."},
                                                                         {"conv1.", "in_layers.2."},
                                                                         {"norm2.", "out_layers.0."},
                                                                         {"conv2.", "out_layers.3."},
                                                                         {"time_emb_proj.", "emb_layers.1."},
                                                                         {"conv_shortcut.", "skip_connection."}}};
  for (const auto& [from, to] : kLeaf)
    if (starts_with(rest, from)) return to + rest.substr(std::string(from).size());
  no_ldm_name(name, "UNet");
}

std::string vae_resnet_leaf(const std::string& rest) {
  return starts_with(rest, "conv_shortcut.") ? "nin_shortcut." + rest.substr(14) : rest;
}

std::string vae_attention_leaf(const std::string& name, const std::string& rest) {
  static const std::array<std::pair<const char*, const char*>, 5> kLeaf{
      {{"group_norm.", "norm."}, {"to_q.", "q."}, {"to_k.", "k."}, {"to_v.", "v."}, {"to_out.0.", "proj_out."}}};
  for (const auto& [from, to] : kLeaf)
    if (starts_with(rest, from)) return to + rest.substr(std::string(from).size());
  no_ldm_name(name, "VAE");
}

}  // namespace

std::string unet_key_to_ldm(const std::string& name, const UNet2DConditionConfig& config) {
  static const std::array<std::pair<const char*, const char*>, 7> kTop{{{"time_embedding.linear_1.", "time_embed.0."},
                                                                        {"time_embedding.linear_2.", "time_embed.2."},
                                                                        {"add_embedding.linear_1.", "label_emb.0.0."},
                                                                        {"add_embedding.linear_2.", "label_emb.0.2."},
                                                                        {"conv_in.", "input_blocks.0.0."},
                                                                        {"conv_norm_out.", "out.0."},
                                                                        {"conv_out.", "out.2."}}};
  for (const auto& [from, to] : kTop)
    if (starts_with(name, from)) return to + name.substr(std::string(from).size());

  static const std::regex kBlock(
      R"(^(down_blocks|up_blocks)\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.*)$)");
  static const std::regex kMid(R"(^mid_block\.(resnets|attentions)\.(\d+)\.(.*)$)");
  const auto layers = config.layers_per_block_list();
  const size_t n = config.num_blocks();
  const auto at = [](const char* kind, int64_t index, int64_t sub) {
    return std::string(kind) + "." + std::to_string(index) + "." + std::to_string(sub) + ".";
  };
  std::smatch m;
  if (std::regex_match(name, m, kMid)) {
    const std::string kind = m[1], rest = m[3];
    const int64_t j = std::stoll(m[2]);
    if (kind == "attentions" && j == 0) return "middle_block.1." + rest;
    if (kind == "resnets" && j <= 1) return "middle_block." + std::to_string(2 * j) + "." + unet_resnet_leaf(name, rest);
    no_ldm_name(name, "UNet");
  }
  if (!std::regex_match(name, m, kBlock)) no_ldm_name(name, "UNet");
  const bool down = m[1] == "down_blocks";
  const std::string kind = m[3], rest = m[5];
  const size_t i = std::stoul(m[2]);
  const int64_t j = std::stoll(m[4]);
  if (i >= n) no_ldm_name(name, "UNet");

  if (down) {
    // input_blocks: 0 = conv_in, then per level its layers, then its downsampler.
    int64_t k = 1;
    for (size_t l = 0; l < i; ++l) k += layers[l] + 1;
    if (kind == "resnets" && j < layers[i]) return at("input_blocks", k + j, 0) + unet_resnet_leaf(name, rest);
    if (kind == "attentions" && j < layers[i]) return at("input_blocks", k + j, 1) + rest;
    if (kind == "downsamplers" && j == 0 && i + 1 < n && starts_with(rest, "conv."))
      return at("input_blocks", k + layers[i], 0) + "op." + rest.substr(5);
    no_ldm_name(name, "UNet");
  }
  // output_blocks: per up level layers+1 entries; the last holds the upsampler after the
  // resnet (".1.conv") or after the attention (".2.conv").
  int64_t k = 0;
  for (size_t l = 0; l < i; ++l) k += layers[n - 1 - l] + 1;
  const int64_t num = layers[n - 1 - i] + 1;
  if (kind == "resnets" && j < num) return at("output_blocks", k + j, 0) + unet_resnet_leaf(name, rest);
  if (kind == "attentions" && j < num) return at("output_blocks", k + j, 1) + rest;
  if (kind == "upsamplers" && j == 0 && i + 1 < n && starts_with(rest, "conv.")) {
    const bool attention = config.up_block_types.at(i) == "CrossAttnUpBlock2D";
    return at("output_blocks", k + num - 1, attention ? 2 : 1) + rest;
  }
  no_ldm_name(name, "UNet");
}

std::string autoencoder_kl_key_to_ldm(const std::string& name, const AutoencoderKLConfig& config) {
  if (starts_with(name, "quant_conv.") || starts_with(name, "post_quant_conv.")) return name;
  static const std::regex kTop(R"(^(encoder|decoder)\.(.*)$)");
  static const std::regex kMid(R"(^mid_block\.(resnets|attentions)\.(\d+)\.(.*)$)");
  static const std::regex kLevel(R"(^(down_blocks|up_blocks)\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.*)$)");
  std::smatch m;
  if (!std::regex_match(name, m, kTop)) no_ldm_name(name, "VAE");
  const bool encoder = m[1] == "encoder";
  const std::string p = m[1].str() + ".", rest = m[2];
  if (starts_with(rest, "conv_in.") || starts_with(rest, "conv_out.")) return name;
  if (starts_with(rest, "conv_norm_out.")) return p + "norm_out." + rest.substr(14);
  if (std::regex_match(rest, m, kMid)) {
    const std::string kind = m[1], leaf = m[3];
    const int64_t j = std::stoll(m[2]);
    if (kind == "attentions" && j == 0) return p + "mid.attn_1." + vae_attention_leaf(name, leaf);
    if (kind == "resnets" && j <= 1) return p + "mid.block_" + std::to_string(j + 1) + "." + vae_resnet_leaf(leaf);
    no_ldm_name(name, "VAE");
  }
  if (!std::regex_match(rest, m, kLevel) || (m[1] == "down_blocks") != encoder) no_ldm_name(name, "VAE");
  const int64_t levels = static_cast<int64_t>(config.block_out_channels.size());
  int64_t level = std::stoll(m[2]);
  if (level >= levels) no_ldm_name(name, "VAE");
  // The LDM decoder numbers levels from the lowest resolution up; diffusers from the top.
  if (!encoder) level = levels - 1 - level;
  const std::string block = p + (encoder ? "down." : "up.") + std::to_string(level) + ".";
  const std::string kind = m[3], leaf = m[5];
  if (kind == "resnets") return block + "block." + m[4].str() + "." + vae_resnet_leaf(leaf);
  if (m[4] == "0" && kind == (encoder ? "downsamplers" : "upsamplers"))
    return block + (encoder ? "downsample." : "upsample.") + leaf;
  no_ldm_name(name, "VAE");
}

bool ldm_vae_weight_is_conv(const std::string& ldm_name) {
  for (const char* leaf : {"mid.attn_1.q.weight", "mid.attn_1.k.weight", "mid.attn_1.v.weight", "mid.attn_1.proj_out.weight"})
    if (ends_with(ldm_name, leaf)) return true;
  return false;
}

}  // namespace genvis::models
