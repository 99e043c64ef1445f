#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/shape.h"
#include "io/weights.h"
#include "models/autoencoder_kl/tiled.h"
#include "models/autoencoder_kl_wan/wan_vae_original_keys.h"
#include "nn/attention.h"
#include "nn/channel_norm.h"
#include "nn/state_dict.h"

#include <cmath>
#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

// diffusers encodes frame 0, then chunks of this many frames (the temporal downsamplers need a
// whole number of stride-2 steps per chunk).
constexpr int64_t kEncodeChunkMultiple = 4;


// PyTorch's default Conv initialisation bound, 1/sqrt(fan_in), for weights and biases.
at::Tensor uniform_init(at::IntArrayRef shape, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return torch::empty(shape).uniform_(-bound, bound);
}

// "5 and 9" for 6 frames: the counts of the form 1 + m*k on either side of `frames`.
std::string nearest_frame_counts(int64_t frames, int64_t m) {
  if (frames < 1) return "1";
  const int64_t below = 1 + (frames - 1) / m * m;
  return std::to_string(below) + " and " + std::to_string(below + m);
}

// at::conv3d, except that f32/bf16 on the CPU always runs through oneDNN. Pitfall: libtorch 1.13
// sends a batch-1 input with N*C*D*H <= 20480 (a one-frame chunk at low resolution, conv_in's 16
// latent channels) to its native kernel, vol2col plus the system BLAS: ~1.6 GFLOP/s with
// Debian's reference BLAS against ~35 through oneDNN on one core.
at::Tensor conv3d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::IntArrayRef stride,
                  at::IntArrayRef padding) {
  static const bool onednn = at::hasMKLDNN();
  if (onednn && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) &&
      x.scalar_type() == weight.scalar_type() && !at::GradMode::is_enabled())
    return at::mkldnn_convolution(x.contiguous(), weight, bias, padding, stride, {1, 1, 1}, 1);
  return at::conv3d(x, weight, bias, stride, padding);
}

// SiLU(norm(x)) in one pass (nn::channel_l2_norm; out of place with autograd when training).
at::Tensor norm_silu(WanVAERMSNorm& norm, const at::Tensor& x) { return nn::channel_l2_norm(x, norm->gamma * norm->scale, true); }

}  // namespace

// ---- config ----

int64_t AutoencoderKLWanConfig::temporal_factor() const {
  int64_t f = 1;
  for (const bool t : temperal_downsample)
    if (t) f *= 2;
  return f;
}

std::vector<std::string> AutoencoderKLWanConfig::problems() const {
  std::vector<std::string> p;
  const auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) p.push_back(std::string(name) + " must be positive (got " + std::to_string(v) + ")");
  };
  positive("base_dim", base_dim);
  if (decoder_base_dim) positive("decoder_base_dim", *decoder_base_dim);
  positive("z_dim", z_dim);
  positive("num_res_blocks", num_res_blocks);
  positive("in_channels", in_channels);
  positive("out_channels", out_channels);
  if (dim_mult.empty()) p.push_back("dim_mult is empty");
  for (const int64_t m : dim_mult)
    if (m <= 0) p.push_back("dim_mult entries must be positive (got " + std::to_string(m) + ")");
  if (!dim_mult.empty() && temperal_downsample.size() + 1 != dim_mult.size())
    p.push_back("temperal_downsample has " + std::to_string(temperal_downsample.size()) +
                " entries; it needs one per level but the last (" + std::to_string(dim_mult.size() - 1) + ")");
  if (temporal_factor() > kEncodeChunkMultiple)
    p.push_back("temperal_downsample halves time " + std::to_string(temporal_factor() / 2) +
                " times; the 4-frame encode chunks allow at most 2");
  if (dim_mult.size() > 1) {
    // Every decoder upsampler halves its block's channels.
    const int64_t dec = decoder_base_dim.value_or(base_dim);
    for (const int64_t m : dim_mult)
      if (dec * m == 1) p.push_back("decoder channels (decoder_base_dim or base_dim times dim_mult) must be >= 2");
  }
  if (!attn_scales.empty())
    p.push_back("attn_scales must be empty: diffusers' AutoencoderKLWan cannot run attention in the encoder's down "
                "blocks, and Wan 2.1 has none");
  if (!(dropout >= 0 && dropout < 1)) p.push_back("dropout must be in [0, 1)");
  if (static_cast<int64_t>(latents_mean.size()) != z_dim)
    p.push_back("latents_mean has " + std::to_string(latents_mean.size()) + " entries, z_dim is " +
                std::to_string(z_dim));
  if (static_cast<int64_t>(latents_std.size()) != z_dim)
    p.push_back("latents_std has " + std::to_string(latents_std.size()) + " entries, z_dim is " + std::to_string(z_dim));
  for (const double s : latents_std)
    if (!(s > 0) || !std::isfinite(s)) {
      p.push_back("latents_std entries must be positive and finite");
      break;
    }
  for (const double m : latents_mean)
    if (!std::isfinite(m)) {
      p.push_back("latents_mean entries must be finite");
      break;
    }
  return p;
}

