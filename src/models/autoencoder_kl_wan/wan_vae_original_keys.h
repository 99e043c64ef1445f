// Wan 2.1's VAE in the layout of its own release (Wan2.1_VAE.pth, WanVAE_ in wan/modules/vae.py)
// and of ComfyUI's repackaged vae/wan_2.1_vae.safetensors (the same names), mapped onto the
// diffusers names AutoencoderKLWan registers.
//
//   original (file)                               diffusers (module)
//   encoder.conv1.*, decoder.conv1.*              encoder.conv_in.*, decoder.conv_in.*
//   encoder.downsamples.K.residual.{0,2,3,6}.*    encoder.down_blocks.K.{norm1,conv1,norm2,conv2}.*
//   encoder.downsamples.K.shortcut.*              encoder.down_blocks.K.conv_shortcut.*
//   encoder.downsamples.K.{resample.1,time_conv}.* encoder.down_blocks.K.{resample.1,time_conv}.*
//   {encoder,decoder}.middle.{0,2}.residual.*     {encoder,decoder}.mid_block.resnets.{0,1}.*
//   {encoder,decoder}.middle.1.*                  {encoder,decoder}.mid_block.attentions.0.*
//   {encoder,decoder}.head.{0,2}.*                {encoder,decoder}.{norm_out,conv_out}.*
//   conv1.*, conv2.*                              quant_conv.*, post_quant_conv.*
//   decoder.upsamples.K.*                         decoder.up_blocks.L.resnets.J.* or .upsamplers.0.*
// The decoder's upsamples are one flat list: per level num_res_blocks + 1 residual blocks, then an
// upsampler (not after the last level), so K = L * (num_res_blocks + 2) + J; the table is built
// for a config.
//
//   auto r = genvis::io::open_weights("Wan2.1_VAE.pth");
//   auto config = AutoencoderKLWanConfig::from_json(infer_wan_vae_config(r->tensors(), {}, r->path()));
//   nn::LoadOptions o;  wan_vae_original_keys(config).apply(o);
#pragma once
#include "io/dtype.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "nn/key_table.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::models {

// The table above for `config`'s levels and residual blocks.
nn::KeyTable wan_vae_original_keys(const AutoencoderKLWanConfig& config);

// Whether the tensors are a Wan VAE with the original names (encoder.conv1, decoder.upsamples.*).
bool is_wan_vae_original(const std::vector<io::TensorInfo>& tensors);

// An AutoencoderKLWan config (JSON, diffusers names) read off original-named tensors: base_dim,
// z_dim, in/out channels, dim_mult, num_res_blocks and temperal_downsample from the encoder's
// blocks (decoder_base_dim when the decoder is wider). Not in the file: latents_mean/std (Wan
// 2.1's, the config's defaults). `overrides` are merged last. LoadError naming `source` and the
// tensor when one is missing or the blocks do not form levels.
nlohmann::json infer_wan_vae_config(const std::vector<io::TensorInfo>& tensors, const nlohmann::json& overrides,
                                    const std::string& source);

}  // namespace genvis::models
