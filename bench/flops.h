// Analytic FLOP counts of the SD and Wan modules for the benchmarks (bench_sd, bench_ldm,
// bench_wan): 2*M*N*K per matmul; convolutions 2*Cout*Cin*k*k*Hout*Wout per sample; linears
// 2*rows*in*out; attention 4*N*T*inner per sample (QK^T and PV). Norms, activations, softmax,
// residual adds and upsampling are not counted (memory-bound, <1% of FLOPs). The walks mirror the
// module trees; `params` counts the conv and linear weights visited, to check a walk against a
// built model.
#pragma once
#include "models/autoencoder_kl/autoencoder_kl.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "models/clip_text/clip_text_model.h"
#include "models/unet2d_condition/unet2d_condition.h"
#include "models/wan/wan_transformer.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::bench {

using models::AutoencoderKLConfig;
using models::CLIPTextConfig;
using models::UNet2DConditionConfig;


struct Flops {
  int64_t batch = 1;
  double conv = 0, linear = 0, attention = 0;
  double params = 0;  // conv + linear weights visited

  void conv2d(int64_t cin, int64_t cout, int64_t k, int64_t oh, int64_t ow) {
    conv += 2.0 * batch * cout * cin * k * k * oh * ow;
    params += static_cast<double>(cout) * cin * k * k;
  }
  void dense(int64_t rows, int64_t in, int64_t out) {  // rows counted over the whole batch
    linear += 2.0 * rows * in * out;
    params += static_cast<double>(in) * out;
  }
  // Any convolution: `outputs` output positions (frames x rows x columns, all samples), each a
  // dot product of cin x kernel_volume inputs per output channel.
  void conv_any(int64_t cin, int64_t cout, int64_t kernel_volume, double outputs) {
    conv += 2.0 * cout * cin * kernel_volume * outputs;
    params += static_cast<double>(cout) * cin * kernel_volume;
  }
  void attend(int64_t n, int64_t t, int64_t inner) { attention += 4.0 * batch * n * t * inner; }
  double total() const { return conv + linear + attention; }
  nlohmann::json to_json() const {
    return {{"gflop", total() / 1e9}, {"conv_gflop", conv / 1e9}, {"linear_gflop", linear / 1e9},
            {"attention_gflop", attention / 1e9}, {"flop_walk_params", params}};
  }
};

// One diffusers Attention: q from n tokens of width `dim`, k/v from t tokens of width kv_dim.
inline void attention_flops(Flops& f, int64_t n, int64_t t, int64_t dim, int64_t kv_dim, int64_t inner) {
  const int64_t b = f.batch;
  f.dense(b * n, dim, inner);
  f.dense(b * t, kv_dim, inner);
  f.dense(b * t, kv_dim, inner);
  f.attend(n, t, inner);
  f.dense(b * n, inner, dim);
}

inline void resnet_flops(Flops& f, int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t temb) {
  f.conv2d(cin, cout, 3, h, w);
  if (temb > 0) f.dense(f.batch, temb, cout);
  f.conv2d(cout, cout, 3, h, w);
  if (cin != cout) f.conv2d(cin, cout, 1, h, w);
}

inline void transformer_flops(Flops& f, const UNet2DConditionConfig& c, int64_t ch, int64_t layers, int64_t cross, int64_t h,
                       int64_t w, int64_t tokens) {
  const int64_t n = h * w, b = f.batch;
  const auto proj = [&] {
    if (c.use_linear_projection) f.dense(b * n, ch, ch);
    else f.conv2d(ch, ch, 1, h, w);
  };
  proj();
  for (int64_t l = 0; l < layers; ++l) {
    attention_flops(f, n, n, ch, ch, ch);            // attn1
    attention_flops(f, n, tokens, ch, cross, ch);    // attn2
    f.dense(b * n, ch, 8 * ch);                      // ff GEGLU proj (2 x 4*ch)
    f.dense(b * n, 4 * ch, ch);                      // ff out
  }
  proj();
}