AutoencoderKLWanConfig AutoencoderKLWanConfig::from_json(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) throw LoadError(source, "AutoencoderKLWan config must be a JSON object");
  AutoencoderKLWanConfig c;
  config::Problems p;
  config::check_keys(json, "", {},
                     {"base_dim", "decoder_base_dim", "z_dim", "dim_mult", "num_res_blocks", "attn_scales",
                      "temperal_downsample", "dropout", "latents_mean", "latents_std", "is_residual", "in_channels",
                      "out_channels", "patch_size", "scale_factor_temporal", "scale_factor_spatial"},
                     p);
  const auto read = [&](const char* key, auto& field) { config::read(json, "", key, field, p); };
  read("base_dim", c.base_dim);
  read("decoder_base_dim", c.decoder_base_dim);
  read("z_dim", c.z_dim);
  read("dim_mult", c.dim_mult);
  read("num_res_blocks", c.num_res_blocks);
  read("attn_scales", c.attn_scales);
  read("temperal_downsample", c.temperal_downsample);
  read("dropout", c.dropout);
  read("latents_mean", c.latents_mean);
  read("latents_std", c.latents_std);
  read("in_channels", c.in_channels);
  read("out_channels", c.out_channels);
  // Keys of later diffusers versions (Wan 2.2's VAE), accepted where they describe Wan 2.1's.
  bool is_residual = false;
  std::optional<int64_t> patch_size, scale_factor_temporal, scale_factor_spatial;
  read("is_residual", is_residual);
  read("patch_size", patch_size);
  read("scale_factor_temporal", scale_factor_temporal);
  read("scale_factor_spatial", scale_factor_spatial);
  if (is_residual) p.push_back("is_residual (Wan 2.2's residual VAE blocks) is not supported");
  if (patch_size && *patch_size != 1)
    p.push_back("patch_size " + std::to_string(*patch_size) + " (Wan 2.2's patchified VAE) is not supported");
  auto problems = c.problems();
  if (problems.empty()) {  // the derived factors are meaningful only for a valid block layout
    if (scale_factor_temporal && *scale_factor_temporal != c.temporal_factor())
      p.push_back("scale_factor_temporal " + std::to_string(*scale_factor_temporal) +
                  " disagrees with temperal_downsample (" + std::to_string(c.temporal_factor()) + ")");
    if (scale_factor_spatial && *scale_factor_spatial != c.spatial_factor())
      p.push_back("scale_factor_spatial " + std::to_string(*scale_factor_spatial) + " disagrees with dim_mult (" +
                  std::to_string(c.spatial_factor()) + ")");
  }
  for (auto& problem : problems) p.push_back(std::move(problem));
  if (!p.empty()) throw LoadError(source, "invalid AutoencoderKLWan config: " + config::describe(p));
  return c;
}

AutoencoderKLWanConfig AutoencoderKLWanConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path), path);
}

// ---- modules ----

WanVAECausalConv3dImpl::WanVAECausalConv3dImpl(int64_t in, int64_t out, std::vector<int64_t> kernel,
                                               std::vector<int64_t> padding, std::vector<int64_t> stride)
    : time_padding(2 * padding.at(0)), spatial_padding{0, padding.at(1), padding.at(2)}, stride(std::move(stride)) {
  const int64_t fan_in = in * kernel.at(0) * kernel.at(1) * kernel.at(2);
  weight = register_parameter("weight", uniform_init({out, in, kernel[0], kernel[1], kernel[2]}, fan_in));
  bias = register_parameter("bias", uniform_init({out}, fan_in));
}

