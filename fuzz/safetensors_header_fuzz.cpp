// libFuzzer target: the safetensors header parser and validator on arbitrary bytes.
#include "core/error.h"
#include "io/safetensors_header.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto header = genvis::io::parse_safetensors_header(data, size, "fuzz");
    // A header that validates must describe exactly the bytes present.
    uint64_t total = 0;
    for (const auto& t : header.tensors) {
      if (t.end > header.data_size || t.end - t.begin != t.info.nbytes) std::abort();
      total += t.info.nbytes;
    }
    if (total != header.data_size || header.data_offset + header.data_size != size) std::abort();
    // Writing it back must give a header that parses again.
    auto tensors = header.tensors;
    genvis::io::build_safetensors_header(tensors, header.metadata);
  } catch (const genvis::Error&) {
  }
  return 0;
}
