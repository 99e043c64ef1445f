// Diffusers names -> original CompVis/LDM names: the inverse of unet_key_from_ldm and
// autoencoder_kl_key_from_ldm, for writing single-file checkpoints (and for tests that build one).
//
//   down_blocks.0.resnets.0.norm1.weight          -> input_blocks.1.0.in_layers.0.weight
//   up_blocks.0.upsamplers.0.conv.weight          -> output_blocks.2.1.conv.weight (".2.conv" with attention)
//   decoder.up_blocks.0.resnets.0.conv1.weight    -> decoder.up.<levels-1>.block.0.conv1.weight
//   encoder.mid_block.attentions.0.to_q.weight    -> encoder.mid.attn_1.q.weight
//
// Names come back without the component prefix (kLdmUNetPrefix, kLdmVAEPrefix). Shapes are not
// changed: the LDM VAE stores its mid-attention q/k/v/proj_out weights as [C,C,1,1] 1x1 convs
// where diffusers has Linear [C,C] (see ldm_vae_weight_is_conv). Names that match no rule:
// LoadError naming them.
#pragma once
#include "models/autoencoder_kl/autoencoder_kl.h"
#include "models/unet2d_condition/unet2d_condition.h"

#include <string>

namespace genvis::models {

std::string unet_key_to_ldm(const std::string& name, const UNet2DConditionConfig& config);
std::string autoencoder_kl_key_to_ldm(const std::string& name, const AutoencoderKLConfig& config);
// True for the LDM VAE names whose weight is a 1x1 conv while diffusers uses a Linear.
bool ldm_vae_weight_is_conv(const std::string& ldm_name);

}  // namespace genvis::models
