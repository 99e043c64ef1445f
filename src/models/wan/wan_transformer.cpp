#include "models/wan/wan_transformer.h"
#include "core/shape.h"
#include "models/wan/spacetime_patches.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "io/weights.h"
#include "models/wan/wan_original_keys.h"
#include "nn/attention.h"
#include "nn/fused_rows.h"
#include "nn/state_dict.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <torch/nn/modules/dropout.h>

namespace genvis::models {
// ---- config ----

std::vector<std::string> WanTransformer3DConfig::validate() const {
  std::vector<std::string> problems;
  const auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) problems.push_back(std::string(name) + " must be positive (got " + std::to_string(v) + ")");
  };
  positive("num_attention_heads", num_attention_heads);
  positive("attention_head_dim", attention_head_dim);
  positive("in_channels", in_channels);
  positive("out_channels", out_channels);
  positive("text_dim", text_dim);
  positive("freq_dim", freq_dim);
  positive("ffn_dim", ffn_dim);
  positive("num_layers", num_layers);
  positive("rope_max_seq_len", rope_max_seq_len);
  if (patch_size.size() != 3)
    problems.push_back("patch_size must have 3 entries (frames, height, width), got " + std::to_string(patch_size.size()));
  for (int64_t p : patch_size)
    if (p < 1) problems.push_back("patch_size entries must be positive");
  if (attention_head_dim > 0 && (attention_head_dim % 2 != 0 || attention_head_dim < 6))
    problems.push_back("attention_head_dim must be even and >= 6 for the 3-axis rotary embedding (got " +
                       std::to_string(attention_head_dim) + ")");
  if (freq_dim % 2 != 0) problems.push_back("freq_dim must be even (got " + std::to_string(freq_dim) + ")");
  if (qk_norm != "rms_norm_across_heads")
    problems.push_back("qk_norm \"" + qk_norm + "\" is not supported (Wan uses \"rms_norm_across_heads\")");
  if (!(eps > 0)) problems.push_back("eps must be positive");
  if (image_dim.has_value() != added_kv_proj_dim.has_value())
    problems.push_back("image_dim and added_kv_proj_dim go together (image-to-video); give both or neither");
  if (added_kv_proj_dim && *added_kv_proj_dim != inner_dim())
    problems.push_back("added_kv_proj_dim must equal num_attention_heads * attention_head_dim = " +
                       std::to_string(inner_dim()) + " (got " + std::to_string(*added_kv_proj_dim) + ")");
  if (image_dim && *image_dim <= 0) problems.push_back("image_dim must be positive");
  return problems;
}

WanTransformer3DConfig WanTransformer3DConfig::from_json(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) throw LoadError(source, "Wan transformer config must be a JSON object");
  WanTransformer3DConfig c;
  config::Problems problems;
  config::check_keys(json, "", {},
                     {"patch_size", "num_attention_heads", "attention_head_dim", "in_channels", "out_channels",
                      "text_dim", "freq_dim", "ffn_dim", "num_layers", "cross_attn_norm", "qk_norm", "eps",
                      "image_dim", "added_kv_proj_dim", "rope_max_seq_len", "pos_embed_seq_len"},
                     problems);
  const auto read = [&](const char* key, auto& field) { config::read(json, "", key, field, problems); };
  read("patch_size", c.patch_size);
  read("num_attention_heads", c.num_attention_heads);
  read("attention_head_dim", c.attention_head_dim);
  read("in_channels", c.in_channels);
  read("out_channels", c.out_channels);
  read("text_dim", c.text_dim);
  read("freq_dim", c.freq_dim);
  read("ffn_dim", c.ffn_dim);
  read("num_layers", c.num_layers);
  read("cross_attn_norm", c.cross_attn_norm);
  read("qk_norm", c.qk_norm);
  read("eps", c.eps);
  read("image_dim", c.image_dim);
  read("added_kv_proj_dim", c.added_kv_proj_dim);
  read("rope_max_seq_len", c.rope_max_seq_len);
  std::optional<int64_t> pos_embed_seq_len;
  read("pos_embed_seq_len", pos_embed_seq_len);
  if (pos_embed_seq_len)
    problems.push_back("pos_embed_seq_len (Wan first-last-frame models) is not supported");
  if (json.contains("qk_norm") && json.at("qk_norm").is_null()) c.qk_norm = "none";
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) throw LoadError(source, "invalid Wan transformer config: " + config::describe(problems));
  return c;
}

