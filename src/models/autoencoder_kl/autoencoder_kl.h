// AutoencoderKL (SD 1.x/2.x/XL VAE), diffusers 0.31 names and numerics.
//
//   auto vae = genvis::models::load_autoencoder_kl("sd/vae");          // config.json + weights
//   auto posterior = vae->encode(image /*[B,3,H,W] in [-1,1]*/);        // mean/logvar [B,4,H/8,W/8]
//   at::Tensor latents = posterior.mean * vae->config.scaling_factor;
//   at::Tensor decoded = vae->decode(latents / vae->config.scaling_factor);  // [B,3,H,W]
#pragma once
#include "nn/attention.h"
#include "nn/resnet.h"

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <torch/nn/modules/container/modulelist.h>
#include <vector>

namespace genvis::models {

struct AutoencoderKLConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  std::vector<std::string> down_block_types = {"DownEncoderBlock2D"};
  std::vector<std::string> up_block_types = {"UpDecoderBlock2D"};
  std::vector<int64_t> block_out_channels = {64};
  int64_t layers_per_block = 1;
  std::string act_fn = "silu";
  int64_t latent_channels = 4;
  int64_t norm_num_groups = 32;
  int64_t sample_size = 32;
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;
  bool force_upcast = true;
  bool use_quant_conv = true;
  bool use_post_quant_conv = true;
  bool mid_block_add_attention = true;

  // Every problem at once: problems() lists them, validate() throws them as one UsageError.
  std::vector<std::string> problems() const;
  void validate() const;
  // Parses a diffusers config.json object (null = default; unknown keys, wrong types and
  // unsupported values all reported at once) and validates; throws LoadError naming `source`.
  static AutoencoderKLConfig from_json(const nlohmann::json& j, const std::string& source = "");
  static AutoencoderKLConfig from_file(const std::string& path);
};

// resnets[0] -> attentions[0] (single head over C, GroupNorm first, residual) -> resnets[1].
class VAEMidBlockImpl : public torch::nn::Module {
public:
  VAEMidBlockImpl(int64_t channels, int64_t groups, bool add_attention);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::ModuleList resnets, attentions;
  std::vector<nn::ResnetBlock2D> resnet_list;
  nn::Attention attention{nullptr};
};
TORCH_MODULE(VAEMidBlock);

// resnets.N (+ downsamplers.0 / upsamplers.0); DownEncoderBlock2D and UpDecoderBlock2D.
class VAEBlockImpl : public torch::nn::Module {
public:
  VAEBlockImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers, int64_t groups, bool downsample,
               bool upsample);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::ModuleList resnets, downsamplers, upsamplers;
  std::vector<nn::ResnetBlock2D> resnet_list;
  nn::Downsample2D downsampler{nullptr};
  nn::Upsample2D upsampler{nullptr};
};
TORCH_MODULE(VAEBlock);

class VAEEncoderImpl : public torch::nn::Module {
public:
  explicit VAEEncoderImpl(const AutoencoderKLConfig& c);
  at::Tensor forward(const at::Tensor& x);  // [B,in,H,W] -> [B,2*latent,H/f,W/f]
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks;
  std::vector<VAEBlock> blocks;
  VAEMidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(VAEEncoder);

class VAEDecoderImpl : public torch::nn::Module {
public:
  explicit VAEDecoderImpl(const AutoencoderKLConfig& c);
  at::Tensor forward(const at::Tensor& z);  // [B,latent,h,w] -> [B,out,h*f,w*f]
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList up_blocks;
  std::vector<VAEBlock> blocks;
  VAEMidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(VAEDecoder);

struct LatentDistribution {
  at::Tensor mean, logvar;  // [B,latent,h,w]; logvar clamped to [-30, 20]
  at::Tensor std() const { return (0.5 * logvar).exp(); }
  at::Tensor sample(const at::Tensor& noise) const { return mean + std() * noise; }
  // KL(q || N(0, I)) averaged over the latent elements (the VAE recipes' regulariser).
  at::Tensor kl_to_standard_normal() const { return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean(); }
  // Splits encoder moments [B,2*latent,h,w] into mean and (clamped) logvar.
  static LatentDistribution from_moments(const at::Tensor& moments);
};

class AutoencoderKLImpl : public torch::nn::Module {
public:
  explicit AutoencoderKLImpl(const AutoencoderKLConfig& config);
  LatentDistribution encode(const at::Tensor& image);
  // encoder -> quant_conv: [B,2*latent,h,w], before the split into mean and logvar.
  at::Tensor encode_moments(const at::Tensor& image);
  at::Tensor decode(const at::Tensor& z);  // no scaling, no clamp

  // Spatial downscale factor (2^(levels-1)); 8 for SD.
  int64_t downscale_factor() const { return int64_t{1} << (config.block_out_channels.size() - 1); }

  AutoencoderKLConfig config;
  VAEEncoder encoder{nullptr};
  VAEDecoder decoder{nullptr};
  torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};
};
TORCH_MODULE(AutoencoderKL);

// A diffusers component folder: config.json + diffusion_pytorch_model.safetensors (or .bin).
// Weights are cast to `dtype`; strict loading.
AutoencoderKL load_autoencoder_kl(const std::string& folder, at::ScalarType dtype = at::kFloat);
// The first_stage_model.* tensors of an original single-file SD checkpoint, for a given config.
AutoencoderKL load_autoencoder_kl_single_file(const std::string& path, const AutoencoderKLConfig& config,
                                              at::ScalarType dtype = at::kFloat);

}  // namespace genvis::models
