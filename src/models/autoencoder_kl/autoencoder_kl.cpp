#include "models/autoencoder_kl/autoencoder_kl.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "io/weights.h"
#include "models/autoencoder_kl/ldm_keys.h"
#include "nn/group_norm_silu.h"
#include "nn/state_dict.h"

#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

constexpr double kVAENormEps = 1e-6;

}  // namespace

std::vector<std::string> AutoencoderKLConfig::problems() const {
  std::vector<std::string> problems;
  const size_t levels = block_out_channels.size();
  if (levels == 0) problems.push_back("block_out_channels is empty");
  if (down_block_types.size() != levels)
    problems.push_back("down_block_types has " + std::to_string(down_block_types.size()) + " entries, block_out_channels " +
                       std::to_string(levels));
  if (up_block_types.size() != levels)
    problems.push_back("up_block_types has " + std::to_string(up_block_types.size()) + " entries, block_out_channels " +
                       std::to_string(levels));
  for (const auto& t : down_block_types)
    if (t != "DownEncoderBlock2D") problems.push_back("unsupported down block type '" + t + "'");
  for (const auto& t : up_block_types)
    if (t != "UpDecoderBlock2D") problems.push_back("unsupported up block type '" + t + "'");
  if (norm_num_groups <= 0) problems.push_back("norm_num_groups must be positive");
  else
    for (const auto c : block_out_channels)
      if (c <= 0 || c % norm_num_groups != 0)
        problems.push_back("block_out_channels entry " + std::to_string(c) + " is not a positive multiple of norm_num_groups " +
                           std::to_string(norm_num_groups));
  if (act_fn != "silu") problems.push_back("unsupported act_fn '" + act_fn + "' (only silu)");
  if (layers_per_block < 1) problems.push_back("layers_per_block must be >= 1");
  if (in_channels < 1 || out_channels < 1 || latent_channels < 1) problems.push_back("channel counts must be >= 1");
  if (scaling_factor <= 0) problems.push_back("scaling_factor must be positive");
  return problems;
}

void AutoencoderKLConfig::validate() const {
  const auto p = problems();
  if (!p.empty()) throw UsageError("AutoencoderKL config: " + config::describe(p));
}

AutoencoderKLConfig AutoencoderKLConfig::from_json(const nlohmann::json& j, const std::string& source) {
  // diffusers' AutoencoderKL arguments. latents_mean/latents_std (per-channel latent statistics
  // that newer pipelines apply around the VAE) are accepted only when null.
  static const std::set<std::string> kKeys = {
      "in_channels", "out_channels", "down_block_types", "up_block_types", "block_out_channels",
      "layers_per_block", "act_fn", "latent_channels", "norm_num_groups", "sample_size", "scaling_factor",
      "shift_factor", "latents_mean", "latents_std", "force_upcast", "use_quant_conv", "use_post_quant_conv",
      "mid_block_add_attention"};
  AutoencoderKLConfig c;
  config::Problems p;
  if (!config::check_keys(j, "", {}, kKeys, p)) throw LoadError(source, "AutoencoderKL config: " + config::describe(p));
  const auto read = [&](const char* key, auto& field) { config::read(j, "", key, field, p); };
  read("in_channels", c.in_channels);
  read("out_channels", c.out_channels);
  read("down_block_types", c.down_block_types);
  read("up_block_types", c.up_block_types);
  read("block_out_channels", c.block_out_channels);
  read("layers_per_block", c.layers_per_block);
  read("act_fn", c.act_fn);
  read("latent_channels", c.latent_channels);
  read("norm_num_groups", c.norm_num_groups);
  read("sample_size", c.sample_size);
  read("scaling_factor", c.scaling_factor);
  read("shift_factor", c.shift_factor);
  read("force_upcast", c.force_upcast);
  read("use_quant_conv", c.use_quant_conv);
  read("use_post_quant_conv", c.use_post_quant_conv);
  read("mid_block_add_attention", c.mid_block_add_attention);
  for (const char* key : {"latents_mean", "latents_std"})
    if (j.contains(key) && !j.at(key).is_null()) p.push_back(std::string("unsupported ") + key + " (only null)");
  for (auto& problem : c.problems()) p.push_back(std::move(problem));
  if (!p.empty()) throw LoadError(source, "AutoencoderKL config: " + config::describe(p));
  return c;
}

AutoencoderKLConfig AutoencoderKLConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path), path);
}

VAEMidBlockImpl::VAEMidBlockImpl(int64_t channels, int64_t groups, bool add_attention) {
  auto resnet = [&] {
    return nn::ResnetBlock2D(nn::ResnetBlock2DOptions{.in_channels = channels, .groups = groups, .eps = kVAENormEps});
  };
  resnet_list = {resnet(), resnet()};
  attentions = register_module("attentions", torch::nn::ModuleList());
  if (add_attention) {
    attention = nn::Attention(nn::AttentionOptions{.query_dim = channels, .heads = 1, .dim_head = channels, .bias = true,
                                                   .norm_num_groups = groups, .eps = kVAENormEps,
                                                   .residual_connection = true});
    attentions->push_back(attention);
  }
  resnets = register_module("resnets", torch::nn::ModuleList(resnet_list[0], resnet_list[1]));
}

at::Tensor VAEMidBlockImpl::forward(const at::Tensor& x) {
  at::Tensor h = resnet_list[0](x);
  if (attention) h = attention(h);
  return resnet_list[1](h);
}

