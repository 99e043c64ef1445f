// Element types of weight files, independent of libtorch (the parsers that the fuzzers exercise
// use this alone). Names are the safetensors spellings.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace genvis::io {

// Serialised in no file of ours by number: order may change, names may not.
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);                       // "F32", "BF16", ...
std::optional<DType> parse_dtype_name(std::string_view s); // exact safetensors spelling
bool dtype_is_floating(DType dtype);

// Product of dims, or std::nullopt on negative dims or overflow past 2^62.
std::optional<uint64_t> checked_numel(const std::vector<int64_t>& shape);

// "[320, 4, 3, 3]"
std::string shape_string(const std::vector<int64_t>& shape);

// One tensor in a weight file, as described by its header: no data.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;  // bytes as stored
  std::string file;     // the file holding it (shards: each its own)
  // GGUF: the stored ggml type ("Q4_K", "F16"); `dtype` is then what loading gives (block types
  // are dequantised to F32). Empty for every other format.
  std::string storage;
};

}  // namespace genvis::io
