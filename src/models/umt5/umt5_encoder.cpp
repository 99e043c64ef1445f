#include "models/umt5/umt5_encoder.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "io/weights.h"
#include "models/transformers_config_keys.h"
#include "models/umt5/umt5_original_keys.h"
#include "nn/attention.h"
#include "nn/state_dict.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <numbers>
#include <nlohmann/json.hpp>
#include <sstream>
#include <torch/torch.h>

namespace genvis::models {
namespace {

constexpr const char* kGatedPrefix = "gated-";

torch::nn::Linear linear(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

// transformers' NewGELUActivation, op for op: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
at::Tensor gelu_new(const at::Tensor& x) {
  const double c = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + torch::tanh(c * (x + 0.044715 * torch::pow(x, 3.0))));
}

}  // namespace

// ---------------------------------------------------------------- config

std::string UMT5Config::dense_act_fn() const {
  if (feed_forward_proj == "gated-gelu") return "gelu_new";
  return feed_forward_proj.rfind(kGatedPrefix, 0) == 0 ? feed_forward_proj.substr(6) : feed_forward_proj;
}

std::vector<std::string> UMT5Config::validate() const {
  std::vector<std::string> problems;
  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) problems.push_back(std::string(name) + " must be positive (got " + std::to_string(v) + ")");
  };
  positive("vocab_size", vocab_size);
  positive("d_model", d_model);
  positive("d_kv", d_kv);
  positive("d_ff", d_ff);
  positive("num_layers", num_layers);
  positive("num_heads", num_heads);
  // Bidirectional buckets: half per direction, half of those exact (so at least 4), and the
  // logarithmic ones need max_distance beyond the exact range.
  if (relative_attention_num_buckets < 4)
    problems.push_back("relative_attention_num_buckets must be at least 4 (got " +
                       std::to_string(relative_attention_num_buckets) + ")");
  else if (relative_attention_max_distance <= relative_attention_num_buckets / 4)
    problems.push_back("relative_attention_max_distance " + std::to_string(relative_attention_max_distance) +
                       " must exceed relative_attention_num_buckets / 4 = " +
                       std::to_string(relative_attention_num_buckets / 4));
  if (!(layer_norm_epsilon > 0)) {
    std::ostringstream s;
    s << "layer_norm_epsilon must be positive (got " << layer_norm_epsilon << ")";
    problems.push_back(s.str());
  }
  const std::string act = dense_act_fn();
  if (feed_forward_proj.rfind(kGatedPrefix, 0) != 0 || (act != "gelu_new" && act != "relu" && act != "silu"))
    problems.push_back("unsupported feed_forward_proj \"" + feed_forward_proj +
                       "\" (this UMT5 encoder has the gated feed-forward: gated-gelu, gated-relu or gated-silu)");
  for (const auto& a : architectures)
    if (a.rfind("UMT5", 0) != 0) problems.push_back("architectures: \"" + a + "\" is not a UMT5 model");
  return problems;
}

UMT5Config UMT5Config::from_json(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) throw LoadError(source, "UMT5 config must be a JSON object");
  // "dense_act_fn" and "is_gated_act" are derived from feed_forward_proj; "scalable_attention" and
  // "output_past" (google/umt5-* configs, from T5X) are not read by transformers either.
  static const std::set<std::string> kKeys = with_transformers_common_keys(
      {"vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads",
       "relative_attention_num_buckets", "relative_attention_max_distance", "dropout_rate", "classifier_dropout",
       "layer_norm_epsilon", "initializer_factor", "feed_forward_proj", "dense_act_fn", "is_gated_act",
       "scalable_attention", "output_past"});
  UMT5Config c;
  config::Problems problems;
  config::check_keys(json, "", {}, kKeys, problems);
  const auto read = [&](const char* key, auto& field) { config::read(json, "", key, field, problems); };
  read("architectures", c.architectures);
  read("vocab_size", c.vocab_size);
  read("d_model", c.d_model);
  read("d_kv", c.d_kv);
  read("d_ff", c.d_ff);
  read("num_layers", c.num_layers);
  read("num_decoder_layers", c.num_decoder_layers);
  read("num_heads", c.num_heads);
  read("relative_attention_num_buckets", c.relative_attention_num_buckets);
  read("relative_attention_max_distance", c.relative_attention_max_distance);
  read("dropout_rate", c.dropout_rate);
  read("classifier_dropout", c.classifier_dropout);
  read("layer_norm_epsilon", c.layer_norm_epsilon);
  read("initializer_factor", c.initializer_factor);
  read("feed_forward_proj", c.feed_forward_proj);
  read("pad_token_id", c.pad_token_id);
  read("eos_token_id", c.eos_token_id);
  read("decoder_start_token_id", c.decoder_start_token_id);
  std::string dense_act_fn, model_type;
  bool flag = false;
  read("dense_act_fn", dense_act_fn);
  read("is_gated_act", flag);
  read("scalable_attention", flag);
  read("output_past", flag);
  read("model_type", model_type);
  if (!model_type.empty() && model_type != "umt5")
    problems.push_back("model_type \"" + model_type + "\" is not umt5 (a T5/mT5 encoder shares block 0's position bias)");
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) throw LoadError(source, "invalid UMT5 config: " + config::describe(problems));
  return c;
}

