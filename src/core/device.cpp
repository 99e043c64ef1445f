#include "core/device.h"

#include "core/error.h"
#include "core/text.h"
#include "core/torch_compat.h"

#include <algorithm>
#include <cctype>

namespace genvis {
std::optional<c10::Device> parse_device(std::string_view text) {
  const std::string s = ascii_lower(text);
  if (s == "auto" || s.empty()) return std::nullopt;
  if (s == "cpu") return c10::Device(c10::kCPU);
  if (s == "cuda" || s == "gpu") return c10::Device(c10::kCUDA, 0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::string idx = s.substr(5);
    if (!idx.empty() && idx.size() <= 3 && std::all_of(idx.begin(), idx.end(), ::isdigit))
      return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(std::stoi(idx)));
  }
  throw UsageError("unknown device '" + std::string(text) + "' (expected auto, cpu, cuda or cuda:N)");
}

std::optional<c10::ScalarType> parse_dtype(std::string_view text) {
  const std::string s = ascii_lower(text);
  if (s == "auto" || s.empty()) return std::nullopt;
  if (s == "f32" || s == "fp32" || s == "float32" || s == "float") return c10::kFloat;
  if (s == "bf16" || s == "bfloat16") return c10::kBFloat16;
  if (s == "f16" || s == "fp16" || s == "float16" || s == "half") return c10::kHalf;
  if (s == "f64" || s == "fp64" || s == "float64" || s == "double") return c10::kDouble;
  throw UsageError("unknown dtype '" + std::string(text) + "' (expected auto, f32, bf16 or f16)");
}

ComputePolicy resolve_policy(std::string_view device_text, std::string_view dtype_text) {
  ComputePolicy policy;
  const auto device = parse_device(device_text);
  const int cuda_count = compat::cuda_device_count();
  if (device) {
    if (device->is_cuda()) {
      if (cuda_count == 0)
        throw UsageError("--device " + std::string(device_text) +
                         ": no CUDA device available (this libtorch " + compat::torch_version() +
                         (at::hasCUDA() ? " sees no GPU)" : " was built without CUDA)"));
      if (device->index() >= cuda_count)
        throw UsageError("--device " + std::string(device_text) + ": only " +
                         std::to_string(cuda_count) + " CUDA device(s) present");
    }
    policy.device = *device;
  } else {
    policy.device = cuda_count > 0 ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  }
  if (const auto dtype = parse_dtype(dtype_text)) {
    policy.dtype = *dtype;
  } else if (policy.device.is_cuda()) {
    policy.dtype = compat::cuda_supports_bf16(policy.device.index()) ? c10::kBFloat16 : c10::kHalf;
  } else {
    policy.dtype = c10::kFloat;
  }
  if (policy.device.is_cuda()) compat::set_cuda_tf32(policy.dtype != c10::kFloat);
  return policy;
}

std::string dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat: return "f32";
    case c10::kDouble: return "f64";
    case c10::kHalf: return "f16";
    case c10::kBFloat16: return "bf16";
    case c10::kLong: return "i64";
    case c10::kInt: return "i32";
    case c10::kShort: return "i16";
    case c10::kChar: return "i8";
    case c10::kByte: return "u8";
    case c10::kBool: return "bool";
    default: return c10::toString(dtype);
  }
}

std::string device_name(const c10::Device& device) { return device.str(); }

}  // namespace genvis
