#include "models/dalle/dalle_transformer.h"

#include "core/error.h"
#include "nn/attention.h"

#include <torch/torch.h>

namespace genvis::models {

DalleAttentionLayerImpl::DalleAttentionLayerImpl(int64_t hidden, int64_t h) : heads(h) {
  qkv = register_module("qkv", torch::nn::Linear(hidden, 3 * hidden));
  proj = register_module("proj", torch::nn::Linear(hidden, hidden));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> DalleAttentionLayerImpl::project(const at::Tensor& x) {
  const auto parts = nn::linear(x, qkv).chunk(3, -1);
  return {parts[0], parts[1], parts[2]};
}

DalleMLPImpl::DalleMLPImpl(int64_t hidden, int64_t inner) {
  fc = register_module("fc", torch::nn::Linear(hidden, inner));
  proj = register_module("proj", torch::nn::Linear(inner, hidden));
}

at::Tensor DalleMLPImpl::forward(const at::Tensor& x) { return nn::linear(at::gelu(nn::linear(x, fc)), proj); }

DalleBlockImpl::DalleBlockImpl(const DalleConfig& c, DalleAttention k) : kind(k) {
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size})));
  attn = register_module("attn", DalleAttentionLayer(c.hidden_size, c.num_heads));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size})));
  mlp = register_module("mlp", DalleMLP(c.hidden_size, c.mlp_ratio * c.hidden_size));
}

at::Tensor DalleBlockImpl::forward(const at::Tensor& x, const DalleLayout& layout, DalleLayerCache* cache) {
  auto [q, k, v] = attn->project(ln_1(x));
  if (cache) cache->k = k, cache->v = v;
  const at::Tensor a = dalle_sparse_attention(q, k, v, attn->heads, kind, layout);
  const at::Tensor h = x + nn::linear(a, attn->proj);
  return h + mlp(ln_2(h));
}

at::Tensor DalleBlockImpl::step(const at::Tensor& x, const DalleLayout& layout, DalleLayerCache& cache, int64_t i) {
  auto [q, k, v] = attn->project(ln_1(x));
  cache.k.narrow(1, i, 1).copy_(k);
  cache.v.narrow(1, i, 1).copy_(v);
  const at::Tensor a = dalle_query_attention(q, cache.k, cache.v, attn->heads, kind, layout, i);
  const at::Tensor h = x + nn::linear(a, attn->proj);
  return h + mlp(ln_2(h));
}

DalleTransformerImpl::DalleTransformerImpl(const DalleConfig& c) : config(c), layout(DalleLayout::of(c)) {
  if (auto problems = c.validate(); !problems.empty()) throw UsageError("invalid DALL·E config: " + problems.front());
  const int64_t C = c.hidden_size;
  text_embedding = register_module("text_embedding", torch::nn::Embedding(c.text_tokens(), C));
  text_position = register_module("text_position", torch::nn::Embedding(c.text_len, C));
  image_embedding = register_module("image_embedding", torch::nn::Embedding(c.image_vocab_size, C));
  image_row = register_module("image_row", torch::nn::Embedding(c.image_rows, C));
  image_column = register_module("image_column", torch::nn::Embedding(c.image_cols, C));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    blocks.push_back(DalleBlock(c, c.layer_attention(i)));
    layers->push_back(blocks.back());
  }
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
  text_head = register_module("text_head", torch::nn::Linear(C, c.text_tokens()));
  image_head = register_module("image_head", torch::nn::Linear(C, c.image_vocab_size));
  // GPT-2's initialisation: N(0, 0.02) weights, zero biases, residual projections scaled by
  // 1 / sqrt(2 num_layers).
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters()) {
    const std::string& name = p.key();
    if (name.find("ln_") != std::string::npos) continue;
    if (name.ends_with(".bias")) {
      p.value().zero_();
    } else {
      const bool residual = name.ends_with("attn.proj.weight") || name.ends_with("mlp.proj.weight");
      p.value().normal_(0, residual ? 0.02 / std::sqrt(2.0 * static_cast<double>(c.num_layers)) : 0.02);
    }
  }
}

at::Tensor DalleTransformerImpl::embed(const at::Tensor& text_ids, const at::Tensor& image_ids) {
  const int64_t T = config.text_len, N = config.image_len();
  if (text_ids.dim() != 2 || text_ids.size(1) != T)
    throw UsageError("DALL·E: text ids must be [B," + std::to_string(T) + "], got " + c10::str(text_ids.sizes()));
  if (image_ids.dim() != 2 || image_ids.size(1) != N || image_ids.size(0) != text_ids.size(0))
    throw UsageError("DALL·E: image ids must be [" + std::to_string(text_ids.size(0)) + "," + std::to_string(N) +
                     "], got " + c10::str(image_ids.sizes()));
  const auto device = text_embedding->weight.device();
  const at::Tensor text = text_embedding(text_ids.to(device)) + text_position->weight.unsqueeze(0);
  const at::Tensor p = at::arange(N, at::TensorOptions().dtype(at::kLong).device(device));
  const at::Tensor pos = image_row(p.div(config.image_cols, "floor")) + image_column(p.remainder(config.image_cols));
  const at::Tensor image = image_embedding(image_ids.to(device)) + pos.unsqueeze(0);
  return at::cat({text, image}, 1);
}

