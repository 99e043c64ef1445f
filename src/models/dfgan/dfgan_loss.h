// DF-GAN's losses (Tao et al. 2022, section 3.3 and the official train loop): hinge losses with a
// mismatched-pair term for the one-way discriminator, and the Matching-Aware zero-centred
// Gradient Penalty (MA-GP) on real images with their matching sentences.
//
//   at::Tensor d = dfgan::discriminator_loss(real, fake, mismatched)   // logits [B] each
//                + dfgan::matching_aware_gradient_penalty(real, images, sentence);
//   at::Tensor g = dfgan::generator_loss(disc->score(disc(generated), sentence));
#pragma once
#include <ATen/ATen.h>

namespace genvis::models::dfgan {

// relu(1 - real).mean() + (relu(1 + fake).mean() + relu(1 + mismatched).mean()) / 2.
at::Tensor discriminator_loss(const at::Tensor& real, const at::Tensor& fake, const at::Tensor& mismatched);

// -fake.mean().
at::Tensor generator_loss(const at::Tensor& fake);

// k * mean_i ||(d real_i / d images_i, d real_i / d sentence_i)||_2^p with the gradients taken
// with create_graph (the penalty is differentiable for the discriminator's update). `real` are
// the logits of (images, sentence), which must both require grad. The paper's k = 2, p = 6.
at::Tensor matching_aware_gradient_penalty(const at::Tensor& real, const at::Tensor& images, const at::Tensor& sentence,
                                           double k = 2.0, double p = 6.0);

// The mismatched pairs of a batch: features of image i + 1 (cyclically) for sentence i, as the
// official code rolls the real features.
at::Tensor roll_batch(const at::Tensor& features);

}  // namespace genvis::models::dfgan
