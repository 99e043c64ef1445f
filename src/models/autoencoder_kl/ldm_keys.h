// Original CompVis/LDM VAE names (first_stage_model.*, prefix stripped) -> diffusers names.
//
//   encoder.down.1.block.0.nin_shortcut.weight -> encoder.down_blocks.1.resnets.0.conv_shortcut.weight
//   decoder.up.0.upsample.conv.weight          -> decoder.up_blocks.<levels-1>.upsamplers.0.conv.weight
//   encoder.mid.attn_1.q.weight [C,C,1,1]      -> encoder.mid_block.attentions.0.to_q.weight [C,C]
//                                                 (load with squeeze_singleton_dims)
// Names that match no rule are returned unchanged, so strict loading reports them.
#pragma once
#include "models/autoencoder_kl/autoencoder_kl.h"

#include <string>

namespace genvis::models {

inline constexpr const char* kLdmVAEPrefix = "first_stage_model.";

std::string autoencoder_kl_key_from_ldm(const std::string& name, const AutoencoderKLConfig& config);

}  // namespace genvis::models
