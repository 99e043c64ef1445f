// Converting any readable weight file to safetensors, optionally casting floating tensors.
#pragma once
#include <ATen/ATen.h>
#include <functional>
#include <optional>
#include <string>

namespace genvis::io {

struct ConvertOptions {
  std::optional<at::ScalarType> dtype;  // cast floating tensors to this; others keep their type
  bool overwrite = false;               // replace an existing output file
  // Called after each tensor is written: (tensors done, total).
  std::function<void(size_t, size_t)> on_progress;
};

struct ConvertResult {
  size_t tensors = 0;
  size_t cast = 0;  // how many were cast
  uint64_t bytes_in = 0, bytes_out = 0;
};

// Streams tensors one at a time: memory holds the mapping plus one tensor. The output is
// written atomically; the input's metadata is kept and "format": "pt" added when absent.
ConvertResult convert_to_safetensors(const std::string& in, const std::string& out, const ConvertOptions& options);

}  // namespace genvis::io