at::Tensor WanVAECausalConv3dImpl::conv(const at::Tensor& input) const {
  return models::conv3d(input, weight, bias, stride, spatial_padding);
}

at::Tensor WanVAECausalConv3dImpl::forward(const at::Tensor& x, WanFrameCache* cache) {
  if (time_padding == 0) return conv(x);
  if (!cache) return conv(at::constant_pad_nd(x, {0, 0, 0, 0, time_padding, 0}));
  // [zeros, frames kept from the previous chunk, x]: time_padding frames before x in all.
  at::Tensor& past = cache->frames(this);
  const int64_t have = past.defined() ? std::min(past.size(2), time_padding) : 0;
  std::vector<at::Tensor> parts;
  if (have < time_padding) {
    auto shape = x.sizes().vec();
    shape[2] = time_padding - have;
    parts.push_back(at::zeros(shape, x.options()));
  }
  if (have > 0) parts.push_back(past.narrow(2, past.size(2) - have, have));
  parts.push_back(x);
  const at::Tensor input = at::cat(parts, 2);
  // The last time_padding real frames (fewer after a one-frame first chunk), copied so that the
  // chunk's activations can be freed.
  const int64_t keep = std::min(time_padding, have + x.size(2));
  past = input.narrow(2, input.size(2) - keep, keep).clone();
  return conv(input);
}

WanVAERMSNormImpl::WanVAERMSNormImpl(int64_t dim, bool images) : scale(std::sqrt(static_cast<double>(dim))) {
  gamma = register_parameter("gamma", images ? torch::ones({dim, 1, 1}) : torch::ones({dim, 1, 1, 1}));
}

at::Tensor WanVAERMSNormImpl::forward(const at::Tensor& x) {
  // F.normalize(x, dim=1) * sqrt(C) * gamma (diffusers' bias is 0.0).
  return nn::channel_l2_norm(x, gamma * scale, false);
}

WanVAEResidualBlockImpl::WanVAEResidualBlockImpl(int64_t in, int64_t out) {
  norm1 = register_module("norm1", WanVAERMSNorm(in, false));
  conv1 = register_module("conv1", WanVAECausalConv3d(in, out, std::vector<int64_t>{3, 3, 3}, std::vector<int64_t>{1, 1, 1}));
  norm2 = register_module("norm2", WanVAERMSNorm(out, false));
  conv2 = register_module("conv2", WanVAECausalConv3d(out, out, std::vector<int64_t>{3, 3, 3}, std::vector<int64_t>{1, 1, 1}));
  if (in != out) conv_shortcut = register_module("conv_shortcut", WanVAECausalConv3d(in, out, std::vector<int64_t>{1, 1, 1}));
}

at::Tensor WanVAEResidualBlockImpl::forward(const at::Tensor& x, WanFrameCache* cache) {
  const at::Tensor shortcut = conv_shortcut ? conv_shortcut(x) : x;
  at::Tensor h = conv1(norm_silu(norm1, x), cache);
  h = conv2(norm_silu(norm2, h), cache);  // (dropout: identity at inference)
  return at::GradMode::is_enabled() ? h + shortcut : h.add_(shortcut);
}

WanVAEAttentionBlockImpl::WanVAEAttentionBlockImpl(int64_t dim) {
  norm = register_module("norm", WanVAERMSNorm(dim, true));
  to_qkv = register_module("to_qkv", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, 3 * dim, 1)));
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 1)));
}

at::Tensor WanVAEAttentionBlockImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
  const at::Tensor frames = x.permute({0, 2, 1, 3, 4}).reshape({b * t, c, h, w});
  const at::Tensor qkv = to_qkv(norm(frames)).flatten(2).transpose(1, 2).contiguous();  // [bt, hw, 3c]
  const auto q_k_v = qkv.chunk(3, -1);
  const at::Tensor attended = nn::attention(q_k_v[0], q_k_v[1], q_k_v[2], 1);  // [bt, hw, c]
  const at::Tensor out = proj(attended.transpose(1, 2).reshape({b * t, c, h, w}));
  return out.view({b, t, c, h, w}).permute({0, 2, 1, 3, 4}) + x;
}

