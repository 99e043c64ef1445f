#include "train/foreground_weights.h"

#include "core/error.h"

#include <torch/torch.h>

namespace genvis::train {

at::Tensor foreground_mask(const at::Tensor& x) {
  if (x.dim() != 4 && x.dim() != 5) throw UsageError("foreground_mask: x must be [B,C,H,W] or [B,C,T,H,W]");
  const at::Tensor target = x.detach();
  const int64_t spatial = x.dim() - 2;  // H and W are the last two dims; flatten them
  at::Tensor background = std::get<0>(target.flatten(spatial).median(spatial));  // [B,C(,T)]
  background = background.unsqueeze(-1).unsqueeze(-1);
  return ((target - background).abs().amax(1, /*keepdim=*/true) > 0.1).to(at::kFloat);
}

at::Tensor foreground_weights(const at::Tensor& x, double weight) { return 1.0 + weight * foreground_mask(x); }

at::Tensor foreground_weighted_mse(const at::Tensor& decoded, const at::Tensor& x, double weight) {
  if (weight <= 0) return torch::mse_loss(decoded, x);
  const at::Tensor w = foreground_weights(x, weight).to(decoded.scalar_type()).expand_as(decoded);
  return ((decoded - x).pow(2) * w).sum() / w.sum();
}

at::Tensor latent_foreground_weights(const at::Tensor& images, int64_t patch, double weight) {
  if (images.dim() != 4 || patch < 1 || images.size(2) % patch != 0 || images.size(3) % patch != 0)
    throw UsageError("latent_foreground_weights: images [B,C,H,W] with H and W multiples of the patch " +
                     std::to_string(patch) + ", got " + c10::str(images.sizes()));
  return 1.0 + weight * at::max_pool2d(foreground_mask(images), {patch, patch}, {patch, patch});
}

at::Tensor weighted_mean_per_sample(const at::Tensor& squared, const at::Tensor& w) {
  if (squared.dim() < 2 || w.dim() != squared.dim() || w.size(0) != squared.size(0) || w.size(1) != 1)
    throw UsageError("weighted_mean_per_sample: expected w [B,1,...] for squared " + c10::str(squared.sizes()) +
                     ", got " + c10::str(w.sizes()));
  std::vector<int64_t> rest;
  for (int64_t d = 1; d < squared.dim(); ++d) rest.push_back(d);
  const at::Tensor ws = w.to(squared.scalar_type());
  return (ws * squared).sum(rest) / (ws.expand_as(squared).sum(rest));
}

}  // namespace genvis::train
