// Seeded random source.
//
// Reproducibility: the same seed gives bit-identical noise on the same machine and libtorch
// build, on any device, because noise is always drawn on the CPU in float32 (Philox/mt19937 of
// libtorch's CPU generator) and then moved and cast. The NOISE is therefore identical across CPU
// and GPU; the RESULTS of a model computed from it are not bit-identical across devices, dtypes,
// thread counts or libtorch versions (different kernels, reduction orders and TF32/bf16
// rounding), only close.
#pragma once
#include <ATen/ATen.h>
#include <cstdint>
#include <vector>

namespace genvis {

class Rng {
public:
  explicit Rng(uint64_t seed);

  uint64_t seed() const { return seed_; }

  // Standard normal noise of the given shape, drawn on CPU in f32, then moved/cast.
  at::Tensor randn(at::IntArrayRef shape, const at::TensorOptions& options = {});
  // Uniform [0, 1).
  at::Tensor rand(at::IntArrayRef shape, const at::TensorOptions& options = {});
  // Uniform integers in [low, high).
  int64_t randint(int64_t low, int64_t high);

  // Opaque generator state, for checkpoints (resume continues the same stream).
  std::vector<uint8_t> state() const;
  void set_state(const std::vector<uint8_t>& state);

  at::Generator& generator() { return gen_; }

private:
  uint64_t seed_;
  at::Generator gen_;
};

}  // namespace genvis
