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

}  // namespace genvis::train
