#include "models/autoencoder_kl/ldm_keys.h"

#include <map>
#include <regex>

namespace genvis::models {
namespace {

// Leaf renames inside a resnet block or the mid attention.
std::string resnet_leaf(const std::string& rest) {
  if (rest.rfind("nin_shortcut.", 0) == 0) return "conv_shortcut." + rest.substr(13);
  return rest;
}

std::string attention_leaf(const std::string& rest) {
  static const std::map<std::string, std::string> kLeaf = {
      {"norm", "group_norm"}, {"q", "to_q"}, {"k", "to_k"}, {"v", "to_v"}, {"proj_out", "to_out.0"}};
  const auto dot = rest.find('.');
  const auto it = kLeaf.find(rest.substr(0, dot));
  return it == kLeaf.end() || dot == std::string::npos ? rest : it->second + rest.substr(dot);
}

}  // namespace

std::string autoencoder_kl_key_from_ldm(const std::string& name, const AutoencoderKLConfig& config) {
  static const std::regex kTop(R"(^(encoder|decoder)\.(.*)$)");
  static const std::regex kDown(R"(^down\.(\d+)\.(block\.(\d+)|downsample)\.(.*)$)");
  static const std::regex kUp(R"(^up\.(\d+)\.(block\.(\d+)|upsample)\.(.*)$)");
  static const std::regex kMid(R"(^mid\.(block_1|block_2|attn_1)\.(.*)$)");
  std::smatch m;
  if (!std::regex_match(name, m, kTop)) return name;
  const std::string part = m[1], rest = m[2];
  const std::string p = part + ".";
  if (rest.rfind("norm_out.", 0) == 0) return p + "conv_norm_out." + rest.substr(9);
  if (std::regex_match(rest, m, kMid)) {
    const std::string which = m[1], leaf = m[2];
    if (which == "attn_1") return p + "mid_block.attentions.0." + attention_leaf(leaf);
    return p + "mid_block.resnets." + (which == "block_1" ? "0." : "1.") + resnet_leaf(leaf);
  }
  const bool encoder = part == "encoder";
  if (std::regex_match(rest, m, encoder ? kDown : kUp)) {
    int64_t level = std::stoll(m[1]);
    // The LDM decoder numbers levels from the lowest resolution up; diffusers from the top.
    if (!encoder) level = static_cast<int64_t>(config.block_out_channels.size()) - 1 - level;
    const std::string block = p + (encoder ? "down_blocks." : "up_blocks.") + std::to_string(level) + ".";
    if (m[3].matched) return block + "resnets." + m[3].str() + "." + resnet_leaf(m[4]);
    return block + (encoder ? "downsamplers.0." : "upsamplers.0.") + m[4].str();
  }
  return name;  // conv_in, conv_out, and anything unknown (reported by strict loading)
}

}  // namespace genvis::models
