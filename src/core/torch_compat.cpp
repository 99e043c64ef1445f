#include "core/torch_compat.h"

#include <torch/cuda.h>

namespace genvis::compat {

int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

bool cuda_supports_bf16(int index) {
  if (index < 0 || index >= cuda_device_count()) return false;
  // Reported via the CUDA hooks so that this file needs no CUDA headers.
  return at::detail::getCUDAHooks().supportsBFloat16ConvolutionWithCuDNNv8();
}

}  // namespace genvis::compat