WanTransformer3DConfig WanTransformer3DConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path), path);
}

// ---- modules ----

WanRMSNormImpl::WanRMSNormImpl(int64_t dim, double eps) : eps(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

at::Tensor WanRMSNormImpl::forward(const at::Tensor& x) { return nn::rms_norm(x, weight, eps); }

WanAttentionImpl::WanAttentionImpl(int64_t dim, int64_t heads, double eps, std::optional<int64_t> added_kv_proj_dim)
    : heads(heads) {
  to_q = register_module("to_q", torch::nn::Linear(dim, dim));
  to_k = register_module("to_k", torch::nn::Linear(dim, dim));
  to_v = register_module("to_v", torch::nn::Linear(dim, dim));
  to_out = register_module("to_out", torch::nn::ModuleList(torch::nn::Linear(dim, dim)));
  norm_q = register_module("norm_q", WanRMSNorm(dim, eps));
  norm_k = register_module("norm_k", WanRMSNorm(dim, eps));
  if (added_kv_proj_dim) {
    add_k_proj = register_module("add_k_proj", torch::nn::Linear(*added_kv_proj_dim, dim));
    add_v_proj = register_module("add_v_proj", torch::nn::Linear(*added_kv_proj_dim, dim));
    norm_added_k = register_module("norm_added_k", WanRMSNorm(dim, eps));
  }
}

at::Tensor WanAttentionImpl::forward(const at::Tensor& x, const at::Tensor& context, const at::Tensor& rope_cos,
                                     const at::Tensor& rope_sin, const at::Tensor& image) {
  const at::Tensor& kv = context.defined() ? context : x;
  at::Tensor q = norm_q(nn::linear(x, to_q)), k = norm_k(nn::linear(kv, to_k));
  const at::Tensor v = nn::linear(kv, to_v);
  if (rope_cos.defined()) {
    q = nn::rotary_pairs(q, rope_cos, rope_sin, heads);
    k = nn::rotary_pairs(k, rope_cos, rope_sin, heads);
  }
  at::Tensor out = nn::attention(q, k, v, heads);
  if (image.defined()) {
    if (!add_k_proj) throw UsageError("this attention has no image projections (a text-to-video model)");
    const at::Tensor k_img = norm_added_k(nn::linear(image, add_k_proj)), v_img = nn::linear(image, add_v_proj);
    out = out + nn::attention(q, k_img, v_img, heads);
  }
  return nn::linear(out, torch::nn::Linear(to_out->ptr<torch::nn::LinearImpl>(0)));  // (its LoRA / int8 forms too)
}

WanFeedForwardImpl::WanFeedForwardImpl(int64_t dim, int64_t inner, int64_t out_dim, bool tanh_gelu)
    : tanh_gelu(tanh_gelu) {
  auto gelu = std::make_shared<torch::nn::Module>();  // net.0 = GELU with its projection "proj"
  proj = gelu->register_module("proj", torch::nn::Linear(dim, inner));
  out = torch::nn::Linear(inner, out_dim);
  net = register_module("net", torch::nn::ModuleList(gelu, torch::nn::Dropout(0.0), out));
}

at::Tensor WanFeedForwardImpl::forward(const at::Tensor& x) {
  const at::Tensor h = nn::linear(x, proj);
  return nn::linear(tanh_gelu ? nn::gelu_tanh(h) : at::gelu(h), out);
}

WanTransformerBlockImpl::WanTransformerBlockImpl(const WanTransformer3DConfig& c) : eps(c.eps) {
  const int64_t dim = c.inner_dim();
  attn1 = register_module("attn1", WanAttention(dim, c.num_attention_heads, c.eps, std::nullopt));
  attn2 = register_module("attn2", WanAttention(dim, c.num_attention_heads, c.eps, c.added_kv_proj_dim));
  if (c.cross_attn_norm)
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(c.eps)));
  ffn = register_module("ffn", WanFeedForward(dim, c.ffn_dim, dim, true));
  scale_shift_table = register_parameter("scale_shift_table", torch::randn({1, 6, dim}) / std::sqrt(double(dim)));
}