UMT5Config UMT5Config::from_file(const std::string& path) {
  return from_json(config::read_file(path, config::kMaxModelConfigBytes), path);
}

// ---------------------------------------------------------------- modules

UMT5LayerNormImpl::UMT5LayerNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

at::Tensor UMT5LayerNormImpl::forward(const at::Tensor& x) {
  const at::Tensor variance = x.to(at::kFloat).pow(2).mean(-1, /*keepdim=*/true);
  at::Tensor h = x * torch::rsqrt(variance + eps);  // f32 (promoted)
  if (weight.scalar_type() == at::kHalf || weight.scalar_type() == at::kBFloat16) h = h.to(weight.scalar_type());
  return weight * h;
}

UMT5AttentionImpl::UMT5AttentionImpl(const UMT5Config& c)
    : num_heads(c.num_heads), d_kv(c.d_kv), num_buckets(c.relative_attention_num_buckets),
      max_distance(c.relative_attention_max_distance) {
  q = register_module("q", linear(c.d_model, c.inner_dim()));
  k = register_module("k", linear(c.d_model, c.inner_dim()));
  v = register_module("v", linear(c.d_model, c.inner_dim()));
  o = register_module("o", linear(c.inner_dim(), c.d_model));
  relative_attention_bias =
      register_module("relative_attention_bias", torch::nn::Embedding(c.relative_attention_num_buckets, c.num_heads));
}

at::Tensor UMT5AttentionImpl::compute_bias(int64_t query_length, int64_t key_length) {
  const auto device = relative_attention_bias->weight.device();
  const auto longs = torch::TensorOptions().dtype(at::kLong).device(device);
  // relative_position[i, j] = j - i: the key's offset from the query.
  const at::Tensor relative = torch::arange(key_length, longs).unsqueeze(0) - torch::arange(query_length, longs).unsqueeze(1);
  // Bidirectional buckets: keys after the query use the upper half. Within a half, offsets below
  // max_exact are their own bucket, larger ones share logarithmic buckets up to max_distance
  // (log in f32, truncated toward zero, clamped to the half's last bucket).
  const int64_t half = num_buckets / 2, max_exact = half / 2;
  const at::Tensor upper = (relative > 0).to(at::kLong) * half;
  const at::Tensor distance = relative.abs();
  const at::Tensor log_ratio = torch::log(distance.to(at::kFloat) / static_cast<double>(max_exact)) /
                               std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                               static_cast<double>(half - max_exact);
  const at::Tensor if_large = torch::clamp_max(max_exact + log_ratio.to(at::kLong), half - 1);
  const at::Tensor buckets = upper + torch::where(distance < max_exact, distance, if_large);
  // [S_q, S_k, heads] -> [1, heads, S_q, S_k]
  return relative_attention_bias(buckets).permute({2, 0, 1}).unsqueeze(0);
}

at::Tensor UMT5AttentionImpl::forward(const at::Tensor& x, const at::Tensor& mask_bias) {
  const int64_t s = x.size(1);
  // Position bias [1, H, S, S] plus the padding mask [B, 1, 1, S], added in f32 to the scores.
  at::Tensor bias = compute_bias(s, s).to(at::kFloat);
  if (mask_bias.defined()) bias = bias + mask_bias.to(at::kFloat);
  // No 1/sqrt(d_kv): T5 folds it into the initialisation. [B, S, H*D] in and out.
  const at::Tensor out = nn::attention(nn::linear(x, q), nn::linear(x, k), nn::linear(x, v), num_heads, 1.0, bias);
  return nn::linear(out, o);
}

UMT5LayerSelfAttentionImpl::UMT5LayerSelfAttentionImpl(const UMT5Config& c) {
  SelfAttention = register_module("SelfAttention", UMT5Attention(c));
  layer_norm = register_module("layer_norm", UMT5LayerNorm(c.d_model, c.layer_norm_epsilon));
}

at::Tensor UMT5LayerSelfAttentionImpl::forward(const at::Tensor& x, const at::Tensor& mask_bias) {
  return x + SelfAttention(layer_norm(x), mask_bias);
}

