#include "models/clip_text/clip_text_model.h"

#include "core/error.h"
#include "nn/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <torch/torch.h>

namespace genvis::models {
namespace {

torch::nn::LayerNorm layer_norm(const CLIPTextConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

}  // namespace

CLIPAttentionImpl::CLIPAttentionImpl(const CLIPTextConfig& c)
    : num_heads(c.num_attention_heads), head_dim(c.head_dim()) {
  q_proj = register_module("q_proj", torch::nn::Linear(c.hidden_size, c.hidden_size));
  k_proj = register_module("k_proj", torch::nn::Linear(c.hidden_size, c.hidden_size));
  v_proj = register_module("v_proj", torch::nn::Linear(c.hidden_size, c.hidden_size));
  out_proj = register_module("out_proj", torch::nn::Linear(c.hidden_size, c.hidden_size));
}

at::Tensor CLIPAttentionImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  const int64_t b = x.size(0), s = x.size(1);
  // [B, S, C] -> [B, heads, S, head_dim]
  auto heads = [&](const at::Tensor& t) { return t.view({b, s, num_heads, head_dim}).transpose(1, 2); };
  const at::Tensor q = heads(nn::linear(x, q_proj) * (1.0 / std::sqrt(static_cast<double>(head_dim))));
  const at::Tensor k = heads(nn::linear(x, k_proj));
  const at::Tensor v = heads(nn::linear(x, v_proj));
  const at::Tensor scores = torch::matmul(q, k.transpose(-1, -2));
  const at::Tensor weights = torch::softmax(mask.defined() ? scores + mask : scores, -1);
  const at::Tensor out = torch::matmul(weights, v).transpose(1, 2).reshape({b, s, num_heads * head_dim});
  return nn::linear(out, out_proj);
}

CLIPMLPImpl::CLIPMLPImpl(const CLIPTextConfig& c) : quick_gelu(c.hidden_act == "quick_gelu") {
  fc1 = register_module("fc1", torch::nn::Linear(c.hidden_size, c.intermediate_size));
  fc2 = register_module("fc2", torch::nn::Linear(c.intermediate_size, c.hidden_size));
}

at::Tensor CLIPMLPImpl::forward(const at::Tensor& x) {
  at::Tensor h = nn::linear(x, fc1);
  h = quick_gelu ? h * torch::sigmoid(1.702 * h) : torch::gelu(h);  // gelu: exact erf form
  return nn::linear(h, fc2);
}

CLIPEncoderLayerImpl::CLIPEncoderLayerImpl(const CLIPTextConfig& c) {
  self_attn = register_module("self_attn", CLIPAttention(c));
  layer_norm1 = register_module("layer_norm1", layer_norm(c));
  mlp = register_module("mlp", CLIPMLP(c));
  layer_norm2 = register_module("layer_norm2", layer_norm(c));
}

at::Tensor CLIPEncoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  at::Tensor h = x + self_attn(layer_norm1(x), mask);
  return h + mlp(layer_norm2(h));
}

CLIPTextEmbeddingsImpl::CLIPTextEmbeddingsImpl(const CLIPTextConfig& c) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  position_embedding =
      register_module("position_embedding", torch::nn::Embedding(c.max_position_embeddings, c.hidden_size));
}

at::Tensor CLIPTextEmbeddingsImpl::token_embeddings(const at::Tensor& input_ids) {
  const int64_t vocab = token_embedding->weight.size(0);
  const int64_t extra = extra_token_embeddings.defined() ? extra_token_embeddings.size(0) : 0;
  if (extra == 0) return token_embedding(input_ids);
  // Ids vocab .. vocab+extra-1 are the added vectors (textual inversion), the rest the table's.
  const at::Tensor added = input_ids >= vocab;
  if (input_ids.max().item<int64_t>() >= vocab + extra || input_ids.min().item<int64_t>() < 0)
    throw UsageError("CLIP text model: token id out of range (vocabulary " + std::to_string(vocab) + " + " +
                     std::to_string(extra) + " added embeddings)");
  const at::Tensor base = token_embedding(input_ids.clamp_max(vocab - 1));
  const at::Tensor rows = extra_token_embeddings.to(base.scalar_type())
                              .index_select(0, (input_ids - vocab).clamp_min(0).flatten())
                              .view(base.sizes());
  return at::where(added.unsqueeze(-1), rows, base);
}

at::Tensor CLIPTextEmbeddingsImpl::forward(const at::Tensor& input_ids) {
  const int64_t s = input_ids.size(1);
  const at::Tensor positions = torch::arange(s, input_ids.options().dtype(at::kLong));
  return token_embeddings(input_ids) + position_embedding(positions).unsqueeze(0);
}

CLIPEncoderImpl::CLIPEncoderImpl(const CLIPTextConfig& c) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(CLIPEncoderLayer(c));
}

CLIPTextTransformerImpl::CLIPTextTransformerImpl(const CLIPTextConfig& c) : config(c) {
  const auto problems = c.validate();
  if (!problems.empty()) {
    std::string what = "invalid CLIP text config: ";
    for (size_t i = 0; i < problems.size(); ++i) what += (i ? "; " : "") + problems[i];
    throw UsageError(what);
  }
  embeddings = register_module("embeddings", CLIPTextEmbeddings(c));
  encoder = register_module("encoder", CLIPEncoder(c));
  final_layer_norm = register_module("final_layer_norm", layer_norm(c));
}

