#include "models/autoencoder_kl_wan/wan_vae_original_keys.h"

#include "core/error.h"

#include <unordered_map>

namespace genvis::models {
namespace {

// A residual block's leaves: residual = [norm, SiLU, conv, norm, SiLU, dropout, conv].
void add_residual(std::vector<nn::KeyRule>& rules, const std::string& file, const std::string& module) {
  rules.emplace_back(file + "residual.0.", module + "norm1.");
  rules.emplace_back(file + "residual.2.", module + "conv1.");
  rules.emplace_back(file + "residual.3.", module + "norm2.");
  rules.emplace_back(file + "residual.6.", module + "conv2.");
  rules.emplace_back(file + "shortcut.", module + "conv_shortcut.");
}

void add_resample(std::vector<nn::KeyRule>& rules, const std::string& file, const std::string& module) {
  rules.emplace_back(file + "resample.", module + "resample.");
  rules.emplace_back(file + "time_conv.", module + "time_conv.");
}

}  // namespace

nn::KeyTable wan_vae_original_keys(const AutoencoderKLWanConfig& config) {
  std::vector<nn::KeyRule> rules = {{"conv1.", "quant_conv."}, {"conv2.", "post_quant_conv."}};
  for (const std::string part : {"encoder.", "decoder."}) {
    rules.emplace_back(part + "conv1.", part + "conv_in.");
    add_residual(rules, part + "middle.0.", part + "mid_block.resnets.0.");
    rules.emplace_back(part + "middle.1.", part + "mid_block.attentions.0.");
    add_residual(rules, part + "middle.2.", part + "mid_block.resnets.1.");
    rules.emplace_back(part + "head.0.", part + "norm_out.");
    rules.emplace_back(part + "head.2.", part + "conv_out.");
  }
  // The encoder's flat list is the same on both sides.
  add_residual(rules, "encoder.downsamples.#.", "encoder.down_blocks.#.");
  add_resample(rules, "encoder.downsamples.#.", "encoder.down_blocks.#.");
  // The decoder's: num_res_blocks + 1 residual blocks and an upsampler per level.
  const int64_t levels = static_cast<int64_t>(config.dim_mult.size()), per_level = config.num_res_blocks + 2;
  for (int64_t level = 0; level < levels; ++level) {
    const std::string block = "decoder.up_blocks." + std::to_string(level) + ".";
    for (int64_t j = 0; j <= config.num_res_blocks; ++j)
      add_residual(rules, "decoder.upsamples." + std::to_string(level * per_level + j) + ".",
                   block + "resnets." + std::to_string(j) + ".");
    if (level + 1 < levels)
      add_resample(rules, "decoder.upsamples." + std::to_string(level * per_level + per_level - 1) + ".",
                   block + "upsamplers.0.");
  }
  return nn::KeyTable(std::move(rules));
}

bool is_wan_vae_original(const std::vector<io::TensorInfo>& tensors) {
  bool conv = false, up = false;
  for (const auto& t : tensors) {
    conv = conv || t.name == "encoder.conv1.weight";
    up = up || t.name == "decoder.upsamples.0.residual.0.gamma";
  }
  return conv && up;
}

nlohmann::json infer_wan_vae_config(const std::vector<io::TensorInfo>& tensors, const nlohmann::json& overrides,
                                    const std::string& source) {
  std::unordered_map<std::string, const io::TensorInfo*> n;
  for (const auto& t : tensors) n.emplace(t.name, &t);
  const auto need = [&](const std::string& name, size_t rank) -> const std::vector<int64_t>& {
    const auto it = n.find(name);
    if (it == n.end()) throw LoadError(source, name, "missing (needed to read the Wan VAE's sizes)");
    if (it->second->shape.size() != rank)
      throw LoadError(source, name, "shape " + io::shape_string(it->second->shape) + ", expected " +
                                        std::to_string(rank) + " dims");
    return it->second->shape;
  };
  const auto& conv_in = need("encoder.conv1.weight", 5);  // [base, in, 3, 3, 3]
  const int64_t base = conv_in[0];
  const int64_t z_dim = need("conv2.weight", 5)[0];      // post_quant_conv [z, z, 1, 1, 1]
  const auto& conv_out = need("decoder.head.2.weight", 5);  // [out, C, 3, 3, 3]

  // The encoder's flat list: residual blocks, then a resample ending each level but the last.
  std::vector<int64_t> level_blocks = {0}, dim_mult;
  std::vector<bool> temporal;
  int64_t channels = base;
  for (int64_t k = 0;; ++k) {
    const std::string block = "encoder.downsamples." + std::to_string(k) + ".";
    if (n.count(block + "residual.2.weight")) {
      channels = need(block + "residual.2.weight", 5)[0];
      ++level_blocks.back();
    } else if (n.count(block + "resample.1.weight")) {
      if (channels % base != 0)
        throw LoadError(source, block + "resample.1.weight", "level width " + std::to_string(channels) +
                                                                 " is not a multiple of the base width " +
                                                                 std::to_string(base));
      dim_mult.push_back(channels / base);
      temporal.push_back(n.count(block + "time_conv.weight") > 0);
      level_blocks.push_back(0);
    } else {
      break;
    }
  }
  dim_mult.push_back(channels / base);
  for (size_t i = 0; i < level_blocks.size(); ++i)
    if (level_blocks[i] == 0 || level_blocks[i] != level_blocks[0])
      throw LoadError(source, "encoder.downsamples.*",
                      "level " + std::to_string(i) + " has " + std::to_string(level_blocks[i]) +
                          " residual blocks, level 0 " + std::to_string(level_blocks[0]) +
                          " (every level needs the same number, at least one)");

  nlohmann::json c = {{"base_dim", base},
                      {"z_dim", z_dim},
                      {"dim_mult", dim_mult},
                      {"num_res_blocks", level_blocks[0]},
                      {"attn_scales", nlohmann::json::array()},
                      {"temperal_downsample", temporal},
                      {"dropout", 0.0},
                      {"in_channels", conv_in[1]},
                      {"out_channels", conv_out[0]}};
  if (conv_out[1] != base * dim_mult[0] && dim_mult[0] > 0 && conv_out[1] % dim_mult[0] == 0)
    c["decoder_base_dim"] = conv_out[1] / dim_mult[0];
  if (overrides.is_object()) c.merge_patch(overrides);
  return c;
}

}  // namespace genvis::models
