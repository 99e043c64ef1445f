#include "models/contrastive/contrastive_model.h"

#include "core/error.h"

#include <torch/torch.h>

namespace genvis::models {

ContrastiveModelImpl::ContrastiveModelImpl(const ContrastiveConfig& c) : config(c) {
  if (const auto problems = c.validate(); !problems.empty())
    throw UsageError("contrastive encoder config: " + problems.front());
  text_model = register_module("text_model", CLIPTextTransformer(c.text_config));
  text_projection = register_module(
      "text_projection", torch::nn::Linear(torch::nn::LinearOptions(c.text_config.hidden_size, c.projection_dim).bias(false)));
  vision_model = register_module(
      "vision_model", nn::ResnetEncoder2D(nn::ResnetEncoder2DOptions{.block_out_channels = c.vision_config.block_out_channels,
                                                                     .layers_per_block = c.vision_config.layers_per_block,
                                                                     .groups = c.vision_config.norm_num_groups}));
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
