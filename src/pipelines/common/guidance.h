// Classifier-free guidance over one batched network call: the unconditional and conditional
// halves run together as a batch of 2B (the network sees [uncond; cond] conditioning) and are
// combined as uncond + scale * (cond - uncond). Used by every guided family (diffusion, flow).
//
//   auto out = classifier_free_guidance(x, scale, [&](const at::Tensor& x2) { return unet(x2, t, ctx2); });
#pragma once
#include <ATen/ATen.h>
#include <functional>

namespace genvis::pipelines {

// uncond + scale * (cond - uncond), computed as the samplers always have (bit for bit).
at::Tensor guidance_combine(const at::Tensor& uncond, const at::Tensor& cond, double scale);

// Calls `network` once on [x; x] (2B samples) and combines its two halves.
at::Tensor classifier_free_guidance(const at::Tensor& x, double scale,
                                    const std::function<at::Tensor(const at::Tensor& doubled)>& network);

}  // namespace genvis::pipelines
