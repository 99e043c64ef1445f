#include "models/dfgan/dfgan_loss.h"

#include "core/error.h"

#include <torch/torch.h>

namespace genvis::models::dfgan {

at::Tensor discriminator_loss(const at::Tensor& real, const at::Tensor& fake, const at::Tensor& mismatched) {
  return torch::relu(1.0 - real).mean() + 0.5 * (torch::relu(1.0 + fake).mean() + torch::relu(1.0 + mismatched).mean());
}

at::Tensor generator_loss(const at::Tensor& fake) { return -fake.mean(); }

at::Tensor matching_aware_gradient_penalty(const at::Tensor& real, const at::Tensor& images, const at::Tensor& sentence,
                                           double k, double p) {
  if (!images.requires_grad() || !sentence.requires_grad())
    throw UsageError("MA-GP: the images and sentences must require grad");
  if (real.dim() != 1 || real.size(0) != images.size(0))
    throw UsageError("MA-GP: expected one logit per image, got " + c10::str(real.sizes()));
  const auto grads = torch::autograd::grad({real}, {images, sentence}, {torch::ones_like(real)},
                                           /*retain_graph=*/true, /*create_graph=*/true);
  const int64_t b = images.size(0);
  const at::Tensor g = at::cat({grads[0].reshape({b, -1}), grads[1].reshape({b, -1})}, 1);
  // ||g||^p as (sum g^2)^(p/2): the same value, and no sqrt to differentiate at a zero gradient.
  return k * g.pow(2).sum(1).pow(p / 2).mean();
}

at::Tensor roll_batch(const at::Tensor& features) { return at::roll(features, {-1}, {0}); }

}  // namespace genvis::models::dfgan
