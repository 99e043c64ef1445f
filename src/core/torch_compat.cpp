#include "core/torch_compat.h"

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>

namespace genvis::compat {

bool autocast_enabled(at::DeviceType d) {
#if GENVIS_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(d);
#else
  return d == at::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

namespace {

void set_autocast_enabled(at::DeviceType d, bool on) {
#if GENVIS_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(d, on);
#else
  if (d == at::kCPU)
    at::autocast::set_cpu_enabled(on);
  else
    at::autocast::set_enabled(on);
#endif
}
at::ScalarType autocast_dtype(at::DeviceType d) {
#if GENVIS_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(d);
#else
  return d == at::kCPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
#endif
}
void set_autocast_dtype(at::DeviceType d, at::ScalarType t) {
#if GENVIS_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(d, t);
#else
  if (d == at::kCPU)
    at::autocast::set_autocast_cpu_dtype(t);
  else
    at::autocast::set_autocast_gpu_dtype(t);
#endif
}

}  // namespace

AutocastGuard::AutocastGuard(at::DeviceType device, at::ScalarType dtype, bool enabled)
    : device_(device), was_enabled_(autocast_enabled(device)), was_dtype_(autocast_dtype(device)) {
  set_autocast_dtype(device, dtype);
  set_autocast_enabled(device, enabled);
}

AutocastGuard::~AutocastGuard() {
  set_autocast_enabled(device_, was_enabled_);
  set_autocast_dtype(device_, was_dtype_);
  at::autocast::clear_cache();
}

int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

bool cuda_supports_bf16(int index) {
  if (index < 0 || index >= cuda_device_count()) return false;
  // Reported via the CUDA hooks so that this file needs no CUDA headers.
  return at::detail::getCUDAHooks().supportsBFloat16ConvolutionWithCuDNNv8();
}

void set_cuda_tf32(bool allowed) {
  auto& ctx = at::globalContext();
  ctx.setAllowTF32CuDNN(allowed);
#if GENVIS_TORCH_AT_LEAST(1, 12)
  ctx.setFloat32MatmulPrecision(allowed ? "high" : "highest");
#else
  ctx.setAllowTF32CuBLAS(allowed);
#endif
}

}  // namespace genvis::compat
