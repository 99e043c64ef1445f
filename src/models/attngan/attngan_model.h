// The modules of AttnGAN (Xu et al. 2018) with the official code's key names (code/model.py,
// code/GlobalAttention.py), so its checkpoints map name for name:
//   generator:      ca_net.fc, h_net1.fc.{0,1}, h_net1.upsampleN.{1,2}, h_netK.att.conv_context,
//                   h_netK.residual.R.block.{0,1,3,4}, h_netK.upsample.{1,2}, img_netK.img.0
//   discriminators: (one per stage, the official netD0, netD1, ...) img_code_s16.{0,2,3,...},
//                   img_code_s32, img_code_s32_1, ... (the stages above the first),
//                   UNCOND_DNET.outlogits.0, COND_DNET.jointConv.{0,1}, COND_DNET.outlogits.0
// The discriminators return logits: the official outlogits end in a sigmoid that the losses
// (attngan_loss.h) fold into binary cross-entropy with logits, which is the same function but
// finite where a sigmoid saturates.
//
//   AttnGANGenerator g(config);
//   auto out = g(z, eps, sentence, words, word_mask);  // out.images: one [B,3,S,S] per stage
//   AttnGANDiscriminator d(config, 2);                   // the last stage's
//   at::Tensor f = d(out.images[2]);
//   at::Tensor logits = d->conditional(f, sentence);     // [B]
#pragma once
#include "models/attngan/attngan_config.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <vector>

namespace genvis::models {

// Conditioning augmentation: fc -> GLU -> (mu, logvar); c = mu + exp(logvar / 2) * eps.
struct AttnGANConditioningImpl : torch::nn::Module {
  AttnGANConditioningImpl(int64_t embedding_dim, int64_t condition_dim);
  struct Output {
    at::Tensor c, mu, logvar;  // [B,condition_dim] each
  };
  Output forward(const at::Tensor& sentence, const at::Tensor& eps);
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(AttnGANConditioning);

// Word-context attention (GlobalAttentionGeneral): each pixel's softmax over the caption's words
// (masked words excluded) of (h_pixel . W e_word), and the attention-weighted sum of W e_word.
struct AttnGANWordAttentionImpl : torch::nn::Module {
  AttnGANWordAttentionImpl(int64_t image_channels, int64_t word_dim);
  struct Output {
    at::Tensor context;    // [B,C,H,W]
    at::Tensor attention;  // [B,T,H,W]: over words, summing to 1 at each pixel
  };
  // h [B,C,H,W], words [B,D,T], word_mask bool [B,T] (true = a real word; >= 1 per row).
  Output forward(const at::Tensor& h, const at::Tensor& words, const at::Tensor& word_mask);
  torch::nn::Conv2d conv_context{nullptr};
};
TORCH_MODULE(AttnGANWordAttention);

// The first stage (INIT_STAGE_G): fc [c, z] -> 4x4, then nearest-x2 upsampling blocks.
struct AttnGANInitStageImpl : torch::nn::Module {
  AttnGANInitStageImpl(const AttnGANConfig& config);
  at::Tensor forward(const at::Tensor& z, const at::Tensor& c);
  int64_t channels;  // at 4x4
  torch::nn::Sequential fc{nullptr};
  std::vector<torch::nn::Sequential> upsample;  // upsample1, upsample2, ...
};
TORCH_MODULE(AttnGANInitStage);

// A refinement stage (NEXT_STAGE_G): [h, word context] -> r_num residual blocks -> x2 upsampling.
struct AttnGANNextStageImpl : torch::nn::Module {
  AttnGANNextStageImpl(const AttnGANConfig& config);
  // h [B,gf_dim,S,S] -> {[B,gf_dim,2S,2S], the word attention [B,T,S,S]}.
  AttnGANWordAttentionImpl::Output forward(const at::Tensor& h, const at::Tensor& words, const at::Tensor& word_mask);
  AttnGANWordAttention att{nullptr};
  torch::nn::Sequential residual{nullptr};
  torch::nn::Sequential upsample{nullptr};
};
TORCH_MODULE(AttnGANNextStage);

struct AttnGANGeneratorOutput {
  std::vector<at::Tensor> images;     // per stage [B,3,S_k,S_k] in [-1,1]
  std::vector<at::Tensor> attention;  // per refinement stage [B,T,S_(k-1),S_(k-1)]
  at::Tensor mu, logvar;              // the conditioning augmentation's
};

struct AttnGANGeneratorImpl : torch::nn::Module {
  explicit AttnGANGeneratorImpl(const AttnGANConfig& config);
  // z [B,z_dim], eps [B,condition_dim] (the conditioning augmentation's noise; zeros give c = mu),
  // sentence [B,E], words [B,E,T], word_mask bool [B,T].
  AttnGANGeneratorOutput forward(const at::Tensor& z, const at::Tensor& eps, const at::Tensor& sentence,
                                 const at::Tensor& words, const at::Tensor& word_mask);

  AttnGANConfig config;
  AttnGANConditioning ca_net{nullptr};
  AttnGANInitStage h_net1{nullptr};
  std::vector<AttnGANNextStage> next;       // h_net2, h_net3, ...
  std::vector<torch::nn::Sequential> img;  // img_net1, img_net2, ...: [conv3x3 -> 3, tanh]
};
TORCH_MODULE(AttnGANGenerator);

// One stage's discriminator (D_NET64/128/256 at our sizes): the image encoded to [B,8*df,4,4];
// the unconditional logit from it, the conditional one from it and the sentence vector.
struct AttnGANDiscriminatorImpl : torch::nn::Module {
  AttnGANDiscriminatorImpl(const AttnGANConfig& config, int64_t stage);
  at::Tensor forward(const at::Tensor& images);  // [B,3,S,S] -> [B,8*df,4,4]
  at::Tensor unconditional(const at::Tensor& features);                          // [B]
  at::Tensor conditional(const at::Tensor& features, const at::Tensor& sentence);  // [B]

  AttnGANConfig config;
  int64_t size;
  std::vector<torch::nn::Sequential> encode;  // img_code_s16, img_code_s32, ..., img_code_sN_1, ...
  torch::nn::Sequential uncond_outlogits{nullptr};            // UNCOND_DNET.outlogits
  torch::nn::Sequential joint_conv{nullptr}, cond_outlogits{nullptr};  // COND_DNET.{jointConv,outlogits}
};
TORCH_MODULE(AttnGANDiscriminator);

// The per-stage discriminators as one module (netD0, netD1, ...), the unit the trainer updates.
struct AttnGANDiscriminatorsImpl : torch::nn::Module {
  explicit AttnGANDiscriminatorsImpl(const AttnGANConfig& config);
  std::vector<AttnGANDiscriminator> stages;
};
TORCH_MODULE(AttnGANDiscriminators);

// The official weights_init: orthogonal convolutions and linear layers (zero biases), batch-norm
// scales ~ N(1, 0.02) and zero shifts.
void attngan_init_weights(torch::nn::Module& module);

}  // namespace genvis::models