WanVAEResampleImpl::WanVAEResampleImpl(int64_t dim, const std::string& mode, int64_t upsample_out_dim) : mode(mode) {
  const bool up = mode == "upsample2d" || mode == "upsample3d";
  if (!up && mode != "downsample2d" && mode != "downsample3d")
    throw UsageError("unknown Wan VAE resample mode '" + mode + "'");
  // diffusers' nn.Sequential(upsample or zero pad, Conv2d): only "1" has weights.
  conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, up ? upsample_out_dim : dim, 3));
  resample = register_module("resample", torch::nn::ModuleList(torch::nn::Identity(), conv));
  if (mode == "upsample3d")
    time_conv = register_module("time_conv", WanVAECausalConv3d(dim, 2 * dim, std::vector<int64_t>{3, 1, 1},
                                                                std::vector<int64_t>{1, 0, 0}));
  if (mode == "downsample3d")
    time_conv = register_module("time_conv", WanVAECausalConv3d(dim, dim, std::vector<int64_t>{3, 1, 1},
                                                                std::vector<int64_t>{0, 0, 0},
                                                                std::vector<int64_t>{2, 1, 1}));
}

at::Tensor WanVAEResampleImpl::forward(const at::Tensor& x_in, WanFrameCache* cache) {
  // The 2-D conv runs on every frame at once as a 1x3x3 3-D conv (no permutes to [B*T,C,H,W]).
  const at::Tensor kernel = conv->weight.unsqueeze(2);
  at::Tensor x = x_in;
  if (mode == "upsample2d" || mode == "upsample3d") {
    if (mode == "upsample3d" && cache && !cache->first_visit(this)) {
      // time_conv doubles the channels; the halves become frames 2t and 2t+1. (Frame 0's chunk
      // passes through unchanged: 1 latent frame -> 1 frame.)
      const int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
      x = time_conv(x, cache).view({b, 2, c, t, h, w}).permute({0, 2, 3, 1, 4, 5}).reshape({b, c, 2 * t, h, w});
    }
    // Nearest x2 in H and W, then the conv. (WanUpsample goes through float, but nearest
    // neighbours are copies: the same values straight in x's dtype, without the float copies,
    // which were the bf16 decoder's largest tensors at 480x832.)
    const int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
    const at::Tensor up = x.reshape({b, c, t, h, 1, w, 1}).expand({b, c, t, h, 2, w, 2}).reshape({b, c, t, 2 * h, 2 * w});
    return conv3d(up, kernel, conv->bias, {1, 1, 1}, {0, 1, 1});
  }
  // Zero pad right and bottom by one, 3x3 stride 2.
  x = conv3d(at::constant_pad_nd(x, {0, 1, 0, 1}), kernel, conv->bias, {1, 2, 2}, {0, 0, 0});
  if (mode == "downsample3d" && cache) {
    at::Tensor& last = cache->frames(this);
    if (cache->first_visit(this)) {
      last = x.narrow(2, x.size(2) - 1, 1).clone();  // frame 0 passes through
    } else {
      // Stride-2 time conv over [previous chunk's last frame, chunk]: 2k frames -> k.
      const at::Tensor input = at::cat({last, x}, 2);
      last = x.narrow(2, x.size(2) - 1, 1).clone();
      x = time_conv->conv(input);
    }
  }
  return x;
}

WanVAEMidBlockImpl::WanVAEMidBlockImpl(int64_t dim) {
  resnet_list = {WanVAEResidualBlock(dim, dim), WanVAEResidualBlock(dim, dim)};
  attention = WanVAEAttentionBlock(dim);
  attentions = register_module("attentions", torch::nn::ModuleList(attention));
  resnets = register_module("resnets", torch::nn::ModuleList(resnet_list[0], resnet_list[1]));
}

at::Tensor WanVAEMidBlockImpl::forward(const at::Tensor& x, WanFrameCache* cache) {
  return resnet_list[1](attention(resnet_list[0](x, cache)), cache);
}