at::Tensor CLIPTextTransformerImpl::eos_positions(const at::Tensor& input_ids) const {
  const int64_t s = input_ids.size(1);
  // Pitfall: argmax over ties is not specified to return the first index (SD1 pads with 49407),
  // so rank positions by a strictly decreasing weight instead.
  // Added embeddings (ids >= vocab_size) are never the pooled token.
  const at::Tensor ids = input_ids.masked_fill(input_ids >= config.vocab_size, 0);
  const at::Tensor target = config.eos_token_id == 2 ? std::get<0>(ids.max(-1, /*keepdim=*/true))
                                                     : torch::full({1}, config.eos_token_id, input_ids.options());
  const at::Tensor rank = torch::arange(s, 0, -1, input_ids.options().dtype(at::kLong));
  return (ids.eq(target).to(at::kLong) * rank).argmax(-1);
}

CLIPTextOutput CLIPTextTransformerImpl::forward(const at::Tensor& input_ids) {
  if (input_ids.dim() != 2 || input_ids.scalar_type() != at::kLong)
    throw UsageError("CLIP text model: input_ids must be int64 [B, S] (got " + std::string(c10::toString(input_ids.scalar_type())) +
                     " with " + std::to_string(input_ids.dim()) + " dims)");
  const int64_t s = input_ids.size(1);
  if (s > config.max_position_embeddings)
    throw UsageError("CLIP text model: sequence length " + std::to_string(s) + " exceeds max_position_embeddings " +
                     std::to_string(config.max_position_embeddings));

  CLIPTextOutput out;
  at::Tensor h = embeddings(input_ids);
  // [S, S] additive causal mask: token i attends to j <= i.
  const at::Tensor mask =
      torch::full({s, s}, -std::numeric_limits<float>::infinity(), h.options()).triu(1);
  out.hidden_states.reserve(encoder->layers->size() + 1);
  out.hidden_states.push_back(h);
  for (const auto& layer : *encoder->layers) {
    h = layer->as<CLIPEncoderLayer>()->forward(h, mask);
    out.hidden_states.push_back(h);
  }
  out.last_hidden_state = final_layer_norm(h);
  const at::Tensor batch = torch::arange(input_ids.size(0), input_ids.options().dtype(at::kLong));
  out.pooler_output = out.last_hidden_state.index({batch, eos_positions(input_ids).to(h.device())});
  return out;
}

CLIPTextModelImpl::CLIPTextModelImpl(const CLIPTextConfig& c) {
  text_model = register_module("text_model", CLIPTextTransformer(c));
}

CLIPTextOutput CLIPTextModelImpl::forward(const at::Tensor& input_ids) { return text_model(input_ids); }

CLIPTextModelWithProjectionImpl::CLIPTextModelWithProjectionImpl(const CLIPTextConfig& c) {
  text_model = register_module("text_model", CLIPTextTransformer(c));
  text_projection = register_module(
      "text_projection", torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, c.projection_dim).bias(false)));
}

CLIPTextOutput CLIPTextModelWithProjectionImpl::forward(const at::Tensor& input_ids) {
  CLIPTextOutput out = text_model(input_ids);
  out.text_embeds = text_projection(out.pooler_output);
  return out;
}

}  // namespace genvis::models

namespace genvis::models {

at::Tensor sd_prompt_embeds(CLIPTextTransformerImpl& text_model, const at::Tensor& input_ids, int clip_skip) {
  const int64_t layers = text_model.config.num_hidden_layers;
  if (clip_skip < 0 || clip_skip > layers)
    throw UsageError("clip_skip " + std::to_string(clip_skip) + " is outside [0, " + std::to_string(layers) + "]");
  CLIPTextOutput out = text_model.forward(input_ids);
  if (clip_skip == 0) return out.last_hidden_state;
  return text_model.final_layer_norm(out.hidden_states[out.hidden_states.size() - 1 - clip_skip]);
}

at::Tensor sd_prompt_embeds(CLIPTextModel& text_encoder, const at::Tensor& input_ids, int clip_skip) {
  return sd_prompt_embeds(*text_encoder->text_model, input_ids, clip_skip);
}

SDXLPromptEmbeds sdxl_prompt_embeds(CLIPTextModel& text_encoder, CLIPTextModelWithProjection& text_encoder_2,
                                    const at::Tensor& input_ids, const at::Tensor& input_ids_2, int clip_skip) {
  const int64_t layers = std::min(text_encoder->text_model->config.num_hidden_layers,
                                  text_encoder_2->text_model->config.num_hidden_layers);
  if (clip_skip < 0 || clip_skip + 1 > layers)
    throw UsageError("clip_skip " + std::to_string(clip_skip) + " is outside [0, " + std::to_string(layers - 1) + "]");
  const CLIPTextOutput l = text_encoder(input_ids);
  const CLIPTextOutput g = text_encoder_2(input_ids_2);
  const auto pick = [&](const CLIPTextOutput& o) { return o.hidden_states[o.hidden_states.size() - 2 - clip_skip]; };
  return {torch::cat({pick(l), pick(g)}, -1), g.text_embeds};
}

}  // namespace genvis::models
