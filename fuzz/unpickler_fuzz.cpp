// libFuzzer target for the restricted unpickler and the checkpoint index built on it.
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I src fuzz/unpickler_fuzz.cpp \
//     src/io/pickle.cpp src/io/dtype.cpp src/core/file.cpp -o /tmp/unpickler_fuzz
//   /tmp/unpickler_fuzz -max_total_time=120 fuzz/corpus/unpickler
// Any exception other than genvis::Error, any crash, leak or sanitizer report is a bug.
#include "core/error.h"
#include "io/pickle.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // Small limits so that the fuzzer reaches them quickly.
    genvis::io::UnpickleLimits limits;
    limits.max_values = 1 << 16;
    limits.max_stack = 1 << 12;
    limits.max_marks = 64;
    limits.max_memo = 1 << 12;
    const auto doc = genvis::io::unpickle(data, size, "fuzz.pkl", limits);
    (void)doc.storages();
    const auto index = genvis::io::index_checkpoint(doc, "fuzz.pkl");
    (void)index;
  } catch (const genvis::Error&) {
  }
  // The legacy stream sniffing reads a prefix of untrusted bytes too.
  (void)genvis::io::legacy_magic_length(data, size);
  return 0;
}
