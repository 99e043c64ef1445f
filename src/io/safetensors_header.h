// safetensors header parsing and validation, without libtorch (fuzzed on its own).
//
// File layout: u64 little-endian N | N bytes of UTF-8 JSON | data region.
// The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the data region), plus an optional "__metadata__" object of string values.
// Validation is at least as strict as the reference implementation (huggingface/safetensors).
#pragma once
#include "io/dtype.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace genvis::io {

// The reference implementation's cap on the JSON header.
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

struct SafetensorsEntry {
  TensorInfo info;
  uint64_t begin = 0, end = 0;  // byte range inside the data region
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;  // in header order
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;  // 8 + N: start of the data region in the file
  uint64_t data_size = 0;    // bytes of the data region
};

// Parses and validates the header of a complete safetensors file held in `data[0, size)`.
// Throws LoadError naming `path` and, where it applies, the tensor.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, uint64_t size, const std::string& path);

// Serialises a header for the given tensors (offsets assigned in order, no gaps) and metadata,
// padded with spaces so that the data region starts at a multiple of 8. Returns the bytes of
// "u64 N | JSON" and fills begin/end of each entry.
std::string build_safetensors_header(std::vector<SafetensorsEntry>& tensors,
                                     const std::map<std::string, std::string>& metadata);

}  // namespace genvis::io