at::Tensor WanTransformerBlockImpl::forward(const at::Tensor& x_in, const at::Tensor& context, const at::Tensor& image,
                                            const at::Tensor& modulation, const at::Tensor& rope_cos,
                                            const at::Tensor& rope_sin) {
  // shift, scale, gate (self-attention), then shift, scale, gate (feed-forward): [B,1,D] each.
  // Norms, modulation and gated residuals in float32 (FP32LayerNorm, the reference's float
  // modulation), stored in the model's dtype.
  const auto m = (scale_shift_table.to(at::kFloat) + modulation.to(at::kFloat)).chunk(6, 1);
  const auto dtype = x_in.scalar_type();
  at::Tensor x = x_in;
  // 1. self-attention
  at::Tensor h = nn::layer_norm_scale_shift(x, eps, 1 + m[1], m[0], dtype);
  x = nn::add_gated(x, attn1->forward(h, at::Tensor(), rope_cos, rope_sin), m[2]);
  // 2. cross-attention
  h = norm2 ? nn::layer_norm_scale_shift(x, norm2->options.eps(), norm2->weight, norm2->bias, dtype) : x;
  x = x + attn2->forward(h, context, at::Tensor(), at::Tensor(), image);
  // 3. feed-forward
  h = nn::layer_norm_scale_shift(x, eps, 1 + m[4], m[3], dtype);
  return nn::add_gated(x, ffn(h), m[5]);
}

WanTextProjectionImpl::WanTextProjectionImpl(int64_t in, int64_t dim) {
  linear_1 = register_module("linear_1", torch::nn::Linear(in, dim));
  linear_2 = register_module("linear_2", torch::nn::Linear(dim, dim));
}

at::Tensor WanTextProjectionImpl::forward(const at::Tensor& x) {
  return nn::linear(at::gelu(nn::linear(x, linear_1), "tanh"), linear_2);
}

WanImageEmbeddingImpl::WanImageEmbeddingImpl(int64_t in, int64_t dim) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({in}).eps(1e-5)));
  ff = register_module("ff", WanFeedForward(in, in, dim, false));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)));
}

at::Tensor WanImageEmbeddingImpl::forward(const at::Tensor& x) {
  // FP32LayerNorm: statistics and affine in float32, stored in x's dtype.
  const at::Tensor h = ff(nn::layer_norm_scale_shift(x, norm1->options.eps(), norm1->weight, norm1->bias, x.scalar_type()));
  return nn::layer_norm_scale_shift(h, norm2->options.eps(), norm2->weight, norm2->bias, x.scalar_type());
}

WanConditionEmbedderImpl::WanConditionEmbedderImpl(const WanTransformer3DConfig& c) : freq_dim(c.freq_dim) {
  const int64_t dim = c.inner_dim();
  time_embedder = register_module("time_embedder", nn::TimestepEmbedding(c.freq_dim, dim));
  time_proj = register_module("time_proj", torch::nn::Linear(dim, 6 * dim));
  text_embedder = register_module("text_embedder", WanTextProjection(c.text_dim, dim));
  if (c.image_dim) image_embedder = register_module("image_embedder", WanImageEmbedding(*c.image_dim, dim));
}

WanTransformer3DModelImpl::WanTransformer3DModelImpl(const WanTransformer3DConfig& c) : config(c) {
  if (const auto problems = c.validate(); !problems.empty())
    throw UsageError("invalid Wan transformer config: " + config::describe(problems));
  const int64_t dim = c.inner_dim();
  const auto& p = c.patch_size;
  patch_embedding = register_module(
      "patch_embedding",
      torch::nn::Conv3d(torch::nn::Conv3dOptions(c.in_channels, dim, {p[0], p[1], p[2]}).stride({p[0], p[1], p[2]})));
  condition_embedder = register_module("condition_embedder", WanConditionEmbedder(c));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) blocks->push_back(WanTransformerBlock(c));
  scale_shift_table = register_parameter("scale_shift_table", torch::randn({1, 2, dim}) / std::sqrt(double(dim)));
  proj_out = register_module("proj_out", torch::nn::Linear(dim, c.out_channels * p[0] * p[1] * p[2]));
}