WanVAEUpBlockImpl::WanVAEUpBlockImpl(int64_t in, int64_t out, int64_t num_res_blocks, const std::string& upsample_mode) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i <= num_res_blocks; ++i) {
    resnet_list.push_back(WanVAEResidualBlock(i == 0 ? in : out, out));
    resnets->push_back(resnet_list.back());
  }
  if (!upsample_mode.empty()) {
    upsampler = WanVAEResample(out, upsample_mode, out / 2);
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(upsampler));
  }
}

at::Tensor WanVAEUpBlockImpl::forward(const at::Tensor& x_in, WanFrameCache* cache) {
  at::Tensor x = x_in;
  for (auto& r : resnet_list) x = r(x, cache);
  return upsampler ? upsampler(x, cache) : x;
}

WanVAEEncoderImpl::WanVAEEncoderImpl(const AutoencoderKLWanConfig& c) {
  const std::vector<int64_t> k3{3, 3, 3}, p1{1, 1, 1};
  conv_in = register_module("conv_in", WanVAECausalConv3d(c.in_channels, c.base_dim, k3, p1));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t dim = c.base_dim;
  for (size_t level = 0; level < c.dim_mult.size(); ++level) {
    const int64_t out = c.base_dim * c.dim_mult[level];
    for (int64_t i = 0; i < c.num_res_blocks; ++i, dim = out) down_blocks->push_back(WanVAEResidualBlock(dim, out));
    if (level + 1 < c.dim_mult.size())
      down_blocks->push_back(WanVAEResample(dim, c.temperal_downsample[level] ? "downsample3d" : "downsample2d", 0));
  }
  mid_block = register_module("mid_block", WanVAEMidBlock(dim));
  norm_out = register_module("norm_out", WanVAERMSNorm(dim, false));
  conv_out = register_module("conv_out", WanVAECausalConv3d(dim, 2 * c.z_dim, k3, p1));
}

at::Tensor WanVAEEncoderImpl::forward(const at::Tensor& video, WanFrameCache& cache) {
  at::Tensor x = conv_in(video, &cache);
  for (const auto& block : *down_blocks) {
    if (auto* resnet = block->as<WanVAEResidualBlockImpl>()) x = resnet->forward(x, &cache);
    else x = block->as<WanVAEResampleImpl>()->forward(x, &cache);
  }
  x = mid_block(x, &cache);
  return conv_out(norm_silu(norm_out, x), &cache);
}

WanVAEDecoderImpl::WanVAEDecoderImpl(const AutoencoderKLWanConfig& c) {
  const std::vector<int64_t> k3{3, 3, 3}, p1{1, 1, 1};
  const int64_t base = c.decoder_base_dim.value_or(c.base_dim);
  const size_t levels = c.dim_mult.size();
  // Channels per level, deepest first: [mult[-1], mult[-1], ..., mult[0]] * base.
  std::vector<int64_t> dims = {base * c.dim_mult.back()};
  for (size_t i = levels; i-- > 0;) dims.push_back(base * c.dim_mult[i]);
  conv_in = register_module("conv_in", WanVAECausalConv3d(c.z_dim, dims[0], k3, p1));
  mid_block = register_module("mid_block", WanVAEMidBlock(dims[0]));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < levels; ++i) {
    // Every block but the first follows an upsampler, which halved the channels.
    const int64_t in = i == 0 ? dims[i] : dims[i] / 2;
    std::string mode;
    if (i + 1 < levels) mode = c.temperal_downsample[levels - 2 - i] ? "upsample3d" : "upsample2d";
    blocks.push_back(WanVAEUpBlock(in, dims[i + 1], c.num_res_blocks, mode));
    up_blocks->push_back(blocks.back());
  }
  norm_out = register_module("norm_out", WanVAERMSNorm(dims.back(), false));
  conv_out = register_module("conv_out", WanVAECausalConv3d(dims.back(), c.out_channels, k3, p1));
}

at::Tensor WanVAEDecoderImpl::forward(const at::Tensor& z, WanFrameCache& cache) {
  at::Tensor x = mid_block(conv_in(z, &cache), &cache);
  for (auto& block : blocks) x = block(x, &cache);
  return conv_out(norm_silu(norm_out, x), &cache);
}