inline Flops unet_flops(const UNet2DConditionConfig& c, int64_t batch, int64_t h, int64_t w, int64_t tokens) {
  Flops f;
  f.batch = batch;
  const auto& ch = c.block_out_channels;
  const size_t n = ch.size();
  const auto layers = c.layers_per_block_list();
  const auto cross = c.cross_attention_dim_list();
  const auto tlayers = c.transformer_layers_list();
  const int64_t temb = c.time_embed_dim();
  f.dense(batch, ch[0], temb);
  f.dense(batch, temb, temb);
  f.conv2d(c.in_channels, ch[0], c.conv_in_kernel, h, w);

  struct Skip {
    int64_t channels, h, w;
  };
  std::vector<Skip> skips{{ch[0], h, w}};
  int64_t out = ch[0];
  for (size_t i = 0; i < n; ++i) {
    const bool attn = c.down_block_types[i] == "CrossAttnDownBlock2D";
    for (int64_t j = 0; j < layers[i]; ++j) {
      resnet_flops(f, j == 0 ? out : ch[i], ch[i], h, w, temb);
      if (attn) transformer_flops(f, c, ch[i], tlayers[i], cross[i], h, w, tokens);
      skips.push_back({ch[i], h, w});
    }
    out = ch[i];
    if (i + 1 < n) {
      h = (h + 2 * c.downsample_padding - 3) / 2 + 1;
      w = (w + 2 * c.downsample_padding - 3) / 2 + 1;
      f.conv2d(out, out, 3, h, w);
      skips.push_back({out, h, w});
    }
  }
  if (c.mid_block_type) {
    resnet_flops(f, ch.back(), ch.back(), h, w, temb);
    transformer_flops(f, c, ch.back(), tlayers.back(), cross.back(), h, w, tokens);
    resnet_flops(f, ch.back(), ch.back(), h, w, temb);
  }
  out = ch.back();
  for (size_t i = 0; i < n; ++i) {
    const size_t r = n - 1 - i;
    const bool attn = c.up_block_types[i] == "CrossAttnUpBlock2D";
    for (int64_t j = 0; j < layers[r] + 1; ++j) {
      const Skip s = skips.back();
      skips.pop_back();
      resnet_flops(f, (j == 0 ? out : ch[r]) + s.channels, ch[r], h, w, temb);
      if (attn) transformer_flops(f, c, ch[r], tlayers[r], cross[r], h, w, tokens);
    }
    out = ch[r];
    if (i + 1 < n) {
      h = skips.back().h, w = skips.back().w;
      f.conv2d(out, out, 3, h, w);
    }
  }
  f.conv2d(ch[0], c.out_channels, c.conv_out_kernel, h, w);
  return f;
}

// post_quant_conv + decoder, batch 1, latent h x w.
inline Flops vae_decode_flops(const AutoencoderKLConfig& c, int64_t h, int64_t w) {
  Flops f;
  const std::vector<int64_t> rev(c.block_out_channels.rbegin(), c.block_out_channels.rend());
  if (c.use_post_quant_conv) f.conv2d(c.latent_channels, c.latent_channels, 1, h, w);
  f.conv2d(c.latent_channels, rev[0], 3, h, w);
  resnet_flops(f, rev[0], rev[0], h, w, 0);
  if (c.mid_block_add_attention) attention_flops(f, h * w, h * w, rev[0], rev[0], rev[0]);
  resnet_flops(f, rev[0], rev[0], h, w, 0);
  int64_t out = rev[0];
  for (size_t i = 0; i < rev.size(); ++i) {
    for (int64_t j = 0; j < c.layers_per_block + 1; ++j) resnet_flops(f, j == 0 ? out : rev[i], rev[i], h, w, 0);
    out = rev[i];
    if (i + 1 < rev.size()) {
      h *= 2, w *= 2;
      f.conv2d(out, out, 3, h, w);
    }
  }
  f.conv2d(out, c.out_channels, 3, h, w);
  return f;
}

inline Flops clip_flops(const CLIPTextConfig& c, int64_t batch, int64_t tokens) {
  Flops f;
  f.batch = batch;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    attention_flops(f, tokens, tokens, c.hidden_size, c.hidden_size, c.hidden_size);
    f.dense(batch * tokens, c.hidden_size, c.intermediate_size);
    f.dense(batch * tokens, c.intermediate_size, c.hidden_size);
  }
  return f;
}

// One Wan transformer forward, batch 1: `tokens` = f*h*w patches, text_len text tokens, image_len
// CLIP image tokens (I2V; 0 for text-to-video). The patch embedding (a Conv3d with kernel =
// stride) is a linear over each patch.
inline Flops wan_transformer_flops(const models::WanTransformer3DConfig& c, int64_t tokens, int64_t text_len,
                                   int64_t image_len = 0) {
  Flops f;
  const int64_t d = c.inner_dim(), patch = c.patch_size[0] * c.patch_size[1] * c.patch_size[2];
  f.dense(tokens, c.in_channels * patch, d);  // patch_embedding
  f.dense(1, c.freq_dim, d);                  // time_embedder
  f.dense(1, d, d);
  f.dense(1, d, 6 * d);                       // time_proj
  f.dense(text_len, c.text_dim, d);           // text_embedder
  f.dense(text_len, d, d);
  if (c.image_dim) {                          // image_embedder (its weights are visited even without tokens)
    f.dense(image_len, *c.image_dim, *c.image_dim);
    f.dense(image_len, *c.image_dim, d);
  }
  for (int64_t l = 0; l < c.num_layers; ++l) {
    attention_flops(f, tokens, tokens, d, d, d);    // attn1: self-attention over every spacetime token
    attention_flops(f, tokens, text_len, d, d, d);  // attn2: cross-attention to the text
    if (c.added_kv_proj_dim) {                      // attn2 (I2V): add_k_proj, add_v_proj, attention to the image
      f.dense(image_len, d, d);
      f.dense(image_len, d, d);
      f.attend(tokens, image_len, d);
    }
    f.dense(tokens, d, c.ffn_dim);  // ffn
    f.dense(tokens, c.ffn_dim, d);
  }
  f.dense(tokens, d, c.out_channels * patch);  // proj_out
  return f;
}

