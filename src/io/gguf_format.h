// GGUF, ggml's model file format (what stable-diffusion.cpp, ComfyUI-GGUF and llama.cpp read and
// write), parsed and validated without libtorch (fuzzed on its own); ggml's block formats
// dequantised to f32; Q8_0 and Q4_0 quantisation for writing.
//
//   const GgufHeader h = parse_gguf_header(bytes, size, "unet-Q4_K.gguf");
//   for (const GgufTensor& t : h.tensors) {
//     std::vector<float> w(t.numel);
//     dequantize_ggml(t.type, bytes + h.data_offset + t.offset, t.numel, w.data());
//     // t.shape(): the PyTorch shape, outermost first (GGUF stores ne[], innermost first)
//   }
//
// Layout, little-endian: "GGUF" | u32 version (2 or 3) | u64 tensor count | u64 key/value count |
// key/value pairs (string key, u32 value type, value) | tensor infos (string name, u32 n_dims
// 1..4, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset into the data section) | zero
// padding to `general.alignment` (u32, a power of two; 32 when absent) | data section. A string
// is a u64 byte count and the bytes (UTF-8, no terminator); an array is the u32 element type, a
// u64 count and the elements.
//
// Validation is at least as strict as ggml's gguf.c: every count, string and array bounded by
// the bytes present, unique keys and tensor names, known value and tensor types, rows that are
// whole blocks, offsets aligned, every tensor's data inside the file and no two overlapping.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace genvis::io {

// ggml tensor types by their serialised ids (append-only in ggml).
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
};

// "Q4_K", "F16", ...; ids ggml defines that genvis does not read are named too ("IQ4_XS"), and
// any other id is "type 123".
std::string ggml_type_name(uint32_t type);
// Elements per block and bytes per block of a type genvis reads (nullopt otherwise).
struct GgmlBlock {
  uint32_t elements, bytes;
};
std::optional<GgmlBlock> ggml_block(uint32_t type);
// Whether dequantize_ggml turns the type into floats (every float and block type genvis reads;
// not the integer types, which load as integers).
bool ggml_is_dequantizable(GgmlType type);
// The parsed name ("q8_0", "Q8_0", "f16", ...), for command lines.
std::optional<GgmlType> parse_ggml_type(const std::string& name);

// GGUF metadata value types.
enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12,
};

struct GgufKV {
  std::string key;
  GgufValueType type = GgufValueType::STRING;
  GgufValueType element_type = GgufValueType::U8;  // arrays: the elements' type (never ARRAY: ggml has no nested arrays)
  nlohmann::json value;                             // number, bool, string, or array of them
};

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;  // as stored: innermost first
  uint64_t offset = 0;      // into the data section
  uint64_t numel = 0, nbytes = 0;
  // PyTorch order (outermost first): ne reversed.
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

struct GgufHeader {
  uint32_t version = 3;
  uint64_t alignment = 32;
  std::vector<GgufKV> metadata;  // in file order
  std::vector<GgufTensor> tensors;
  uint64_t data_offset = 0;  // start of the data section in the file
  const GgufKV* find(const std::string& key) const;
};

// Parses and validates a complete GGUF file held in `data[0, size)`. Throws LoadError naming
// `path` and, where it applies, the key or tensor.
GgufHeader parse_gguf_header(const uint8_t* data, uint64_t size, const std::string& path);

// The bytes of a GGUF file up to its data section for `metadata` and `tensors` (each tensor's
// offset assigned here, in order, every one aligned; `general.alignment` in metadata, if any,
// must match `alignment`). Version 3. Throws UsageError for values that do not fit their type.
std::string build_gguf_header(const std::vector<GgufKV>& metadata, std::vector<GgufTensor>& tensors,
                              uint64_t alignment = 32);

// `n` elements of type `type` at `src` (n a whole number of blocks) into `dst` as f32.
// UsageError for a type that is not dequantizable.
void dequantize_ggml(GgmlType type, const uint8_t* src, uint64_t n, float* dst);

// `n` floats (a whole number of blocks) in one of F32, F16, BF16, Q8_0 or Q4_0, as ggml's
// reference quantisers do (Q8_0: scale amax/127; Q4_0: scale max/-8, the signed value of largest
// magnitude). UsageError for any other type.
std::vector<uint8_t> quantize_ggml(GgmlType type, const float* src, uint64_t n);

}  // namespace genvis::io