// ---- the autoencoder ----

AutoencoderKLWanImpl::AutoencoderKLWanImpl(const AutoencoderKLWanConfig& c) : config(c) {
  if (const auto problems = c.problems(); !problems.empty())
    throw UsageError("invalid AutoencoderKLWan config: " + config::describe(problems));
  encoder = register_module("encoder", WanVAEEncoder(c));
  quant_conv = register_module("quant_conv", WanVAECausalConv3d(2 * c.z_dim, 2 * c.z_dim, std::vector<int64_t>{1, 1, 1}));
  post_quant_conv = register_module("post_quant_conv", WanVAECausalConv3d(c.z_dim, c.z_dim, std::vector<int64_t>{1, 1, 1}));
  decoder = register_module("decoder", WanVAEDecoder(c));
}

at::Tensor AutoencoderKLWanImpl::encode_moments(const at::Tensor& video, const WanVAEChunking& chunking) {
  return run_encoder(video, chunking, false);
}

at::Tensor AutoencoderKLWanImpl::encode_moments_with_grad(const at::Tensor& video, const WanVAEChunking& chunking) {
  return run_encoder(video, chunking, true);
}

at::Tensor AutoencoderKLWanImpl::run_encoder(const at::Tensor& video, const WanVAEChunking& chunking, bool with_grad) {
  const int64_t f = config.spatial_factor();
  if (!video.defined() || video.dim() != 5 || video.size(1) != config.in_channels)
    throw UsageError("Wan VAE encode: video must be [B," + std::to_string(config.in_channels) + ",T,H,W], got " +
                     shape_of(video));
  const int64_t frames = video.size(2), height = video.size(3), width = video.size(4);
  if (frames < 1 || (frames - 1) % kEncodeChunkMultiple != 0)
    throw UsageError("Wan VAE encode: " + std::to_string(frames) +
                     " frames is not of the form 4k+1; the nearest valid counts are " +
                     nearest_frame_counts(frames, kEncodeChunkMultiple));
  if (height < f || width < f || height % f != 0 || width % f != 0)
    throw UsageError("Wan VAE encode: frame size " + std::to_string(height) + "x" + std::to_string(width) +
                     " is not a positive multiple of " + std::to_string(f) + " in both directions");
  if (chunking.encode_frames < 1 || chunking.encode_frames % kEncodeChunkMultiple != 0)
    throw UsageError("Wan VAE encode: chunks of " + std::to_string(chunking.encode_frames) +
                     " frames; they must be a positive multiple of 4");
  std::optional<torch::NoGradGuard> no_grad;
  if (!with_grad) no_grad.emplace();
  const at::Tensor x = video.to(quant_conv->weight.device(), quant_conv->weight.scalar_type());
  WanFrameCache cache;
  std::vector<at::Tensor> parts;
  at::Tensor out;  // [B, 2*z_dim, 1 + (T-1)/4, H/f, W/f]
  int64_t written = 0;
  for (int64_t start = 0; start < frames;) {
    const int64_t n = start == 0 ? 1 : std::min(chunking.encode_frames, frames - start);
    const at::Tensor moments = quant_conv(encoder(x.narrow(2, start, n), cache));
    if (with_grad) {
      parts.push_back(moments);
    } else {
      if (!out.defined())
        out = at::empty({x.size(0), moments.size(1), latent_frames(frames), moments.size(3), moments.size(4)},
                        moments.options());
      out.narrow(2, written, moments.size(2)).copy_(moments);
    }
    written += moments.size(2);
    start += n;
  }
  return with_grad ? at::cat(parts, 2) : out;
}

LatentDistribution AutoencoderKLWanImpl::encode(const at::Tensor& video, const WanVAEChunking& chunking) {
  return LatentDistribution::from_moments(encode_moments(video, chunking));
}

at::Tensor AutoencoderKLWanImpl::decode_unclamped(const at::Tensor& z, const WanVAEChunking& chunking) {
  return run_decoder(z, chunking, false);
}

at::Tensor AutoencoderKLWanImpl::decode_with_grad(const at::Tensor& z, const WanVAEChunking& chunking) {
  return run_decoder(z, chunking, true);
}

