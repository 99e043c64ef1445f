#include "pipelines/common/noise.h"

#include "core/error.h"
#include "core/rng.h"

#include <vector>

namespace genvis::pipelines {

at::Tensor seeded_noise(uint64_t seed, int64_t batch, at::IntArrayRef per_sample, const at::TensorOptions& options) {
  if (batch < 1) throw UsageError("seeded_noise: batch must be >= 1");
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), per_sample.begin(), per_sample.end());
  std::vector<at::Tensor> samples;
  samples.reserve(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) samples.push_back(Rng(seed + static_cast<uint64_t>(i)).randn(shape, options));
  return batch == 1 ? samples.front() : at::cat(samples);
}

uint64_t sampler_seed(uint64_t seed) { return seed + 0x9e3779b97f4a7c15ull; }

}  // namespace genvis::pipelines
