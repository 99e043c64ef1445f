#include "models/classifier/image_classifier_model.h"

#include "core/error.h"
#include "nn/group_norm_silu.h"

#include <torch/torch.h>

namespace genvis::models {

ImageClassifierBlockImpl::ImageClassifierBlockImpl(int64_t in_channels, int64_t out_channels, int64_t layers,
                                                   int64_t groups) {
  convs = register_module("convs", torch::nn::ModuleList());
  norms = register_module("norms", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) {
    convs->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(i == 0 ? in_channels : out_channels, out_channels, 3).padding(1)));
    norms->push_back(torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, out_channels)));
  }
}

at::Tensor ImageClassifierBlockImpl::forward(at::Tensor x) {
  for (size_t i = 0; i < convs->size(); ++i) {
    auto norm = torch::nn::GroupNorm(norms->ptr<torch::nn::GroupNormImpl>(i));
    x = nn::group_norm_silu(norm, convs->ptr<torch::nn::Conv2dImpl>(i)->forward(x));
  }
  return x;
}

ImageClassifierModelImpl::ImageClassifierModelImpl(const ImageClassifierConfig& c) : config(c) {
  if (const auto problems = c.validate(); !problems.empty()) throw UsageError("image classifier config: " + problems.front());
  const auto& ch = c.block_out_channels;
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < ch.size(); ++i)
    down_blocks->push_back(ImageClassifierBlock(i == 0 ? c.in_channels : ch[i - 1], ch[i], c.layers_per_block, c.norm_num_groups));
  feature_proj = register_module("feature_proj", torch::nn::Linear(ch.back() * c.pool_size * c.pool_size, c.feature_dim));
  classifier = register_module("classifier", torch::nn::Linear(c.feature_dim, c.num_classes));
}

at::Tensor ImageClassifierModelImpl::features(const at::Tensor& pixel_values) {
  const int64_t s = config.image_size;
  if (pixel_values.dim() != 4 || pixel_values.size(1) != config.in_channels || pixel_values.size(2) != s ||
      pixel_values.size(3) != s)
    throw UsageError("image classifier: expected images [B," + std::to_string(config.in_channels) + "," +
                     std::to_string(s) + "," + std::to_string(s) + "], got " + c10::str(pixel_values.sizes()));
  at::Tensor h = pixel_values;
  for (size_t i = 0; i < down_blocks->size(); ++i) {
    if (i > 0) h = at::max_pool2d(h, {2, 2});  // [B,C,s/2,s/2] (floor)
    h = down_blocks->ptr<ImageClassifierBlockImpl>(i)->forward(h);
  }
  h = at::adaptive_avg_pool2d(h, {config.pool_size, config.pool_size}).flatten(1);  // [B,C_last*p*p]
  return at::silu(feature_proj(h));                                                  // [B,feature_dim]
}

at::Tensor ImageClassifierModelImpl::forward(const at::Tensor& pixel_values) { return classifier(features(pixel_values)); }

}  // namespace genvis::models