VAEBlockImpl::VAEBlockImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers, int64_t groups, bool downsample,
                           bool upsample) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    resnet_list.push_back(nn::ResnetBlock2D(nn::ResnetBlock2DOptions{
        .in_channels = i == 0 ? in_channels : out_channels, .out_channels = out_channels, .groups = groups, .eps = kVAENormEps}));
    resnets->push_back(resnet_list.back());
  }
  if (downsample) {
    downsampler = nn::Downsample2D(out_channels, out_channels, /*padding=*/0);
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(downsampler));
  }
  if (upsample) {
    upsampler = nn::Upsample2D(out_channels, out_channels);
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(upsampler));
  }
}

at::Tensor VAEBlockImpl::forward(const at::Tensor& x) {
  at::Tensor h = x;
  for (auto& r : resnet_list) h = r(h);
  if (downsampler) h = downsampler(h);
  if (upsampler) h = upsampler(h);
  return h;
}

VAEEncoderImpl::VAEEncoderImpl(const AutoencoderKLConfig& c) {
  const auto& ch = c.block_out_channels;
  const int64_t g = c.norm_num_groups;
  conv_in = register_module("conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in_channels, ch[0], 3).padding(1)));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out = ch[0];
  for (size_t i = 0; i < ch.size(); ++i) {
    const int64_t in = out;
    out = ch[i];
    blocks.push_back(VAEBlock(in, out, c.layers_per_block, g, /*downsample=*/i + 1 < ch.size(), /*upsample=*/false));
    down_blocks->push_back(blocks.back());
  }
  mid_block = register_module("mid_block", VAEMidBlock(ch.back(), g, c.mid_block_add_attention));
  conv_norm_out = register_module("conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(g, ch.back()).eps(kVAENormEps)));
  conv_out = register_module("conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch.back(), 2 * c.latent_channels, 3).padding(1)));
}

at::Tensor VAEEncoderImpl::forward(const at::Tensor& x) {
  at::Tensor h = conv_in(x);
  for (auto& b : blocks) h = b(h);
  h = mid_block(h);
  return conv_out(nn::group_norm_silu(conv_norm_out, h));
}

VAEDecoderImpl::VAEDecoderImpl(const AutoencoderKLConfig& c) {
  const std::vector<int64_t> rev(c.block_out_channels.rbegin(), c.block_out_channels.rend());
  const int64_t g = c.norm_num_groups;
  conv_in = register_module("conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.latent_channels, rev[0], 3).padding(1)));
  mid_block = register_module("mid_block", VAEMidBlock(rev[0], g, c.mid_block_add_attention));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  int64_t out = rev[0];
  for (size_t i = 0; i < rev.size(); ++i) {
    const int64_t prev = out;
    out = rev[i];
    blocks.push_back(VAEBlock(prev, out, c.layers_per_block + 1, g, /*downsample=*/false, /*upsample=*/i + 1 < rev.size()));
    up_blocks->push_back(blocks.back());
  }
  conv_norm_out = register_module("conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(g, rev.back()).eps(kVAENormEps)));
  conv_out = register_module("conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(rev.back(), c.out_channels, 3).padding(1)));
}

at::Tensor VAEDecoderImpl::forward(const at::Tensor& z) {
  at::Tensor h = mid_block(conv_in(z));
  for (auto& b : blocks) h = b(h);
  return conv_out(nn::group_norm_silu(conv_norm_out, h));
}

AutoencoderKLImpl::AutoencoderKLImpl(const AutoencoderKLConfig& c) : config(c) {
  config.validate();
  encoder = register_module("encoder", VAEEncoder(config));
  decoder = register_module("decoder", VAEDecoder(config));
  const int64_t l = config.latent_channels;
  if (config.use_quant_conv) quant_conv = register_module("quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2 * l, 2 * l, 1)));
  if (config.use_post_quant_conv)
    post_quant_conv = register_module("post_quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(l, l, 1)));
}

LatentDistribution LatentDistribution::from_moments(const at::Tensor& moments) {
  const auto parts = moments.chunk(2, 1);
  return {parts[0], parts[1].clamp(-30.0, 20.0)};
}

at::Tensor AutoencoderKLImpl::encode_moments(const at::Tensor& image) {
  const at::Tensor moments = encoder(image);
  return quant_conv ? quant_conv(moments) : moments;
}

LatentDistribution AutoencoderKLImpl::encode(const at::Tensor& image) {
  return LatentDistribution::from_moments(encode_moments(image));
}

at::Tensor AutoencoderKLImpl::decode(const at::Tensor& z) {
  return decoder(post_quant_conv ? post_quant_conv(z) : z);
}

AutoencoderKL load_autoencoder_kl(const std::string& folder, at::ScalarType dtype) {
  const auto config = AutoencoderKLConfig::from_file((std::filesystem::path(folder) / "config.json").string());
  AutoencoderKL vae(config);
  auto reader = io::open_weights(io::find_diffusers_weights(folder));
  nn::LoadOptions o;
  o.dtype = dtype;
  nn::load_state_dict(*vae, *reader, o);
  vae->eval();
  return vae;
}

AutoencoderKL load_autoencoder_kl_single_file(const std::string& path, const AutoencoderKLConfig& config,
                                              at::ScalarType dtype) {
  AutoencoderKL vae(config);
  auto reader = io::open_weights(path);
  nn::LoadOptions o;
  o.dtype = dtype;
  o.prefix = kLdmVAEPrefix;
  o.key_map = [&config](const std::string& name) { return autoencoder_kl_key_from_ldm(name, config); };
  o.squeeze_singleton_dims = true;
  nn::load_state_dict(*vae, *reader, o);
  vae->eval();
  return vae;
}

}  // namespace genvis::models
