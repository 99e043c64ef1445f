// Analytic FLOP counts of the SD modules for the benchmarks (bench_sd, bench_ldm): 2*M*N*K per
// matmul; convolutions 2*Cout*Cin*k*k*Hout*Wout per sample; linears 2*rows*in*out; attention
// 4*N*T*inner per sample (QK^T and PV). Norms, activations, softmax, residual adds and upsampling
// are not counted (memory-bound, <1% of FLOPs). The walks mirror the module trees; `params`
// counts the conv and linear weights visited, to check a walk against a built model.
#pragma once
#include "models/autoencoder_kl/autoencoder_kl.h"
#include "models/clip_text/clip_text_model.h"
#include "models/unet2d_condition/unet2d_condition.h"

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

inline double matrix_params(const torch::nn::Module& m, const std::string& skip_prefix = "") {
  double n = 0;
  for (const auto& p : m.named_parameters())
    if (p.value().dim() >= 2 && (skip_prefix.empty() || p.key().rfind(skip_prefix, 0) != 0)) n += p.value().numel();
  return n;
}

}  // namespace genvis::bench
