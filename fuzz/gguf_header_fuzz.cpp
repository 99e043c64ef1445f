// libFuzzer target: the GGUF header parser and validator, and the block dequantisers, on
// arbitrary bytes.
#include "core/error.h"
#include "io/gguf_format.h"

#include <cstdint>
#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace genvis::io;
  try {
    const GgufHeader h = parse_gguf_header(data, size, "fuzz");
    // A header that validates describes tensors inside the file: dequantise each (bounded work).
    uint64_t budget = uint64_t(1) << 22;
    for (const auto& t : h.tensors) {
      if (h.data_offset + t.offset + t.nbytes > size) std::abort();
      if (!ggml_is_dequantizable(t.type) || t.numel > budget) continue;
      budget -= t.numel;
      std::vector<float> out(t.numel);
      dequantize_ggml(t.type, data + h.data_offset + t.offset, t.numel, out.data());
    }
    // Writing it back must give a header that parses again, with the same tensors.
    auto tensors = h.tensors;
    std::vector<GgufKV> metadata;
    for (const auto& kv : h.metadata)
      if (kv.key != "general.alignment") metadata.push_back(kv);
    if (h.alignment != 32) metadata.push_back({"general.alignment", GgufValueType::U32, GgufValueType::U8, h.alignment});
    std::string bytes = build_gguf_header(metadata, tensors, h.alignment);
    uint64_t end = 0;
    for (const auto& t : tensors) end = std::max(end, t.offset + t.nbytes);
    bytes.resize(bytes.size() + end, '\0');
    const GgufHeader again = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "fuzz-again");
    if (again.tensors.size() != h.tensors.size() || again.metadata.size() != metadata.size()) std::abort();
  } catch (const genvis::Error&) {
  }
  return 0;
}
