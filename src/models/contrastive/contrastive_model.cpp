#include "models/contrastive/contrastive_model.h"

#include "core/error.h"
#include "nn/group_norm_silu.h"

#include <torch/torch.h>

namespace genvis::models {

ContrastiveDownBlockImpl::ContrastiveDownBlockImpl(int64_t in_channels, int64_t out_channels, int64_t layers,
                                                   int64_t groups, bool downsample) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i)
    resnets->push_back(nn::ResnetBlock2D(
        nn::ResnetBlock2DOptions{.in_channels = i == 0 ? in_channels : out_channels, .out_channels = out_channels,
                                 .groups = groups}));
  downsamplers = register_module("downsamplers", torch::nn::ModuleList());
  if (downsample) downsamplers->push_back(nn::Downsample2D(out_channels, out_channels, /*padding=*/1));
}

at::Tensor ContrastiveDownBlockImpl::forward(at::Tensor x) {
  for (const auto& m : *resnets) x = m->as<nn::ResnetBlock2DImpl>()->forward(x);
  for (const auto& m : *downsamplers) x = m->as<nn::Downsample2DImpl>()->forward(x);
  return x;
}

ContrastiveVisionModelImpl::ContrastiveVisionModelImpl(const ContrastiveVisionConfig& c) {
  const auto& ch = c.block_out_channels;
  conv_in = register_module("conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, ch.front(), 3).padding(1)));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < ch.size(); ++i)
    down_blocks->push_back(ContrastiveDownBlock(i == 0 ? ch.front() : ch[i - 1], ch[i], c.layers_per_block,
                                                c.norm_num_groups, i + 1 < ch.size()));
  norm_out = register_module("norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, ch.back())));
}

at::Tensor ContrastiveVisionModelImpl::forward(const at::Tensor& pixel_values) {
  at::Tensor h = conv_in(pixel_values);
  for (const auto& m : *down_blocks) h = m->as<ContrastiveDownBlockImpl>()->forward(h);
  h = nn::group_norm_silu(norm_out, h);  // [B, C, s, s]
  return h.mean({2, 3});                 // [B, C]
}

ContrastiveModelImpl::ContrastiveModelImpl(const ContrastiveConfig& c) : config(c) {
  if (const auto problems = c.validate(); !problems.empty())
    throw UsageError("contrastive encoder config: " + problems.front());
  text_model = register_module("text_model", CLIPTextTransformer(c.text_config));
  text_projection = register_module(
      "text_projection", torch::nn::Linear(torch::nn::LinearOptions(c.text_config.hidden_size, c.projection_dim).bias(false)));
  vision_model = register_module("vision_model", ContrastiveVisionModel(c.vision_config));
  visual_projection = register_module(
      "visual_projection",
      torch::nn::Linear(torch::nn::LinearOptions(c.vision_config.block_out_channels.back(), c.projection_dim).bias(false)));
  logit_scale = register_parameter("logit_scale", torch::full({}, c.logit_scale_init_value));
}

at::Tensor ContrastiveModelImpl::encode_image(const at::Tensor& pixel_values) {
  const int64_t s = config.vision_config.image_size;
  if (pixel_values.dim() != 4 || pixel_values.size(1) != 3 || pixel_values.size(2) != s || pixel_values.size(3) != s)
    throw UsageError("contrastive encoder: expected images [B,3," + std::to_string(s) + "," + std::to_string(s) +
                     "], got " + c10::str(pixel_values.sizes()));
  return visual_projection(vision_model(pixel_values));
}

at::Tensor ContrastiveModelImpl::encode_text(const at::Tensor& input_ids) {
  if (input_ids.dim() != 2 || input_ids.size(1) > config.text_config.max_position_embeddings)
    throw UsageError("contrastive encoder: expected input_ids [B,L<=" +
                     std::to_string(config.text_config.max_position_embeddings) + "], got " +
                     c10::str(input_ids.sizes()));
  return text_projection(text_model(input_ids).pooler_output);
}

}  // namespace genvis::models