std::pair<at::Tensor, at::Tensor> WanTransformer3DModelImpl::rotary(int64_t frames, int64_t height,
                                                                    int64_t width) const {
  // Head dims per axis: h = w = 2 * (D / 6), t = the rest; each axis rotates pairs at angles
  // position / 10000^(2i / axis_dim), in float64.
  const int64_t d = config.attention_head_dim, hw_dim = 2 * (d / 6), t_dim = d - 2 * hw_dim;
  const int64_t sizes[3] = {frames, height, width}, dims[3] = {t_dim, hw_dim, hw_dim};
  for (int64_t s : sizes)
    if (s > config.rope_max_seq_len)
      throw UsageError("latent has " + std::to_string(s) + " positions along an axis; the model's rotary table has " +
                       std::to_string(config.rope_max_seq_len));
  std::vector<at::Tensor> angles;
  for (int axis = 0; axis < 3; ++axis) {
    const auto opts = at::TensorOptions().dtype(at::kDouble);
    const at::Tensor inv = 1.0 / at::pow(10000.0, at::arange(0, dims[axis], 2, opts).slice(0, 0, dims[axis] / 2) /
                                                       static_cast<double>(dims[axis]));
    const at::Tensor a = at::outer(at::arange(sizes[axis], opts), inv);  // [size, dim/2]
    std::vector<int64_t> view = {1, 1, 1, a.size(1)};
    view[static_cast<size_t>(axis)] = sizes[axis];
    angles.push_back(a.view(view).expand({frames, height, width, a.size(1)}));
  }
  const at::Tensor all = at::cat(angles, -1).reshape({frames * height * width, d / 2});
  return {all.cos(), all.sin()};
}

at::Tensor WanTransformer3DModelImpl::forward(const at::Tensor& hidden_states, const at::Tensor& timestep,
                                              const at::Tensor& encoder_hidden_states, const at::Tensor& image,
                                              WanBlockCache* cache) {
  const auto& c = config;
  const auto& p = c.patch_size;
  if (hidden_states.dim() != 5 || hidden_states.size(1) != c.in_channels)
    throw UsageError("Wan transformer input must be [B," + std::to_string(c.in_channels) + ",F,H,W], got " +
                     shape_of(hidden_states));
  const int64_t B = hidden_states.size(0), F = hidden_states.size(2), H = hidden_states.size(3),
                W = hidden_states.size(4);
  if (F % p[0] || H % p[1] || W % p[2])
    throw UsageError("latent " + shape_of(hidden_states) + " is not divisible by the patch size [" +
                     std::to_string(p[0]) + "," + std::to_string(p[1]) + "," + std::to_string(p[2]) + "]");
  if (encoder_hidden_states.dim() != 3 || encoder_hidden_states.size(0) != B ||
      encoder_hidden_states.size(2) != c.text_dim)
    throw UsageError("text states must be [" + std::to_string(B) + ",L," + std::to_string(c.text_dim) + "], got " +
                     shape_of(encoder_hidden_states));
  if (c.is_i2v() != image.defined())
    throw UsageError(c.is_i2v() ? "this image-to-video transformer needs the image encoder's states"
                                : "this text-to-video transformer takes no image states");
  if (image.defined() && (image.dim() != 3 || image.size(0) != B || image.size(2) != *c.image_dim))
    throw UsageError("image states must be [" + std::to_string(B) + ",I," + std::to_string(*c.image_dim) +
                     "], got " + shape_of(image));
  const int64_t f = F / p[0], h = H / p[1], w = W / p[2], dim = c.inner_dim();
  const auto dtype = patch_embedding->weight.scalar_type();

  // 1. Patches and rotary tables.
  const auto [rope_cos, rope_sin] = rotary(f, h, w);
  at::Tensor x = patch_embedding(hidden_states.to(dtype)).flatten(2).transpose(1, 2);  // [B, f*h*w, D]

  // 2. Conditions: temb [B,D], modulation [B,6,D], text [B,L,D], image [B,I,D].
  at::Tensor t = timestep.reshape({-1}).to(at::kFloat);
  if (t.size(0) == 1 && B > 1) t = t.expand({B});
  if (t.size(0) != B) throw UsageError("timestep must have 1 or " + std::to_string(B) + " values");
  auto& ce = *condition_embedder;
  const at::Tensor temb = ce.time_embedder->forward(nn::timestep_embedding(t, ce.freq_dim, true, 0).to(
                                               ce.time_embedder->linear_1->weight.scalar_type()))
                              .to(dtype);
  const at::Tensor modulation = nn::linear(at::silu(temb), ce.time_proj).unflatten(1, {6, dim});
  const at::Tensor context = ce.text_embedder->forward(encoder_hidden_states.to(dtype));
  const at::Tensor image_context = image.defined() ? ce.image_embedder->forward(image.to(dtype)) : at::Tensor();

  // 3. Blocks (through the first-block cache when there is one).
  const auto run_block = [&](size_t i, const at::Tensor& in) {
    return blocks[i]->as<WanTransformerBlock>()->forward(in, context, image_context, modulation, rope_cos, rope_sin);
  };
  if (cache && cache->threshold > 0 && blocks->size() > 1) {
    const at::Tensor first = run_block(0, x);
    const at::Tensor residual = first - x;
    const bool same_shape = cache->first_residual.defined() && cache->first_residual.sizes() == residual.sizes();
    double change = 1;
    if (same_shape) {
      const at::Tensor ref = cache->first_residual.to(at::kFloat);
      change = ((residual.to(at::kFloat) - ref).abs().mean() / ref.abs().mean().clamp_min(1e-12)).item<double>();
    }
    if (same_shape && change < cache->threshold) {
      x = first + cache->rest_residual;
      ++cache->cached;
    } else {
      at::Tensor h = first;
      for (size_t i = 1; i < blocks->size(); ++i) h = run_block(i, h);
      cache->first_residual = residual;
      cache->rest_residual = h - first;
      x = h;
      ++cache->full;
    }
  } else {
    for (size_t i = 0; i < blocks->size(); ++i) x = run_block(i, x);
  }

  // 4. Output modulation, projection, unpatchify.
  const auto sc = (scale_shift_table.to(at::kFloat) + temb.to(at::kFloat).unsqueeze(1)).chunk(2, 1);  // shift, scale
  x = nn::layer_norm_scale_shift(x, c.eps, 1 + sc[1], sc[0], dtype);
  x = nn::linear(x, proj_out);                                                // [B, f*h*w, C*pt*ph*pw]
  return unpatchify(x, p, c.out_channels, F, H, W);
}