UMT5DenseGatedActDenseImpl::UMT5DenseGatedActDenseImpl(const UMT5Config& c) : act(c.dense_act_fn()) {
  wi_0 = register_module("wi_0", linear(c.d_model, c.d_ff));
  wi_1 = register_module("wi_1", linear(c.d_model, c.d_ff));
  wo = register_module("wo", linear(c.d_ff, c.d_model));
}

at::Tensor UMT5DenseGatedActDenseImpl::forward(const at::Tensor& x) {
  const at::Tensor gate = nn::linear(x, wi_0);
  const at::Tensor activated = act == "gelu_new" ? gelu_new(gate) : act == "relu" ? torch::relu(gate) : torch::silu(gate);
  // transformers casts to wo's dtype (a float32 wo in an f16 model keeps f32 there).
  return nn::linear((activated * nn::linear(x, wi_1)).to(wo->weight.scalar_type()), wo);
}

UMT5LayerFFImpl::UMT5LayerFFImpl(const UMT5Config& c) {
  DenseReluDense = register_module("DenseReluDense", UMT5DenseGatedActDense(c));
  layer_norm = register_module("layer_norm", UMT5LayerNorm(c.d_model, c.layer_norm_epsilon));
}

at::Tensor UMT5LayerFFImpl::forward(const at::Tensor& x) { return x + DenseReluDense(layer_norm(x)); }

namespace {

// transformers' f16 guard after each sub-layer: clamp to the f16 range (1000 below it when
// anything overflowed to inf).
at::Tensor clamp_f16(const at::Tensor& x) {
  if (x.scalar_type() != at::kHalf) return x;
  const double max = 65504.0;
  const double clamp = x.isinf().any().item<bool>() ? max - 1000 : max;
  return x.clamp(-clamp, clamp);
}

}  // namespace

UMT5BlockImpl::UMT5BlockImpl(const UMT5Config& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  layer->push_back(UMT5LayerSelfAttention(c));
  layer->push_back(UMT5LayerFF(c));
}

at::Tensor UMT5BlockImpl::forward(const at::Tensor& x, const at::Tensor& mask_bias) {
  const at::Tensor h = clamp_f16(layer[0]->as<UMT5LayerSelfAttention>()->forward(x, mask_bias));
  return clamp_f16(layer[1]->as<UMT5LayerFF>()->forward(h));
}

UMT5StackImpl::UMT5StackImpl(const UMT5Config& c) {
  block = register_module("block", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) block->push_back(UMT5Block(c));
  final_layer_norm = register_module("final_layer_norm", UMT5LayerNorm(c.d_model, c.layer_norm_epsilon));
}

UMT5EncoderModelImpl::UMT5EncoderModelImpl(const UMT5Config& c) : config(c) {
  const auto problems = c.validate();
  if (!problems.empty()) throw UsageError("invalid UMT5 config: " + config::describe(problems));
  shared = register_module("shared", torch::nn::Embedding(c.vocab_size, c.d_model));
  encoder = register_module("encoder", UMT5Stack(c));
}

UMT5EncoderOutput UMT5EncoderModelImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  if (input_ids.dim() != 2 || input_ids.scalar_type() != at::kLong)
    throw UsageError("UMT5 encoder: input_ids must be int64 [B, S] (got " +
                     std::string(c10::toString(input_ids.scalar_type())) + " with " + std::to_string(input_ids.dim()) +
                     " dims)");
  if (input_ids.numel() > 0 && (input_ids.min().item<int64_t>() < 0 || input_ids.max().item<int64_t>() >= config.vocab_size))
    throw UsageError("UMT5 encoder: token id out of range [0, " + std::to_string(config.vocab_size) + ")");
  if (attention_mask.defined() && attention_mask.sizes() != input_ids.sizes())
    throw UsageError("UMT5 encoder: attention_mask must have the shape of input_ids");
  const at::Tensor& table = shared->weight;
  // [B, S] -> [B, 1, 1, S]: 0 for tokens, float32's minimum for padding, on the key axis only
  // (transformers' get_extended_attention_mask in the model's dtype).
  at::Tensor mask_bias;
  if (attention_mask.defined()) {
    const auto type = table.scalar_type();
    const double lowest = type == at::kDouble  ? std::numeric_limits<double>::lowest()
                          : type == at::kHalf  ? -65504.0
                          : type == at::kBFloat16 ? -3.3895313892515355e38
                                                  : static_cast<double>(std::numeric_limits<float>::lowest());
    mask_bias = (1.0 - attention_mask.to(table.device(), table.scalar_type()).view({input_ids.size(0), 1, 1, -1})) * lowest;
  }
  UMT5EncoderOutput out;
  at::Tensor h = shared(input_ids.to(table.device()));
  const auto& blocks = *encoder->block;
  out.hidden_states.reserve(blocks.size() + 1);
  for (const auto& block : blocks) {
    out.hidden_states.push_back(h);
    h = block->as<UMT5Block>()->forward(h, mask_bias);
  }
  out.last_hidden_state = encoder->final_layer_norm(h);
  out.hidden_states.push_back(out.last_hidden_state);
  return out;
}

