// The ONE place that knows which libtorch we were built against. Debian's libtorch-dev is 1.13
// (CPU); CUDA builds use libtorch 2.x. Everything version-dependent goes through here.
#pragma once
#include <torch/version.h>
#include <ATen/ATen.h>
#include <optional>

#define GENVIS_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// float8 scalar types exist from libtorch 2.1 on.
#if GENVIS_TORCH_AT_LEAST(2, 1)
#define GENVIS_HAS_FLOAT8 1
#else
#define GENVIS_HAS_FLOAT8 0
#endif

// at::scaled_dot_product_attention exists from libtorch 2.0 on.
#if GENVIS_TORCH_AT_LEAST(2, 0)
#define GENVIS_HAS_SDPA 1
#else
#define GENVIS_HAS_SDPA 0
#endif

namespace genvis::compat {

inline const char* torch_version() { return TORCH_VERSION; }

// The float8 types of the safetensors spec, where this libtorch has them.
inline std::optional<at::ScalarType> float8_e4m3fn() {
#if GENVIS_HAS_FLOAT8
  return at::ScalarType::Float8_e4m3fn;
#else
  return std::nullopt;
#endif
}
inline std::optional<at::ScalarType> float8_e5m2() {
#if GENVIS_HAS_FLOAT8
  return at::ScalarType::Float8_e5m2;
#else
  return std::nullopt;
#endif
}

// Mixed precision (torch.autocast) on one device type for the guard's lifetime; the previous
// state is restored on destruction. The autocast API changed names in libtorch 2.4.
class AutocastGuard {
public:
  AutocastGuard(at::DeviceType device, at::ScalarType dtype, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

private:
  at::DeviceType device_;
  bool was_enabled_;
  at::ScalarType was_dtype_;
};

// Whether autocast is on for this device type in the calling thread.
bool autocast_enabled(at::DeviceType device);

// Number of CUDA devices (0 in a CPU-only build).
int cuda_device_count();

// Whether bfloat16 matmuls are natively fast on this CUDA device (compute capability >= 8).
bool cuda_supports_bf16(int index);

// TF32 in CUDA matmuls and cuDNN convolutions on (true) or off (false: float32 means float32).
// libtorch enables TF32 for cuDNN convolutions by default, which moves float32 results by ~1e-3
// relative; genvis turns it off whenever float32 is asked for on a CUDA device.
void set_cuda_tf32(bool allowed);

}  // namespace genvis::compat
