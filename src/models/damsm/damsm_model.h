// The modules of genvis' DAMSM: AttnGAN's text encoder (word embeddings -> dropout ->
// bidirectional LSTM; key names encoder.weight, rnn.*_l0 and rnn.*_l0_reverse as AttnGAN's
// RNN_ENCODER) and an image encoder of our own in place of Inception-v3 (nn::ResnetEncoder2D;
// emb_features, a 1x1 conv giving the region features, and emb_cnn_code, a linear layer giving the
// global vector, named as AttnGAN's CNN_ENCODER).
//
//   DamsmModel model(config);
//   auto t = model->encode_text(ids, lengths);  // ids int64 [B,T], lengths int64 [B] (1..T)
//   // t.words [B,D,T] (zero past each caption's length), t.sentence [B,D]
//   auto v = model->encode_image(x);            // x [B,3,S,S] in [-1,1] -> v.regions [B,D,N], v.global [B,D]
//
// For strings and images in [0,1] use DamsmEncoder (damsm_encoder.h); the scores and losses over
// these features are in damsm_loss.h.
#pragma once
#include "models/damsm/damsm_config.h"
#include "nn/resnet_encoder.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

namespace genvis::models {

struct DamsmTextFeatures {
  at::Tensor words;     // [B,D,T]
  at::Tensor sentence;  // [B,D]: the last forward and the first backward hidden state
};

struct DamsmImageFeatures {
  at::Tensor regions;  // [B,D,N], N = region_side^2
  at::Tensor global;   // [B,D]
};

struct DamsmTextEncoderImpl : torch::nn::Module {
  explicit DamsmTextEncoderImpl(const DamsmConfig& config);
  // ids [B,T] (values past a row's length are ignored), lengths [B] in 1..T.
  DamsmTextFeatures forward(const at::Tensor& ids, const at::Tensor& lengths);

  torch::nn::Embedding encoder{nullptr};
  torch::nn::Dropout drop{nullptr};
  torch::nn::LSTM rnn{nullptr};
};
TORCH_MODULE(DamsmTextEncoder);

struct DamsmImageEncoderImpl : torch::nn::Module {
  explicit DamsmImageEncoderImpl(const DamsmConfig& config);
  DamsmImageFeatures forward(const at::Tensor& pixel_values);  // [B,3,S,S] in [-1,1]

  DamsmVisionConfig config;
  nn::ResnetEncoder2D backbone{nullptr};
  torch::nn::Conv2d emb_features{nullptr};  // C_region -> D, 1x1, no bias
  torch::nn::Linear emb_cnn_code{nullptr};  // C_last -> D
};
TORCH_MODULE(DamsmImageEncoder);

struct DamsmModelImpl : torch::nn::Module {
  explicit DamsmModelImpl(const DamsmConfig& config);

  DamsmTextFeatures encode_text(const at::Tensor& ids, const at::Tensor& lengths) { return text_encoder(ids, lengths); }
  DamsmImageFeatures encode_image(const at::Tensor& pixel_values);

  DamsmConfig config;
  DamsmTextEncoder text_encoder{nullptr};
  DamsmImageEncoder image_encoder{nullptr};
};
TORCH_MODULE(DamsmModel);

}  // namespace genvis::models