at::Tensor wan_prompt_embeds(const at::Tensor& last_hidden_state, const at::Tensor& attention_mask,
                             int64_t max_sequence_length) {
  if (last_hidden_state.dim() != 3 || attention_mask.dim() != 2 || attention_mask.size(0) != last_hidden_state.size(0) ||
      attention_mask.size(1) != last_hidden_state.size(1))
    throw UsageError("wan_prompt_embeds: expected last_hidden_state [B, S, C] and attention_mask [B, S]");
  const int64_t s = last_hidden_state.size(1);
  const int64_t length = max_sequence_length > 0 ? max_sequence_length : s;
  const at::Tensor seq_lens = attention_mask.gt(0).sum(1).to(last_hidden_state.device());  // [B]
  if (seq_lens.numel() > 0 && seq_lens.max().item<int64_t>() > length)
    throw UsageError("wan_prompt_embeds: a prompt has " + std::to_string(seq_lens.max().item<int64_t>()) +
                     " tokens, more than max_sequence_length " + std::to_string(length));
  // Row i of sequence b is kept when i < seq_len[b]; the rest are zeros (u[:v] then new_zeros).
  const at::Tensor rows = torch::arange(s, seq_lens.options().dtype(at::kLong));
  const at::Tensor keep = (rows.unsqueeze(0) < seq_lens.unsqueeze(1)).unsqueeze(-1);  // [B, S, 1]
  at::Tensor out = torch::where(keep, last_hidden_state, torch::zeros({}, last_hidden_state.options()));
  if (length < s) return out.narrow(1, 0, length).contiguous();
  if (length > s)
    out = torch::cat({out, torch::zeros({out.size(0), length - s, out.size(2)}, out.options())}, 1);
  return out;
}

// ---------------------------------------------------------------- loading

void load_umt5_encoder_weights(UMT5EncoderModelImpl& model, io::WeightReader& reader, const std::string& prefix,
                               const UMT5LoadOptions& options) {
  nn::LoadOptions load;
  load.dtype = options.dtype;
  load.prefix = prefix;
  const bool has_shared = reader.contains(prefix + "shared.weight");
  load.key_map = [has_shared](const std::string& name) -> std::string {
    if (name == "encoder.embed_tokens.weight") return has_shared ? std::string() : std::string("shared.weight");
    return name;
  };
  // ComfyUI stores the tokenizer's SentencePiece model beside the weights in some files.
  load.ignore_unexpected = [](const std::string& name) { return name == "spiece_model"; };
  nn::load_state_dict(model, reader, load);
  model.to(options.device);
}

UMT5EncoderModel load_umt5_encoder(const std::string& path, const UMT5LoadOptions& options,
                                   const nlohmann::json& overrides) {
  const nlohmann::json patch = overrides.is_object() ? overrides : nlohmann::json::object();
  if (std::filesystem::is_directory(path)) {
    const std::string config_path = path + "/config.json";
    nlohmann::json j = config::read_file(config_path);
    if (j.is_object()) j.merge_patch(patch);
    const UMT5Config config = UMT5Config::from_json(j, config_path);
    const std::string weights = io::find_weight_file(
        path, {"model.safetensors", "model.safetensors.index.json", "model.fp16.safetensors", "pytorch_model.bin"},
        "UMT5 text encoder");
    UMT5EncoderModel model(config);
    auto reader = io::open_weights(weights);
    load_umt5_encoder_weights(*model, *reader, "", options);
    model->eval();
    return model;
  }
  auto reader = io::open_weights(path);
  const bool original = is_umt5_original(reader->tensors());
  const auto prefix = original ? std::optional<std::string>("") : umt5_transformers_prefix(reader->tensors());
  if (!prefix)
    throw LoadError(path, "not a UMT5 text encoder (looked for the Wan release's token_embedding.weight + "
                          "blocks.0.attn.q.weight, and transformers' shared.weight + encoder.final_layer_norm.weight)");
  UMT5EncoderModel model(UMT5Config::from_json(infer_umt5_config(reader->tensors(), original, *prefix, patch, path), path));
  if (original) {
    nn::LoadOptions load;
    load.dtype = options.dtype;
    umt5_original_keys().apply(load);
    nn::load_state_dict(*model, *reader, load);
    model->to(options.device);
  } else {
    load_umt5_encoder_weights(*model, *reader, *prefix, options);
  }
  model->eval();
  return model;
}

}  // namespace genvis::models