WanTransformer3DModel load_wan_transformer(const std::string& path, at::ScalarType dtype,
                                           const nlohmann::json& overrides) {
  const nn::KeyTable* table = nullptr;  // original names; diffusers names otherwise
  std::unique_ptr<io::WeightReader> weights;
  std::string prefix;
  nlohmann::json config_json, original_overrides = nlohmann::json::object();
  std::string config_source;
  std::optional<std::string> model_type;  // a Wan release's config.json's, checked against the weights
  if (std::filesystem::is_directory(path)) {
    config_source = path + "/config.json";
    const nlohmann::json j = config::read_file(config_source);
    if (j.is_object() && j.value("_class_name", "") == "WanModel") {
      const WanModelConfig wan = WanModelConfig::from_json(j, config_source);
      original_overrides = wan.transformer;
      model_type = wan.model_type;
      weights = io::open_weights(io::find_weight_file(
          path, {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json"},
          "Wan transformer"));
      table = &wan_transformer_original_keys();
      if (!wan_original_prefix(weights->tensors()).value_or("x").empty())
        throw LoadError(weights->path(), "blocks.0.self_attn.q.weight",
                        "missing: a WanModel folder's weights have the original key names");
    } else {
      config_json = j;
      weights = io::open_weights(io::find_diffusers_weights(path, "Wan transformer"));
    }
  } else {
    weights = io::open_weights(path);
    const auto found = wan_original_prefix(weights->tensors());
    if (!found) {
      const bool diffusers = weights->contains("blocks.0.attn1.to_q.weight");
      throw LoadError(path, diffusers ? "a diffusers-layout Wan transformer file: give its folder (with config.json)"
                                      : "not a Wan 2.1 transformer (looked for head.modulation and "
                                        "blocks.0.self_attn.q.weight, bare or under model.diffusion_model.)");
    }
    prefix = *found;
    table = &wan_transformer_original_keys();
    config_source = path;
  }
  WanTransformer3DConfig config;
  if (table) {
    original_overrides.merge_patch(overrides.is_object() ? overrides : nlohmann::json::object());
    config = WanTransformer3DConfig::from_json(
        infer_wan_transformer_config(weights->tensors(), prefix, original_overrides, weights->path()), config_source);
    if (model_type && (*model_type == "i2v") != config.is_i2v())
      throw LoadError(config_source, "model_type",
                      "is " + *model_type + " but " + weights->path() +
                          (config.is_i2v() ? " holds an image embedding (img_emb.*)" : " has no image embedding (img_emb.*)"));
  } else {
    if (overrides.is_object()) config_json.merge_patch(overrides);
    config = WanTransformer3DConfig::from_json(config_json, config_source);
  }
  WanTransformer3DModel model(config);
  nn::LoadOptions options{.dtype = dtype, .prefix = prefix};
  if (table) table->apply(options);
  nn::load_state_dict(*model, *weights, options);
  model->eval();
  return model;
}

}  // namespace genvis::models
