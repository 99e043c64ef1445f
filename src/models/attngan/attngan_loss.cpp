#include "models/attngan/attngan_loss.h"

#include "core/error.h"

#include <torch/torch.h>

namespace genvis::models::attngan {
namespace {

at::Tensor bce(const at::Tensor& logits, double target) {
  return torch::binary_cross_entropy_with_logits(logits, torch::full_like(logits, target));
}

}  // namespace

at::Tensor discriminator_loss(const at::Tensor& uncond_real, const at::Tensor& cond_real, const at::Tensor& uncond_fake,
                              const at::Tensor& cond_fake, const at::Tensor& cond_wrong) {
  return (bce(uncond_real, 1.0) + bce(cond_real, 1.0)) / 2.0 +
         (bce(uncond_fake, 0.0) + bce(cond_fake, 0.0) + bce(cond_wrong, 0.0)) / 3.0;
}

at::Tensor generator_adversarial_loss(const at::Tensor& uncond_fake, const at::Tensor& cond_fake) {
  return bce(uncond_fake, 1.0) + bce(cond_fake, 1.0);
}

at::Tensor kl_loss(const at::Tensor& mu, const at::Tensor& logvar) {
  return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).mean();
}

at::Tensor mismatched(const at::Tensor& real_features) {
  if (real_features.size(0) < 2) throw UsageError("AttnGAN: mismatched pairs need a batch of >= 2");
  return real_features.narrow(0, 0, real_features.size(0) - 1);
}

at::Tensor shifted(const at::Tensor& sentence) {
  if (sentence.size(0) < 2) throw UsageError("AttnGAN: mismatched pairs need a batch of >= 2");
  return sentence.narrow(0, 1, sentence.size(0) - 1);
}

}  // namespace genvis::models::attngan
