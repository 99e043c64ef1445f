// libFuzzer target for what `genvis serve` reads from a request body before any model runs: JSON
// objects, typed A1111 fields, base64 (standard, URL-safe, data: URLs), sizes ("WxH") and PNG
// headers checked against the limits.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I src -I apps/server \
//       fuzz/server_request_fuzz.cpp apps/server/request_fields.cpp src/io/png.cpp src/core/file.cpp \
//       -lpng -lcrypto -o /tmp/server_request_fuzz
//   /tmp/server_request_fuzz -max_total_time=120 fuzz/corpus/server_request
//
// Checks beyond "no crash": every refusal is a BadRequest with a 4xx status; base64 round-trips
// (decode(encode(x)) == x); an accepted body's fields hold the documented invariants.
#include "request_fields.h"

#include "core/error.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
  }
}

template <typename F>
void refused_cleanly(F&& f) {
  try {
    f();
  } catch (const genvis::server::BadRequest& e) {
    check(e.status() >= 400 && e.status() < 500, "a BadRequest has a 4xx status");
    check(e.what()[0] != '\0', "a BadRequest has a message");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace genvis::server;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const Limits limits{.max_width = 64, .max_height = 64};

  // The whole input as a request body.
  refused_cleanly([&] {
    const nlohmann::json body = parse_object(input);
    const GenerationFields f = read_generation_fields(body);
    check(f.seed >= -1, "seed is -1 or non-negative");
    check(f.batch_size >= 1 && f.n_iter >= 1, "batch_size and n_iter are positive");
    check(f.mask.empty() || !f.init_image.empty(), "a mask comes with an init image");
    check(f.video_format == "mp4" || f.video_format == "webp", "video_format is known");
    if (!f.init_image.empty()) {
      const genvis::io::Image image = decode_png_checked(f.init_image, "init_images", limits);
      check(image.width <= 128 && image.height <= 128, "decoded images respect the limits");
    }
    if (const auto s = get_string(body, "size")) {
      const auto [w, h] = parse_size(*s);
      check(w > 0 && h > 0, "sizes are positive");
    }
  });
  // The input as base64 text, and as bytes that must survive a round trip.
  refused_cleanly([&] { (void)base64_decode(input, "image"); });
  check(base64_decode(base64_encode(input), "image") == input, "base64 round trip");
  // The input as a PNG.
  refused_cleanly([&] { (void)decode_png_checked(input, "image", limits); });
  return 0;
}
