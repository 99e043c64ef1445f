// AttnGAN's losses (Xu et al. 2018, eq. 3-5 and the official code/miscc/losses.py), on logits:
// binary cross-entropy with logits is the official sigmoid + BCELoss in a form that stays finite.
//
//   // per stage k: features of real, generated (detached) images; sentence vectors [B,E]
//   at::Tensor d = attngan::discriminator_loss(d_k->unconditional(real), d_k->conditional(real, s),
//                                              d_k->unconditional(fake), d_k->conditional(fake, s),
//                                              d_k->conditional(attngan::mismatched(real), attngan::shifted(s)));
//   at::Tensor g = sum_k attngan::generator_adversarial_loss(d_k->unconditional(f_k), d_k->conditional(f_k, s))
//                + attngan::kl_loss(out.mu, out.logvar) + lambda * DAMSM(final image, words, sentence);
#pragma once
#include <ATen/ATen.h>

namespace genvis::models::attngan {

// (BCE(uncond_real, 1) + BCE(cond_real, 1)) / 2 + (BCE(uncond_fake, 0) + BCE(cond_fake, 0) +
// BCE(cond_wrong, 0)) / 3, each BCE a batch mean of logits [B] (cond_wrong [B-1]).
at::Tensor discriminator_loss(const at::Tensor& uncond_real, const at::Tensor& cond_real, const at::Tensor& uncond_fake,
                              const at::Tensor& cond_fake, const at::Tensor& cond_wrong);

// BCE(uncond_fake, 1) + BCE(cond_fake, 1): the generator's adversarial loss at one stage.
at::Tensor generator_adversarial_loss(const at::Tensor& uncond_fake, const at::Tensor& cond_fake);

// KL(N(mu, exp(logvar)) || N(0, I)) averaged over elements: the conditioning augmentation's
// regulariser, mean(-0.5 * (1 + logvar - mu^2 - exp(logvar))).
at::Tensor kl_loss(const at::Tensor& mu, const at::Tensor& logvar);

// The official mismatched pairs: real features of images 0..B-2 against sentences 1..B-1.
at::Tensor mismatched(const at::Tensor& real_features);  // rows 0..B-2
at::Tensor shifted(const at::Tensor& sentence);          // rows 1..B-1

}  // namespace genvis::models::attngan
