// Reconstruction losses with the objects weighted up: small objects on a flat background are a
// few percent of the pixels, so a per-pixel loss is nearly all background and an autoencoder
// reaches a good average while the objects are still blurred (docs/results.md: the video VAE and
// the dVAE on `shapes`).
//
//   at::Tensor w = foreground_weights(x, 20.0);            // [B,1,H,W] or [B,1,T,H,W]
//   at::Tensor loss = foreground_weighted_mse(decoded, x, 20.0);
//
// A pixel is foreground where any channel is more than 0.1 from its image's (a clip: its
// frame's) per-channel median, the background colour; it weighs 1 + weight, the rest 1.
#pragma once
#include <torch/types.h>

namespace genvis::train {

// x [B,C,H,W] or [B,C,T,H,W] (data: no gradient is taken) -> the foreground test as 0/1 floats
// with one channel.
at::Tensor foreground_mask(const at::Tensor& x);

// x [B,C,H,W] or [B,C,T,H,W] (data: no gradient is taken) -> weights with one channel.
at::Tensor foreground_weights(const at::Tensor& x, double weight);

// sum(w * (decoded - x)^2) / sum(w) over every element (w broadcast over the channels);
// weight 0: plain MSE.
at::Tensor foreground_weighted_mse(const at::Tensor& decoded, const at::Tensor& x, double weight);

// Weights of a latent grid (a diffusion loss over latents): images [B,C,H,W] -> [B,1,H/patch,W/patch],
// 1 + weight where any pixel of the position's patch x patch is foreground, 1 elsewhere.
at::Tensor latent_foreground_weights(const at::Tensor& images, int64_t patch, double weight);

// The weighted mean of squared [B,C,...] per sample, w [B,1,...] broadcast over the channels:
// sum(w * squared) / (C * sum(w)) for each b -> [B].
at::Tensor weighted_mean_per_sample(const at::Tensor& squared, const at::Tensor& w);

}  // namespace genvis::train
