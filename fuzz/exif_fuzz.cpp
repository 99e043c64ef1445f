// libFuzzer target for the EXIF UserComment reader (the generation parameters of WebP videos).
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I src fuzz/exif_fuzz.cpp \
//       src/io/exif.cpp -o /tmp/exif_fuzz
//   /tmp/exif_fuzz -max_total_time=120 fuzz/corpus/exif
//
// Checks beyond "no crash": a comment that decodes is valid UTF-8, and it survives
// encode -> decode unchanged.
#include "core/error.h"
#include "io/exif.h"
#include "io/utf8.h"

#include <cstdio>
#include <cstdlib>

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto text = genvis::io::decode_exif_user_comment(data, size, "fuzz.webp");
    if (!text) return 0;
    check(genvis::io::utf8::is_valid(*text), "the comment is valid UTF-8");
    std::string expected = *text;
    while (!expected.empty() && expected.back() == '\0') expected.pop_back();
    check(genvis::io::decode_exif_user_comment(genvis::io::encode_exif_user_comment(*text)) == expected,
          "decode(encode(text)) == text");
  } catch (const genvis::Error&) {
  }
  return 0;
}
