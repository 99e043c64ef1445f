#include "models/damsm/damsm_model.h"

#include "core/error.h"

#include <torch/nn/utils/rnn.h>
#include <torch/torch.h>

namespace genvis::models {

DamsmTextEncoderImpl::DamsmTextEncoderImpl(const DamsmConfig& c) {
  const auto& t = c.text_config;
  encoder = register_module("encoder", torch::nn::Embedding(t.vocab_size, t.word_embedding_dim));
  drop = register_module("drop", torch::nn::Dropout(t.dropout));
  rnn = register_module("rnn", torch::nn::LSTM(torch::nn::LSTMOptions(t.word_embedding_dim, c.embedding_dim / 2)
                                                   .batch_first(true)
                                                   .bidirectional(true)));
  // AttnGAN's init: embeddings uniform in [-0.1, 0.1].
  torch::NoGradGuard no_grad;
  encoder->weight.uniform_(-0.1, 0.1);
}

DamsmTextFeatures DamsmTextEncoderImpl::forward(const at::Tensor& ids, const at::Tensor& lengths) {
  if (ids.dim() != 2 || lengths.dim() != 1 || lengths.size(0) != ids.size(0))
    throw UsageError("DAMSM text encoder: expected ids [B,T] and lengths [B], got " + c10::str(ids.sizes()) + " and " +
                     c10::str(lengths.sizes()));
  const int64_t t = ids.size(1);
  const at::Tensor len = lengths.to(at::kCPU, at::kLong);
  if (ids.size(0) > 0 && (len.min().item<int64_t>() < 1 || len.max().item<int64_t>() > t))
    throw UsageError("DAMSM text encoder: every length must be in 1.." + std::to_string(t));
  const at::Tensor emb = drop(encoder(ids.clamp(0, encoder->weight.size(0) - 1)));  // [B,T,E]
  namespace rnn_utils = torch::nn::utils::rnn;
  const auto packed = rnn_utils::pack_padded_sequence(emb, len, /*batch_first=*/true, /*enforce_sorted=*/false);
  auto [out, state] = rnn->forward_with_packed_input(packed);
  const at::Tensor words = std::get<0>(rnn_utils::pad_packed_sequence(out, /*batch_first=*/true, 0.0, t));  // [B,T,D]
  const at::Tensor h = std::get<0>(state);                                               // [2,B,D/2]
  return {words.transpose(1, 2).contiguous(), h.transpose(0, 1).reshape({ids.size(0), -1})};
}

DamsmImageEncoderImpl::DamsmImageEncoderImpl(const DamsmConfig& c) : config(c.vision_config) {
  const auto& v = c.vision_config;
  backbone = register_module("backbone", nn::ResnetEncoder2D(nn::ResnetEncoder2DOptions{
                                             .block_out_channels = v.block_out_channels,
                                             .layers_per_block = v.layers_per_block,
                                             .groups = v.norm_num_groups}));
  const int64_t region_channels = v.block_out_channels[static_cast<size_t>(v.region_level)];
  emb_features = register_module(
      "emb_features", torch::nn::Conv2d(torch::nn::Conv2dOptions(region_channels, c.embedding_dim, 1).bias(false)));
  emb_cnn_code = register_module("emb_cnn_code", torch::nn::Linear(v.block_out_channels.back(), c.embedding_dim));
}

DamsmImageFeatures DamsmImageEncoderImpl::forward(const at::Tensor& pixel_values) {
  const int64_t s = config.image_size;
  if (pixel_values.dim() != 4 || pixel_values.size(1) != 3 || pixel_values.size(2) != s || pixel_values.size(3) != s)
    throw UsageError("DAMSM image encoder: expected images [B,3," + std::to_string(s) + "," + std::to_string(s) +
                     "], got " + c10::str(pixel_values.sizes()));
  const auto f = backbone->run(pixel_values);
  const at::Tensor regions = emb_features(f.levels[static_cast<size_t>(config.region_level)]);  // [B,D,r,r]
  return {regions.flatten(2), emb_cnn_code(f.last.mean({2, 3}))};
}

DamsmModelImpl::DamsmModelImpl(const DamsmConfig& c) : config(c) {
  if (const auto problems = c.validate(); !problems.empty()) throw UsageError("DAMSM config: " + problems.front());
  text_encoder = register_module("text_encoder", DamsmTextEncoder(c));
  image_encoder = register_module("image_encoder", DamsmImageEncoder(c));
}

DamsmImageFeatures DamsmModelImpl::encode_image(const at::Tensor& pixel_values) { return image_encoder(pixel_values); }

}  // namespace genvis::models
