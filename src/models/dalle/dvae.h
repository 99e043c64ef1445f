// DALL·E's discrete VAE: an image -> a grid of codes from a vocab_size codebook, and back.
//
//   DiscreteVAE vae(DVAEConfig{.image_size = 64, .vocab_size = 512});
//   at::Tensor codes = vae->encode(images01);        // [B,3,64,64] in [0,1] -> [B,16,16] int64
//   at::Tensor images = vae->decode(codes);          // -> [B,3,64,64] in [0,1]
//   DVAELoss l = dvae_loss(vae, images01, {.temperature = dvae_temperature(step, 5000),
//                                          .kl_weight = dvae_kl_weight(step, 2000, 6.6)}, rng);
//
// Module tree and key names are those of OpenAI's released dVAE (dall_e/encoder.py,
// decoder.py): encoder.blocks.input.{w,b} (7x7), encoder.blocks.group_G.block_N.{id_path,
// res_path.conv_1..conv_4}.{w,b}, encoder.blocks.output.conv; decoder.blocks.input (1x1 from the
// codes), decoder.blocks.group_G.block_N..., decoder.blocks.output.conv. Each residual block adds
// its residual path scaled by 1 / (num_groups * blocks_per_group)^2 (the official post_gain).
// Pixels are mapped into [eps, 1 - eps] (eps = 0.1) before the encoder, and the decoder's output
// is [B, 2C, H, W]: the logit-Laplace location (first C channels) and log-scale; its image is
// unmap(sigmoid(location)).
#pragma once
#include "core/rng.h"
#include "models/dalle/dalle_config.h"

#include <string>
#include <torch/nn/module.h>

namespace genvis::models {

inline constexpr double kDVAEPixelEps = 0.1;

// x in [0,1] -> (1 - 2 eps) x + eps, and the inverse (clamped to [0,1]).
at::Tensor dvae_map_pixels(const at::Tensor& x);
at::Tensor dvae_unmap_pixels(const at::Tensor& x);

// A convolution with OpenAI's parameter names (w, b) and "same" padding.
class DVAEConvImpl : public torch::nn::Module {
public:
  DVAEConvImpl(int64_t in, int64_t out, int64_t kernel);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor w, b;
};
TORCH_MODULE(DVAEConv);

// x + post_gain * res_path(x) with id_path a 1x1 convolution when the widths differ. The
// encoder's residual path is 3x3, 3x3, 3x3, 1x1; the decoder's 1x1, 3x3, 3x3, 3x3 (hidden width
// out / 4), each after a ReLU.
class DVAEBlockImpl : public torch::nn::Module {
public:
  DVAEBlockImpl(int64_t in, int64_t out, double post_gain, bool decoder);
  at::Tensor forward(const at::Tensor& x);
  DVAEConv id_path{nullptr};
  std::shared_ptr<torch::nn::Module> res_path;
  DVAEConv conv_1{nullptr}, conv_2{nullptr}, conv_3{nullptr}, conv_4{nullptr};
  double post_gain;
};
TORCH_MODULE(DVAEBlock);

class DVAECoderImpl : public torch::nn::Module {
public:
  DVAECoderImpl(const DVAEConfig& config, bool decoder);
  at::Tensor forward(const at::Tensor& x);
  bool decoder;
  std::shared_ptr<torch::nn::Module> blocks;
  DVAEConv input{nullptr}, output{nullptr};
  std::vector<std::vector<DVAEBlock>> groups;
};
TORCH_MODULE(DVAECoder);

class DiscreteVAEImpl : public torch::nn::Module {
public:
  explicit DiscreteVAEImpl(const DVAEConfig& config);
  // images [B,C,H,W] in [0,1] -> code logits [B,vocab,h,w].
  at::Tensor encode_logits(const at::Tensor& images);
  // images -> the most likely code per position [B,h,w] (int64).
  at::Tensor encode(const at::Tensor& images);
  // codes [B,h,w] -> images [B,C,H,W] in [0,1].
  at::Tensor decode(const at::Tensor& codes);
  // A (relaxed) one-hot map z [B,vocab,h,w] -> the decoder's raw output [B,2C,H,W].
  at::Tensor decode_raw(const at::Tensor& z);
  // The decoder's raw output -> images in [0,1].
  at::Tensor image_from_raw(const at::Tensor& raw) const;

  DVAEConfig config;
  DVAECoder encoder{nullptr}, decoder{nullptr};
};
TORCH_MODULE(DiscreteVAE);

// Gumbel-softmax over dim 1 of logits [B,K,...] at temperature tau: softmax((logits + g) / tau),
// g ~ Gumbel(0, 1) from rng. straight_through: the forward value is the one-hot of the argmax and
// the gradient that of the soft sample.
at::Tensor gumbel_softmax(const at::Tensor& logits, double tau, bool straight_through, Rng& rng);

// The paper's schedules: the relaxation temperature annealed from 1 to 1/16 and the KL weight
// raised from 0 to its maximum, each with a half-cosine over the given number of steps.
double dvae_temperature(int64_t step, int64_t anneal_steps, double start = 1.0, double end = 1.0 / 16);
double dvae_kl_weight(int64_t step, int64_t warmup_steps, double max_weight);

// -log p(x | location, log_scale) of the logit-Laplace distribution, per element, for x in
// (0,1) (mapped pixels): log(2 b) + log(x (1 - x)) + |logit(x) - location| / b, b = exp(log_scale).
at::Tensor logit_laplace_nll(const at::Tensor& x, const at::Tensor& location, const at::Tensor& log_scale);

struct DVAELossOptions {
  double temperature = 1.0;
  double kl_weight = 0.0;
  bool straight_through = false;
  std::string reconstruction = "logit_laplace";  // or "mse"
  // Per-pixel weights [B,1,H,W] of the reconstruction term (its weighted mean); undefined: uniform.
  at::Tensor pixel_weight;
};

struct DVAELoss {
  at::Tensor loss;            // reconstruction + kl_weight * kl
  at::Tensor reconstruction;  // per pixel value (logit-Laplace NLL or MSE in [0,1] units)
  at::Tensor kl;              // KL(q(z|x) || uniform), summed over positions, per pixel value
  at::Tensor images;          // the reconstructions [B,C,H,W] in [0,1]
};

// The ELBO terms for images [B,C,H,W] in [0,1], per pixel value as the paper normalises them.
DVAELoss dvae_loss(DiscreteVAE& vae, const at::Tensor& images, const DVAELossOptions& options, Rng& rng);

// Codebook use over codes of any shape: perplexity of the code histogram (exp of its entropy,
// vocab_size when every code is used equally) and the number of codes never used.
struct CodebookUse {
  double perplexity = 0;
  int64_t dead_codes = 0;
};
CodebookUse codebook_use(const at::Tensor& codes, int64_t vocab_size);

}  // namespace genvis::models
