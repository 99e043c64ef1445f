// The modules of genvis' contrastive text-image encoder: a small ResNet image tower and a CLIP
// text tower, each followed by a linear projection into one shared embedding space, and CLIP's
// learnable temperature. Key names follow transformers' CLIPModel where it has the same part
// (text_model.*, text_projection, visual_projection, logit_scale); the image tower uses
// diffusers' ResNet names (vision_model.conv_in, down_blocks.N.resnets.M, downsamplers.0,
// norm_out).
//
//   ContrastiveModel model(config);
//   at::Tensor img = model->encode_image(x);     // x [B,3,S,S] in [-1,1], S = image_size -> [B,P]
//   at::Tensor txt = model->encode_text(ids);    // ids int64 [B,L] (BOS ... EOS pad) -> [B,P]
//   // both unnormalised; logits = exp(logit_scale) * normalize(img) @ normalize(txt).T
//
// For embeddings of images and strings use ContrastiveEncoder (contrastive_encoder.h).
#pragma once
#include "models/clip_text/clip_text_model.h"
#include "models/contrastive/contrastive_config.h"
#include "nn/resnet_encoder.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace genvis::models {

// The image tower: conv_in -> down blocks -> GroupNorm + SiLU -> mean over space:
// [B,3,S,S] -> [B,C_last].
using ContrastiveVisionModel = nn::ResnetEncoder2D;

struct ContrastiveModelImpl : torch::nn::Module {
  explicit ContrastiveModelImpl(const ContrastiveConfig& config);

  // pixel_values [B,3,S,S] in [-1,1] at vision_config.image_size -> [B,projection_dim].
  at::Tensor encode_image(const at::Tensor& pixel_values);
  // input_ids [B,L], L <= max_position_embeddings, with an EOS in every row -> [B,projection_dim]
  // (the final-layer-normed hidden state at the first EOS, projected).
  at::Tensor encode_text(const at::Tensor& input_ids);

  ContrastiveConfig config;
  CLIPTextTransformer text_model{nullptr};
  torch::nn::Linear text_projection{nullptr};    // [P, hidden_size], no bias
  ContrastiveVisionModel vision_model{nullptr};
  torch::nn::Linear visual_projection{nullptr};  // [P, C_last], no bias
  at::Tensor logit_scale;                        // scalar; logits use exp(min(logit_scale, log 100))
};
TORCH_MODULE(ContrastiveModel);

}  // namespace genvis::models
