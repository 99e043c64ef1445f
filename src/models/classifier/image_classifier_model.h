// The modules of genvis' image classifier: a small CNN whose penultimate layer gives the
// features of FID[genvis-fmnist] and whose head gives the class of a (generated) image.
//
//   ImageClassifierModel model(config);
//   at::Tensor f = model->features(x);        // x [B,in_channels,S,S] in [-1,1], S = image_size -> [B,feature_dim]
//   at::Tensor logits = model->classifier(f);  // [B,num_classes]; forward(x) does both
//
// Layout (names are the checkpoint keys):
//   down_blocks.N.convs.M / .norms.M   layers_per_block x (conv3x3 -> GroupNorm -> SiLU) per level,
//                                      2x2 max pool between levels
//   (average pool, flatten)            [B,C_last*pool_size^2]
//   feature_proj                       Linear C_last*pool_size^2 -> feature_dim, then SiLU: the features
//   classifier                         Linear feature_dim -> num_classes
// No BatchNorm and no dropout: train() and eval() compute the same function.
//
// For features and classes of images in [0,1] of any size use ImageClassifier
// (image_classifier.h).
#pragma once
#include "models/classifier/image_classifier_config.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace genvis::models {

// One resolution level: `layers` x (conv3x3 -> GroupNorm -> SiLU).
struct ImageClassifierBlockImpl : torch::nn::Module {
  ImageClassifierBlockImpl(int64_t in_channels, int64_t out_channels, int64_t layers, int64_t groups);
  at::Tensor forward(at::Tensor x);

  torch::nn::ModuleList convs{nullptr};  // of Conv2d
  torch::nn::ModuleList norms{nullptr};  // of GroupNorm
};
TORCH_MODULE(ImageClassifierBlock);

struct ImageClassifierModelImpl : torch::nn::Module {
  explicit ImageClassifierModelImpl(const ImageClassifierConfig& config);

  // pixel_values [B,in_channels,S,S] in [-1,1] at image_size -> [B,feature_dim] (after SiLU).
  at::Tensor features(const at::Tensor& pixel_values);
  // pixel_values as above -> logits [B,num_classes].
  at::Tensor forward(const at::Tensor& pixel_values);

  ImageClassifierConfig config;
  torch::nn::ModuleList down_blocks{nullptr};  // of ImageClassifierBlock
  torch::nn::Linear feature_proj{nullptr};     // [feature_dim, C_last*pool_size^2]
  torch::nn::Linear classifier{nullptr};       // [num_classes, feature_dim]
};
TORCH_MODULE(ImageClassifierModel);

}  // namespace genvis::models
