#include "io/dtype.h"

namespace genvis::io {
namespace {
struct Entry {
  DType dtype;
  const char* name;
  size_t size;
  bool floating;
};
constexpr Entry kTable[] = {
    {DType::F64, "F64", 8, true},   {DType::F32, "F32", 4, true},        {DType::F16, "F16", 2, true},
    {DType::BF16, "BF16", 2, true}, {DType::I64, "I64", 8, false},       {DType::I32, "I32", 4, false},
    {DType::I16, "I16", 2, false},  {DType::I8, "I8", 1, false},         {DType::U8, "U8", 1, false},
    {DType::BOOL, "BOOL", 1, false}, {DType::F8_E4M3, "F8_E4M3", 1, true}, {DType::F8_E5M2, "F8_E5M2", 1, true},
};
const Entry& entry(DType d) { return kTable[static_cast<int>(d)]; }
}  // namespace

size_t dtype_size(DType dtype) { return entry(dtype).size; }
const char* dtype_name(DType dtype) { return entry(dtype).name; }
bool dtype_is_floating(DType dtype) { return entry(dtype).floating; }

std::optional<DType> parse_dtype_name(std::string_view s) {
  for (const auto& e : kTable)
    if (s == e.name) return e.dtype;
  return std::nullopt;
}

std::optional<uint64_t> checked_numel(const std::vector<int64_t>& shape) {
  constexpr uint64_t kMax = uint64_t(1) << 62;
  uint64_t n = 1;
  for (const int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > kMax / static_cast<uint64_t>(d)) return std::nullopt;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace genvis::io