// Wan VAE (AutoencoderKLWan), batch 1. Each causal convolution computes every frame of its input
// once, whatever the chunking. Time: the decoder's upsample3d turns T frames into 1 + 2(T-1)
// (its time_conv, 2C out, runs on the T-1 frames after frame 0); the encoder's downsample3d turns
// T frames into 1 + (T-1)/2 (its stride-2 time_conv makes the (T-1)/2 frames after frame 0). The
// mid block's attention is per frame over h*w positions.
namespace wan_vae {
inline void resnet(Flops& f, int64_t cin, int64_t cout, double positions) {
  f.conv_any(cin, cout, 27, positions);
  f.conv_any(cout, cout, 27, positions);
  if (cin != cout) f.conv_any(cin, cout, 1, positions);
}
inline void mid(Flops& f, int64_t d, int64_t t, int64_t h, int64_t w) {
  const double pos = static_cast<double>(t) * h * w;
  resnet(f, d, d, pos);
  f.conv_any(d, 3 * d, 1, pos);  // to_qkv
  f.attention += 4.0 * t * (h * w) * (h * w) * d;
  f.conv_any(d, d, 1, pos);  // proj
  resnet(f, d, d, pos);
}
}  // namespace wan_vae

// post_quant_conv + decoder for latents [1, z_dim, t, h, w].
inline Flops wan_vae_decode_flops(const models::AutoencoderKLWanConfig& c, int64_t t, int64_t h, int64_t w) {
  Flops f;
  const int64_t base = c.decoder_base_dim.value_or(c.base_dim);
  const size_t levels = c.dim_mult.size();
  std::vector<int64_t> dims = {base * c.dim_mult.back()};
  for (size_t i = levels; i-- > 0;) dims.push_back(base * c.dim_mult[i]);
  const auto pos = [&] { return static_cast<double>(t) * h * w; };
  f.conv_any(c.z_dim, c.z_dim, 1, pos());  // post_quant_conv
  f.conv_any(c.z_dim, dims[0], 27, pos());  // conv_in
  wan_vae::mid(f, dims[0], t, h, w);
  for (size_t i = 0; i < levels; ++i) {
    const int64_t in = i == 0 ? dims[i] : dims[i] / 2, out = dims[i + 1];
    for (int64_t r = 0; r <= c.num_res_blocks; ++r) wan_vae::resnet(f, r == 0 ? in : out, out, pos());
    if (i + 1 < levels) {
      if (c.temperal_downsample[levels - 2 - i]) {
        f.conv_any(out, 2 * out, 3, static_cast<double>(t - 1) * h * w);  // time_conv
        t = 1 + 2 * (t - 1);
      }
      h *= 2, w *= 2;
      f.conv_any(out, out / 2, 9, pos());  // the 3x3 conv after the nearest upsampling
    }
  }
  f.conv_any(dims.back(), c.out_channels, 27, pos());  // conv_out
  return f;
}

// encoder + quant_conv for a video [1, in_channels, t, h, w].
inline Flops wan_vae_encode_flops(const models::AutoencoderKLWanConfig& c, int64_t t, int64_t h, int64_t w) {
  Flops f;
  const auto pos = [&] { return static_cast<double>(t) * h * w; };
  f.conv_any(c.in_channels, c.base_dim, 27, pos());  // conv_in
  int64_t dim = c.base_dim;
  for (size_t level = 0; level < c.dim_mult.size(); ++level) {
    const int64_t out = c.base_dim * c.dim_mult[level];
    for (int64_t i = 0; i < c.num_res_blocks; ++i, dim = out) wan_vae::resnet(f, dim, out, pos());
    if (level + 1 < c.dim_mult.size()) {
      h /= 2, w /= 2;
      f.conv_any(dim, dim, 9, pos());  // 3x3, stride 2
      if (c.temperal_downsample[level]) {
        f.conv_any(dim, dim, 3, static_cast<double>((t - 1) / 2) * h * w);  // stride-2 time_conv
        t = 1 + (t - 1) / 2;
      }
    }
  }
  wan_vae::mid(f, dim, t, h, w);
  f.conv_any(dim, 2 * c.z_dim, 27, pos());      // conv_out
  f.conv_any(2 * c.z_dim, 2 * c.z_dim, 1, pos());  // quant_conv
  return f;
}

inline double matrix_params(const torch::nn::Module& m, const std::string& skip_prefix = "") {
  double n = 0;
  for (const auto& p : m.named_parameters())
    if (p.value().dim() >= 2 && (skip_prefix.empty() || p.key().rfind(skip_prefix, 0) != 0)) n += p.value().numel();
  return n;
}

}  // namespace genvis::bench
