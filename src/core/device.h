// Device and dtype policy: what `--device` and `--dtype` mean, and their automatic defaults.
//
//   --device auto|cpu|cuda|cuda:N   auto = cuda:0 when a CUDA device is present, else cpu
//   --dtype  auto|f32|bf16|f16      auto = f16 on CUDA (bf16 where the GPU supports it), f32 on CPU
//
// Never hard-code a device: take a ComputePolicy from resolve_policy() and pass it down.
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <optional>
#include <string>
#include <string_view>

namespace genvis {

struct ComputePolicy {
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = c10::kFloat;
};

// Parses a device name; "auto" gives std::nullopt. Throws UsageError on anything else.
std::optional<c10::Device> parse_device(std::string_view text);

// Parses a dtype name (f32/fp32/float32/float, bf16/bfloat16, f16/fp16/half/float16, f64);
// "auto" gives std::nullopt. Throws UsageError on anything else.
std::optional<c10::ScalarType> parse_dtype(std::string_view text);

// Resolves the user's choice into a concrete policy, checking that the device exists.
ComputePolicy resolve_policy(std::string_view device = "auto", std::string_view dtype = "auto");

// Short names used in messages, file metadata and --dtype: "f32", "bf16", "f16", "i64", ...
std::string dtype_name(c10::ScalarType dtype);
std::string device_name(const c10::Device& device);

}  // namespace genvis