at::Tensor AutoencoderKLWanImpl::run_decoder(const at::Tensor& z, const WanVAEChunking& chunking, bool with_grad) {
  if (!z.defined() || z.dim() != 5 || z.size(1) != config.z_dim || z.size(2) < 1 || z.size(3) < 1 || z.size(4) < 1)
    throw UsageError("Wan VAE decode: latents must be [B," + std::to_string(config.z_dim) + ",T,H,W], got " +
                     shape_of(z));
  if (chunking.decode_frames < 1)
    throw UsageError("Wan VAE decode: chunks of " + std::to_string(chunking.decode_frames) +
                     " latent frames; they must be positive");
  std::optional<torch::NoGradGuard> no_grad;
  if (!with_grad) no_grad.emplace();
  const at::Tensor x = z.to(post_quant_conv->weight.device(), post_quant_conv->weight.scalar_type());
  const int64_t frames = x.size(2);
  WanFrameCache cache;
  std::vector<at::Tensor> parts;
  at::Tensor out;  // [B, out_channels, 1 + 4(T'-1), H*f, W*f]
  int64_t written = 0;
  for (int64_t start = 0; start < frames;) {
    const int64_t n = start == 0 ? 1 : std::min(chunking.decode_frames, frames - start);
    const at::Tensor decoded = decoder(post_quant_conv(x.narrow(2, start, n)), cache);
    if (with_grad) {
      parts.push_back(decoded);
    } else {
      if (!out.defined())
        out = at::empty({x.size(0), decoded.size(1), video_frames(frames), decoded.size(3), decoded.size(4)},
                        decoded.options());
      out.narrow(2, written, decoded.size(2)).copy_(decoded);
    }
    written += decoded.size(2);
    start += n;
  }
  return with_grad ? at::cat(parts, 2) : out;
}

at::Tensor AutoencoderKLWanImpl::decode(const at::Tensor& z, const WanVAEChunking& chunking) {
  return decode_unclamped(z, chunking).clamp_(-1.0, 1.0);
}

at::Tensor AutoencoderKLWanImpl::latents_mean() const {
  return at::tensor(config.latents_mean, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat).view({1, -1, 1, 1, 1});
}

at::Tensor AutoencoderKLWanImpl::latents_std() const {
  return at::tensor(config.latents_std, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat).view({1, -1, 1, 1, 1});
}

AutoencoderKLWan load_autoencoder_kl_wan(const std::string& path, at::ScalarType dtype, const nlohmann::json& overrides) {
  const nlohmann::json patch = overrides.is_object() ? overrides : nlohmann::json::object();
  nn::LoadOptions options;
  options.dtype = dtype;
  std::unique_ptr<io::WeightReader> reader;
  std::optional<AutoencoderKLWanConfig> config;
  std::optional<nn::KeyTable> table;
  if (std::filesystem::is_directory(path)) {
    const std::string config_path = (std::filesystem::path(path) / "config.json").string();
    nlohmann::json j = config::read_file(config_path);
    if (j.is_object()) j.merge_patch(patch);
    config = AutoencoderKLWanConfig::from_json(j, config_path);
    reader = io::open_weights(io::find_diffusers_weights(path, "diffusers AutoencoderKLWan component"));
  } else {
    reader = io::open_weights(path);
    if (!is_wan_vae_original(reader->tensors())) {
      const bool diffusers = reader->contains("encoder.conv_in.weight") && reader->contains("decoder.up_blocks.0.resnets.0.conv1.weight");
      throw LoadError(path, diffusers ? "a diffusers-layout Wan VAE file: give its folder (with config.json)"
                                      : "not a Wan 2.1 VAE (looked for encoder.conv1.weight and "
                                        "decoder.upsamples.0.residual.0.gamma)");
    }
    config = AutoencoderKLWanConfig::from_json(infer_wan_vae_config(reader->tensors(), patch, path), path);
    table = wan_vae_original_keys(*config);
    table->apply(options);
  }
  AutoencoderKLWan vae(*config);
  nn::load_state_dict(*vae, *reader, options);
  vae->eval();
  return vae;
}

// ---- spatial tiling ----

