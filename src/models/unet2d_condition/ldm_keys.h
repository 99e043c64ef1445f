// Original CompVis/LDM UNet names (model.diffusion_model.*, prefix stripped) -> diffusers names,
// for a given config (the flat input_blocks/output_blocks numbering depends on layers_per_block
// and on which blocks have attention).
//
//   input_blocks.1.0.in_layers.0.weight  -> down_blocks.0.resnets.0.norm1.weight
//   input_blocks.3.0.op.weight           -> down_blocks.0.downsamplers.0.conv.weight
//   output_blocks.2.1.conv.weight        -> up_blocks.0.upsamplers.0.conv.weight
//   time_embed.0 / label_emb.0.0         -> time_embedding.linear_1 / add_embedding.linear_1
// Names that match no rule are returned unchanged, so strict loading reports them.
#pragma once
#include "models/unet2d_condition/unet2d_condition.h"

#include <string>

namespace genvis::models {

inline constexpr const char* kLdmUNetPrefix = "model.diffusion_model.";

std::string unet_key_from_ldm(const std::string& name, const UNet2DConditionConfig& config);

}  // namespace genvis::models