at::Tensor DalleTransformerImpl::embed_image_token(const at::Tensor& ids, int64_t n) {
  const auto device = image_embedding->weight.device();
  const at::Tensor pos = image_row->weight[n / config.image_cols] + image_column->weight[n % config.image_cols];
  return (image_embedding(ids.to(device)) + pos).unsqueeze(1);
}

at::Tensor DalleTransformerImpl::forward(const at::Tensor& text_ids, const at::Tensor& image_ids, DalleCache* cache) {
  at::Tensor x = embed(text_ids, image_ids);
  if (cache) cache->layers.assign(blocks.size(), {});
  for (size_t i = 0; i < blocks.size(); ++i) x = blocks[i]->forward(x, layout, cache ? &cache->layers[i] : nullptr);
  return ln_f(x);
}

DalleLoss DalleTransformerImpl::loss(const at::Tensor& text_ids, const at::Tensor& image_ids, double image_weight) {
  const int64_t T = config.text_len, N = config.image_len();
  const at::Tensor h = forward(text_ids, image_ids);
  const auto device = h.device();
  DalleLoss l;
  if (T > 1) {
    const at::Tensor logits = nn::linear(h.narrow(1, 0, T - 1), text_head).to(at::kFloat);
    l.text_loss = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}),
                                         text_ids.narrow(1, 1, T - 1).to(device).reshape({-1}));
  } else {
    l.text_loss = at::zeros({}, h.options().dtype(at::kFloat));
  }
  const at::Tensor logits = nn::linear(h.narrow(1, T - 1, N), image_head).to(at::kFloat);
  l.image_loss = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), image_ids.to(device).reshape({-1}));
  l.loss = l.text_loss * (1 - image_weight) + l.image_loss * image_weight;
  return l;
}

std::pair<DalleCache, at::Tensor> DalleTransformerImpl::prefill(const at::Tensor& text_ids, const at::Tensor& image_ids,
                                                                int64_t known) {
  if (known < 0 || known >= config.image_len())
    throw UsageError("DALL·E: the known image tokens must be 0.." + std::to_string(config.image_len() - 1));
  torch::NoGradGuard no_grad;
  DalleCache cache;
  const at::Tensor h = forward(text_ids, image_ids, &cache);
  cache.length = config.text_len + known;
  const at::Tensor last = h.select(1, config.text_len - 1 + known);
  return {std::move(cache), nn::linear(last, image_head)};
}

at::Tensor DalleTransformerImpl::step(DalleCache& cache, const at::Tensor& image_token, int64_t n) {
  const int64_t i = config.text_len + n;
  if (n < 0 || n + 1 >= config.image_len() || cache.length != i || cache.layers.size() != blocks.size())
    throw UsageError("DALL·E: step " + std::to_string(n) + " does not follow the cache (" +
                     std::to_string(cache.length) + " positions)");
  torch::NoGradGuard no_grad;
  at::Tensor x = embed_image_token(image_token, n);
  for (size_t l = 0; l < blocks.size(); ++l) x = blocks[l]->step(x, layout, cache.layers[l], i);
  cache.length = i + 1;
  return nn::linear(ln_f(x).select(1, 0), image_head);
}

at::Tensor dalle_text_ids(const std::vector<std::vector<int64_t>>& tokens, const DalleConfig& c) {
  at::Tensor ids = at::empty({static_cast<int64_t>(tokens.size()), c.text_len}, at::kLong);
  auto a = ids.accessor<int64_t, 2>();
  for (size_t b = 0; b < tokens.size(); ++b)
    for (int64_t p = 0; p < c.text_len; ++p) {
      if (p < static_cast<int64_t>(tokens[b].size())) {
        const int64_t id = tokens[b][static_cast<size_t>(p)];
        if (id < 0 || id >= c.text_vocab_size)
          throw UsageError("DALL·E: text token " + std::to_string(id) + " is outside the vocabulary of " +
                           std::to_string(c.text_vocab_size));
        a[static_cast<int64_t>(b)][p] = id;
      } else {
        a[static_cast<int64_t>(b)][p] = c.pad_token(p);
      }
    }
  return ids;
}

}  // namespace genvis::models