namespace {

// The tile grid in latents (UsageError for bad settings).
detail::TileGrid wan_latent_grid(const AutoencoderKLWan& vae, const WanVAETiling& tiling) {
  const int64_t f = vae->config.spatial_factor();
  if (tiling.tile_size <= 0 || tiling.tile_size % f != 0 || tiling.stride <= 0 || tiling.stride % f != 0 ||
      tiling.stride > tiling.tile_size)
    throw UsageError("Wan VAE tiling: tile size " + std::to_string(tiling.tile_size) + " and stride " +
                     std::to_string(tiling.stride) + " must be positive multiples of " + std::to_string(f) +
                     " with stride <= tile size");
  return {.tile = tiling.tile_size / f, .stride = tiling.stride / f, .scale_num = 1, .scale_den = 1};
}

// [B,C,T,H,W] <-> [B,C*T,H,W], so that the 2-D tiling helper tiles H and W of every frame at once.
at::Tensor frames_to_channels(const at::Tensor& x) { return x.flatten(1, 2); }
at::Tensor channels_to_frames(const at::Tensor& x, int64_t channels) { return x.unflatten(1, {channels, -1}); }

}  // namespace

bool needs_tiling(const AutoencoderKLWan& vae, int64_t height, int64_t width, const WanVAETiling& tiling) {
  wan_latent_grid(vae, tiling);
  return height > tiling.tile_size || width > tiling.tile_size;
}

at::Tensor tiled_decode(AutoencoderKLWan& vae, const at::Tensor& z, const WanVAETiling& tiling,
                        const WanVAEChunking& chunking, bool clamp) {
  detail::TileGrid grid = wan_latent_grid(vae, tiling);
  const int64_t f = vae->config.spatial_factor();
  if (!z.defined() || z.dim() != 5 || z.size(1) != vae->config.z_dim)
    throw UsageError("Wan VAE tiled decode: latents must be [B," + std::to_string(vae->config.z_dim) +
                     ",T,H,W], got " + shape_of(z));
  if (!needs_tiling(vae, z.size(3) * f, z.size(4) * f, tiling))
    return clamp ? vae->decode(z, chunking) : vae->decode_unclamped(z, chunking);
  grid.scale_num = f;
  const int64_t channels = z.size(1);
  torch::NoGradGuard no_grad;
  at::Tensor out = detail::tiled_apply(frames_to_channels(z), grid, [&](const at::Tensor& tile) {
    return frames_to_channels(vae->decode_unclamped(channels_to_frames(tile, channels), chunking));
  });
  out = channels_to_frames(out, vae->config.out_channels);
  return clamp ? out.clamp_(-1.0, 1.0) : out;
}

LatentDistribution tiled_encode(AutoencoderKLWan& vae, const at::Tensor& video, const WanVAETiling& tiling,
                                const WanVAEChunking& chunking) {
  detail::TileGrid grid = wan_latent_grid(vae, tiling);
  const int64_t f = vae->config.spatial_factor();
  if (!video.defined() || video.dim() != 5 || video.size(1) != vae->config.in_channels)
    throw UsageError("Wan VAE tiled encode: video must be [B," + std::to_string(vae->config.in_channels) +
                     ",T,H,W], got " + shape_of(video));
  if (!needs_tiling(vae, video.size(3), video.size(4), tiling)) return vae->encode(video, chunking);
  if (video.size(3) % f != 0 || video.size(4) % f != 0)
    throw UsageError("Wan VAE tiled encode: frame size " + std::to_string(video.size(3)) + "x" +
                     std::to_string(video.size(4)) + " is not a multiple of " + std::to_string(f));
  // The same grid in pixels; tile outputs are 1/f the size.
  grid.tile *= f;
  grid.stride *= f;
  grid.scale_den = f;
  const int64_t channels = video.size(1);
  torch::NoGradGuard no_grad;
  const at::Tensor moments = detail::tiled_apply(frames_to_channels(video), grid, [&](const at::Tensor& tile) {
    return frames_to_channels(vae->encode_moments(channels_to_frames(tile, channels), chunking));
  });
  return LatentDistribution::from_moments(channels_to_frames(moments, 2 * vae->config.z_dim));
}

}  // namespace genvis::models
