// Wan 2.1's causal 3D VAE (diffusers AutoencoderKLWan, 0.33 key names and numerics).
//
//   auto vae = genvis::models::load_autoencoder_kl_wan("Wan2.1-T2V-1.3B-Diffusers/vae");
//   auto posterior = vae->encode(video /*[B,3,1+4k,H,W] in [-1,1], H,W multiples of 8*/);
//   // posterior.mean / logvar [B,16,1+k,H/8,W/8]; the pipelines normalise with
//   // (mean - vae->latents_mean()) / vae->latents_std().
//   at::Tensor video = vae->decode(z /*[B,16,T',H/8,W/8]*/);  // [B,3,1+4(T'-1),H,W], clamped to [-1,1]
//   at::Tensor big = genvis::models::tiled_decode(vae, z);  // frames larger than 256 px
//
// Time is causal: every 3D convolution sees the current frame and the two before it (zeros
// before the first frame). Like diffusers, encode runs the encoder on frame 0 and then on chunks
// of 4 frames, and decode runs the decoder one latent frame at a time; between chunks each causal
// convolution keeps the last 2 frames of its input (diffusers' feat_cache, CACHE_T = 2) and each
// temporal downsampler the last frame. Peak memory therefore follows the chunk, not the video:
// only the input and the output are whole (measured: the full-size decoder at 128x128 peaks at
// 1153 MB for 5 frames and 1168 MB for 21, weights included). The caches are a constant part of
// it: 2 frames of every convolution's input, about 590 MB in f32 at 256x256 for the full-size
// decoder and 3.6 GB at 480x832 (half in bf16). The first chunk is special: temporal
// up/downsamplers pass frame 0 through without their time convolution, so T' latent frames
// decode to 1 + 4(T'-1) video frames. Any chunk sizes give the same numbers up to float rounding
// (tested): larger chunks trade memory for fewer, larger convolutions.
//
// Layout: encoder conv_in -> down_blocks (flat: residual blocks, then a Resample per level:
// downsample2d, or downsample3d with a stride-2 time_conv) -> mid_block (resnet, per-frame
// single-head attention, resnet) -> RMS norm, SiLU, conv_out -> quant_conv (1x1x1) -> mean,
// logvar (clamped to [-30, 20]); decoder post_quant_conv -> conv_in -> mid_block -> up_blocks
// (num_res_blocks + 1 residual blocks, then upsample3d with a time_conv doubling the frames, or
// upsample2d; each upsampler halves the channels) -> RMS norm, SiLU, conv_out -> clamp.
// Every norm is WanRMS_norm: x / ||x||_channels * sqrt(C) * gamma.
#pragma once
#include "models/autoencoder_kl/autoencoder_kl.h"  // LatentDistribution

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace genvis::models {

// Field names and defaults of diffusers' AutoencoderKLWan (Wan 2.1's VAE). Later diffusers
// versions added keys for Wan 2.2's VAE; the ones that can describe a Wan 2.1 VAE are accepted
// (decoder_base_dim, in_channels, out_channels; is_residual false, patch_size null,
// scale_factor_temporal/spatial equal to what the blocks give).
struct AutoencoderKLWanConfig {
  int64_t base_dim = 96;
  std::optional<int64_t> decoder_base_dim;  // null: base_dim
  int64_t z_dim = 16;
  std::vector<int64_t> dim_mult = {1, 2, 4, 4};
  int64_t num_res_blocks = 2;
  std::vector<double> attn_scales;  // must be empty (diffusers 0.33 cannot run encoder attention)
  std::vector<bool> temperal_downsample = {false, true, true};  // (sic), one per level but the last
  double dropout = 0.0;
  std::vector<double> latents_mean = {-0.7571, -0.7089, -0.9113, 0.1075,  -0.1745, 0.9653,  -0.1517, 1.5508,
                                      0.4134,  -0.0715, 0.5517,  -0.3632, -0.1922, -0.9497, 0.2503,  -0.2921};
  std::vector<double> latents_std = {2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                                     3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160};
  int64_t in_channels = 3;
  int64_t out_channels = 3;

  // Video pixels per latent along H and W (2^(levels-1)) and along time (2^(temporal downsamples)).
  int64_t spatial_factor() const { return int64_t{1} << temperal_downsample.size(); }
  int64_t temporal_factor() const;

  // Every problem at once; empty when usable.
  std::vector<std::string> problems() const;
  // Unknown keys, wrong types and invalid values all in one LoadError naming `source`.
  static AutoencoderKLWanConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static AutoencoderKLWanConfig from_file(const std::string& path);
};

// Chunk sizes of encode/decode (after the first chunk, which is always one frame). The defaults
// are diffusers'; larger chunks give the same result with fewer, larger convolutions and more
// memory.
struct WanVAEChunking {
  int64_t encode_frames = 4;  // video frames per encoder call: a positive multiple of 4
  int64_t decode_frames = 1;  // latent frames per decoder call: positive

  // The fewest calls for a clip of `frames` video frames: frame 0, then the rest in one call each
  // way. Same numbers as the defaults; memory grows with the clip (what training on short clips
  // wants: 1.15x faster per VAE training step of configs/video-shapes.json, docs/performance.md).
  static WanVAEChunking whole_clip(int64_t frames) {
    const int64_t rest = frames > 1 ? frames - 1 : 1;
    return {.encode_frames = (rest + 3) / 4 * 4, .decode_frames = rest};
  }
};

// The frames each causal convolution (and temporal resampler) keeps between chunks of one
// encode or decode pass, by module. Empty at the start of a pass.
class WanFrameCache {
public:
  at::Tensor& frames(const torch::nn::Module* owner) { return frames_[owner]; }
  // True the first time `owner` asks (frame 0's chunk), false afterwards.
  bool first_visit(const torch::nn::Module* owner) { return visited_.insert(owner).second; }

private:
  std::unordered_map<const torch::nn::Module*, at::Tensor> frames_;
  std::unordered_set<const torch::nn::Module*> visited_;
};

// Conv3d that pads time on the left only (2 * padding[0] frames, taken from the cache when
// there is one) and H/W symmetrically. Keys weight, bias.
class WanVAECausalConv3dImpl : public torch::nn::Module {
public:
  WanVAECausalConv3dImpl(int64_t in, int64_t out, std::vector<int64_t> kernel, std::vector<int64_t> padding = {0, 0, 0},
                         std::vector<int64_t> stride = {1, 1, 1});
  // x [B,in,T,H,W] -> [B,out,T,H,W]. With a cache, the frames kept from the previous chunk stand
  // in for the zero padding, and the last 2 input frames are kept for the next chunk; without
  // one, zeros (a whole sequence in one call).
  at::Tensor forward(const at::Tensor& x, WanFrameCache* cache = nullptr);
  // The bare convolution: no time padding.
  at::Tensor conv(const at::Tensor& input) const;
  int64_t time_padding;
  std::vector<int64_t> spatial_padding;  // {0, pH, pW} for at::conv3d
  std::vector<int64_t> stride;
  at::Tensor weight, bias;
};
TORCH_MODULE(WanVAECausalConv3d);

// WanRMS_norm over channels (dim 1): x / max(||x||, 1e-12) * sqrt(C) * gamma. gamma is
// [C,1,1,1] for 5-D inputs (images = false) or [C,1,1] for the per-frame attention (images = true).
class WanVAERMSNormImpl : public torch::nn::Module {
public:
  WanVAERMSNormImpl(int64_t dim, bool images);
  at::Tensor forward(const at::Tensor& x);
  double scale;
  at::Tensor gamma;
};
TORCH_MODULE(WanVAERMSNorm);

// norm1 -> SiLU -> conv1 -> norm2 -> SiLU -> conv2, plus conv_shortcut (1x1x1) when the channel
// count changes.
class WanVAEResidualBlockImpl : public torch::nn::Module {
public:
  WanVAEResidualBlockImpl(int64_t in, int64_t out);
  at::Tensor forward(const at::Tensor& x, WanFrameCache* cache);
  WanVAERMSNorm norm1{nullptr}, norm2{nullptr};
  WanVAECausalConv3d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
};
TORCH_MODULE(WanVAEResidualBlock);

// Per-frame single-head self-attention over H*W positions: norm -> to_qkv (1x1 conv) ->
// attention (scale 1/sqrt(C)) -> proj (1x1 conv) -> + input.
class WanVAEAttentionBlockImpl : public torch::nn::Module {
public:
  explicit WanVAEAttentionBlockImpl(int64_t dim);
  at::Tensor forward(const at::Tensor& x);
  WanVAERMSNorm norm{nullptr};
  torch::nn::Conv2d to_qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(WanVAEAttentionBlock);

// WanResample: "upsample2d" / "upsample3d" (nearest x2 in H/W, 3x3 conv to out channels;
// 3d first doubles the frames with time_conv [2C,C,3,1,1] after frame 0's chunk) and
// "downsample2d" / "downsample3d" (pad right/bottom by 1, 3x3 conv stride 2; 3d then halves the
// frames with a stride-2 time_conv over [last cached frame, chunk] after frame 0's chunk).
// Keys resample.1.{weight,bias} (a 2-D conv, run as a 1x3x3 3-D conv) and time_conv.*.
class WanVAEResampleImpl : public torch::nn::Module {
public:
  WanVAEResampleImpl(int64_t dim, const std::string& mode, int64_t upsample_out_dim);
  at::Tensor forward(const at::Tensor& x, WanFrameCache* cache);
  std::string mode;
  torch::nn::ModuleList resample;  // "0": parameterless (upsample / zero pad), "1": Conv2d
  torch::nn::Conv2d conv{nullptr};
  WanVAECausalConv3d time_conv{nullptr};
};
TORCH_MODULE(WanVAEResample);

// resnets.0 -> attentions.0 -> resnets.1.
class WanVAEMidBlockImpl : public torch::nn::Module {
public:
  explicit WanVAEMidBlockImpl(int64_t dim);
  at::Tensor forward(const at::Tensor& x, WanFrameCache* cache);
  torch::nn::ModuleList resnets, attentions;
  std::vector<WanVAEResidualBlock> resnet_list;
  WanVAEAttentionBlock attention{nullptr};
};
TORCH_MODULE(WanVAEMidBlock);

// num_res_blocks + 1 residual blocks, then upsamplers.0 (a Resample) unless it is the last level.
class WanVAEUpBlockImpl : public torch::nn::Module {
public:
  WanVAEUpBlockImpl(int64_t in, int64_t out, int64_t num_res_blocks, const std::string& upsample_mode);
  at::Tensor forward(const at::Tensor& x, WanFrameCache* cache);
  torch::nn::ModuleList resnets, upsamplers;
  std::vector<WanVAEResidualBlock> resnet_list;
  WanVAEResample upsampler{nullptr};
};
TORCH_MODULE(WanVAEUpBlock);

class WanVAEEncoderImpl : public torch::nn::Module {
public:
  explicit WanVAEEncoderImpl(const AutoencoderKLWanConfig& c);
  // One chunk: [B,in,T,H,W] -> [B,2*z_dim,T',H/f,W/f] (T' = 1 for frame 0's chunk, T/4 after).
  at::Tensor forward(const at::Tensor& x, WanFrameCache& cache);
  WanVAECausalConv3d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks;  // residual blocks and resamples, in order
  WanVAEMidBlock mid_block{nullptr};
  WanVAERMSNorm norm_out{nullptr};
};
TORCH_MODULE(WanVAEEncoder);

class WanVAEDecoderImpl : public torch::nn::Module {
public:
  explicit WanVAEDecoderImpl(const AutoencoderKLWanConfig& c);
  // One chunk: [B,z_dim,t,h,w] -> [B,out,T,h*f,w*f] (T = 1 for frame 0's chunk, 4t after).
  at::Tensor forward(const at::Tensor& z, WanFrameCache& cache);
  WanVAECausalConv3d conv_in{nullptr}, conv_out{nullptr};
  WanVAEMidBlock mid_block{nullptr};
  torch::nn::ModuleList up_blocks;
  std::vector<WanVAEUpBlock> blocks;
  WanVAERMSNorm norm_out{nullptr};
};
TORCH_MODULE(WanVAEDecoder);

class AutoencoderKLWanImpl : public torch::nn::Module {
public:
  explicit AutoencoderKLWanImpl(const AutoencoderKLWanConfig& config);

  // video [B,in_channels,T,H,W] in [-1,1], T = 1 + 4k, H and W multiples of spatial_factor()
  // -> mean, logvar [B,z_dim,1+k,H/f,W/f] (logvar clamped to [-30, 20]). UsageError for other
  // shapes (naming the nearest valid frame counts).
  LatentDistribution encode(const at::Tensor& video, const WanVAEChunking& chunking = {});
  // encoder -> quant_conv: [B,2*z_dim,1+k,H/f,W/f], before the split into mean and logvar.
  at::Tensor encode_moments(const at::Tensor& video, const WanVAEChunking& chunking = {});
  // z [B,z_dim,T',h,w] -> [B,out_channels,1+4(T'-1),h*f,w*f], clamped to [-1, 1] as diffusers does.
  at::Tensor decode(const at::Tensor& z, const WanVAEChunking& chunking = {});
  // The same before the clamp.
  at::Tensor decode_unclamped(const at::Tensor& z, const WanVAEChunking& chunking = {});
  // Training: encode_moments / decode_unclamped with gradients (the same chunked causal passes,
  // the same numbers; the chunks' outputs are concatenated instead of written into one buffer,
  // and no layer works in place). The inference calls above run without gradients.
  at::Tensor encode_moments_with_grad(const at::Tensor& video, const WanVAEChunking& chunking = {});
  at::Tensor decode_with_grad(const at::Tensor& z, const WanVAEChunking& chunking = {});

  // The config's per-channel latent statistics as [1,z_dim,1,1,1] float32 tensors (on the CPU),
  // for the pipelines' normalisation: latents = (mean - latents_mean) / latents_std.
  at::Tensor latents_mean() const;
  at::Tensor latents_std() const;

  // Video frames decoded from `latent_frames` latent frames, and the reverse (1 + 4k <-> 1 + k).
  int64_t video_frames(int64_t latent_frames) const { return 1 + config.temporal_factor() * (latent_frames - 1); }
  int64_t latent_frames(int64_t video_frames) const { return 1 + (video_frames - 1) / config.temporal_factor(); }

  AutoencoderKLWanConfig config;
  WanVAEEncoder encoder{nullptr};
  WanVAEDecoder decoder{nullptr};
  WanVAECausalConv3d quant_conv{nullptr}, post_quant_conv{nullptr};

private:
  at::Tensor run_encoder(const at::Tensor& video, const WanVAEChunking& chunking, bool with_grad);
  at::Tensor run_decoder(const at::Tensor& z, const WanVAEChunking& chunking, bool with_grad);
};
TORCH_MODULE(AutoencoderKLWan);

// A Wan 2.1 VAE in any published layout, weights cast to `dtype`, strict, in eval mode: a
// diffusers component folder (config.json + diffusion_pytorch_model.safetensors, sharded or
// .bin), or one weight file with the original names (the release's Wan2.1_VAE.pth, ComfyUI's
// vae/wan_2.1_vae.safetensors; wan_vae_original_keys.h), its config read off the shapes.
// `overrides` (AutoencoderKLWan config keys) are merged last. LoadError for config or weight
// problems, naming the file and the key.
AutoencoderKLWan load_autoencoder_kl_wan(const std::string& path, at::ScalarType dtype = at::kFloat,
                                         const nlohmann::json& overrides = nlohmann::json::object());

// Spatial tiling for frames too large for one decoder pass (diffusers' AutoencoderKLWan with
// enable_tiling()): tiles of tile_size pixels every `stride` pixels, each run through all frames
// with its own cache, blended linearly over the overlap (tile_size - stride) with the tiles above
// and to the left. Both in pixels, multiples of spatial_factor(), stride <= tile_size.
struct WanVAETiling {
  int64_t tile_size = 256;  // diffusers' tile_sample_min_height/width
  int64_t stride = 192;     // diffusers' tile_sample_stride_height/width
};

// Whether a frame of height x width pixels is larger than one tile (else the tiled functions
// run the plain encode/decode). UsageError for bad settings.
bool needs_tiling(const AutoencoderKLWan& vae, int64_t height, int64_t width, const WanVAETiling& tiling = {});
// As vae->decode (clamped) / decode_unclamped / encode, tile by tile. Holds one row of tile edges
// besides the output.
at::Tensor tiled_decode(AutoencoderKLWan& vae, const at::Tensor& z, const WanVAETiling& tiling = {},
                        const WanVAEChunking& chunking = {}, bool clamp = true);
LatentDistribution tiled_encode(AutoencoderKLWan& vae, const at::Tensor& video, const WanVAETiling& tiling = {},
                                const WanVAEChunking& chunking = {});

}  // namespace genvis::models
