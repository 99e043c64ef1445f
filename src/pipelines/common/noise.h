// Seeded initial noise of any rank: images [B,C,h,w], videos [B,C,T,h,w], token grids, GAN
// latent vectors [B,Z]. Sample i of a batch is drawn from its own generator seeded seed + i, so a
// sample does not depend on the batch it was made in, and the same seed gives the same noise on
// every device (drawn on the CPU in f32, then moved and cast; see core/rng.h).
//
//   at::Tensor x = seeded_noise(seed, batch, {4, h, w}, opts);          // [batch, 4, h, w]
#pragma once
#include <ATen/ATen.h>
#include <cstdint>

namespace genvis::pipelines {

// [batch, per_sample...]: sample i is Rng(seed + i).randn([1, per_sample...]).
at::Tensor seeded_noise(uint64_t seed, int64_t batch, at::IntArrayRef per_sample, const at::TensorOptions& options);

// The stream for noise drawn while sampling (ancestral/SDE samplers, VAE posteriors): a seed
// kept apart from the initial noise's seed + i streams.
uint64_t sampler_seed(uint64_t seed);

}  // namespace genvis::pipelines
