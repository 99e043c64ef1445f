#include "core/rng.h"

#include "core/error.h"

#include <ATen/CPUGeneratorImpl.h>
#include <cstring>

namespace genvis {

Rng::Rng(uint64_t seed) : seed_(seed), gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

at::Tensor Rng::randn(at::IntArrayRef shape, const at::TensorOptions& options) {
  // at::randn locks the generator itself.
  const at::Tensor cpu = at::randn(shape, gen_, at::TensorOptions().dtype(at::kFloat));
  return cpu.to(options.device(), c10::typeMetaToScalarType(options.dtype()));
}

at::Tensor Rng::rand(at::IntArrayRef shape, const at::TensorOptions& options) {
  const at::Tensor cpu = at::rand(shape, gen_, at::TensorOptions().dtype(at::kFloat));
  return cpu.to(options.device(), c10::typeMetaToScalarType(options.dtype()));
}

int64_t Rng::randint(int64_t low, int64_t high) {
  if (high <= low) throw UsageError("randint: empty range");
  return at::randint(low, high, {1}, gen_, at::TensorOptions().dtype(at::kLong)).item<int64_t>();
}

std::vector<uint8_t> Rng::state() const {
  const at::Tensor s = gen_.get_state();
  const auto* p = s.data_ptr<uint8_t>();
  return std::vector<uint8_t>(p, p + s.numel());
}

void Rng::set_state(const std::vector<uint8_t>& state) {
  at::Tensor s = at::empty({static_cast<int64_t>(state.size())}, at::kByte);
  std::memcpy(s.data_ptr<uint8_t>(), state.data(), state.size());
  try {
    gen_.set_state(s);
  } catch (const c10::Error& e) {
    throw LoadError("", "random generator state", "invalid state (" + std::to_string(state.size()) + " bytes)");
  }
}

}  // namespace genvis
