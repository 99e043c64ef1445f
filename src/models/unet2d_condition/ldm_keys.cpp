#include "core/text.h"
#include "models/unet2d_condition/ldm_keys.h"

#include <map>
#include <regex>

namespace genvis::models {
namespace {

std::string resnet_leaf(const std::string& rest) {
  static const std::map<std::string, std::string> kLeaf = {
      {"in_layers.0.", "norm1."},         {"in_layers.2.", "conv1."}, {"out_layers.0.", "norm2."},
      {"out_layers.3.", "conv2."},        {"emb_layers.1.", "time_emb_proj."},
      {"skip_connection.", "conv_shortcut."}};
  for (const auto& [from, to] : kLeaf)
    if (rest.rfind(from, 0) == 0) return to + rest.substr(from.size());
  return rest;
}


}  // namespace

std::string unet_key_from_ldm(const std::string& name, const UNet2DConditionConfig& config) {
  static const std::map<std::string, std::string> kTop = {
      {"time_embed.0.", "time_embedding.linear_1."}, {"time_embed.2.", "time_embedding.linear_2."},
      {"label_emb.0.0.", "add_embedding.linear_1."}, {"label_emb.0.2.", "add_embedding.linear_2."},
      {"input_blocks.0.0.", "conv_in."},             {"out.0.", "conv_norm_out."},
      {"out.2.", "conv_out."}};
  for (const auto& [from, to] : kTop)
    if (starts_with(name, from)) return to + name.substr(from.size());

  static const std::regex kBlock(R"(^(input_blocks|middle_block|output_blocks)\.(?:(\d+)\.)?(\d+)\.(.*)$)");
  std::smatch m;
  if (!std::regex_match(name, m, kBlock)) return name;
  const std::string kind = m[1], rest = m[4];
  const int64_t sub = std::stoll(m[3]);
  const auto layers = config.layers_per_block_list();
  const size_t n = config.num_blocks();

  if (kind == "middle_block") {
    if (m[2].matched) return name;
    if (sub == 1) return "mid_block.attentions.0." + rest;
    return "mid_block.resnets." + std::to_string(sub / 2) + "." + resnet_leaf(rest);
  }
  if (!m[2].matched) return name;
  const int64_t index = std::stoll(m[2]);

  if (kind == "input_blocks") {
    // input_blocks: 0 = conv_in, then per down block its layers, then its downsampler.
    int64_t k = 1;
    for (size_t i = 0; i < n; ++i) {
      const std::string block = "down_blocks." + std::to_string(i) + ".";
      for (int64_t j = 0; j < layers[i]; ++j, ++k) {
        if (k != index) continue;
        if (sub == 0) return block + "resnets." + std::to_string(j) + "." + resnet_leaf(rest);
        if (sub == 1) return block + "attentions." + std::to_string(j) + "." + rest;
        return name;
      }
      if (i + 1 < n) {
        if (k == index && sub == 0 && starts_with(rest, "op.")) return block + "downsamplers.0.conv." + rest.substr(3);
        ++k;
      }
    }
    return name;
  }

  // output_blocks: per up block layers+1 entries; the last one also holds the upsampler
  // (".1.conv" without attention, ".2.conv" with it).
  int64_t k = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string block = "up_blocks." + std::to_string(i) + ".";
    const int64_t num = layers[n - 1 - i] + 1;
    if (index < k + num) {
      const int64_t j = index - k;
      if (sub == 0) return block + "resnets." + std::to_string(j) + "." + resnet_leaf(rest);
      if (starts_with(rest, "conv.")) return block + "upsamplers.0." + rest;
      if (sub == 1) return block + "attentions." + std::to_string(j) + "." + rest;
      return name;
    }
    k += num;
  }
  return name;
}

}  // namespace genvis::models
