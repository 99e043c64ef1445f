// libFuzzer target for the PNG reader (pixels and text chunks) and the infotext parser.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I src fuzz/png_text_fuzz.cpp \
//       src/io/png.cpp src/io/infotext.cpp src/core/file.cpp -lpng -o /tmp/png_text_fuzz
//   /tmp/png_text_fuzz -max_total_time=120 fuzz/corpus/png_text
//
// Checks beyond "no crash": a decoded image re-encodes and decodes to the same pixels, and
// infotext parsing is stable: parse(format(p)) == p once p has 3+ pairs; otherwise (A1111
// reads a last line with fewer pairs as prompt text, and drops one whose pairs are all empty)
// repeating parse(format(...)) reaches a fixed point within 3 steps plus one per line.
#include "core/error.h"
#include "io/image.h"
#include "io/infotext.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
  }
}

size_t pair_count(const genvis::io::GenerationParameters& p) {
  return (p.steps ? 1 : 0) + (!p.sampler.empty() ? 1 : 0) + (!p.schedule.empty() ? 1 : 0) + (p.cfg_scale ? 1 : 0) +
         (p.seed ? 1 : 0) + (p.width && p.height ? 1 : 0) + (!p.model_hash.empty() ? 1 : 0) +
         (!p.model.empty() ? 1 : 0) + p.extra.size();
}

// A1111 strips "Negative prompt:" from EVERY negative-prompt line, so a negative prompt holding a
// line that itself starts with it loses that marker on each parse: no exact round trip.
bool negative_has_marker_line(const genvis::io::GenerationParameters& p) {
  std::string_view rest = p.negative_prompt;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
    if (line.rfind("Negative prompt:", 0) == 0) return true;
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return false;
}

void check_infotext(std::string_view text) {
  auto params = genvis::io::parse_infotext(text);
  // A1111 drops a last line of 3+ pairs that are all empty ("Aa: , Bb: , Cc:"), so a prompt
  // ending in such lines loses one per step: allow a step per line.
  const std::string first = genvis::io::format_infotext(params);
  const int max_steps = 3 + static_cast<int>(std::count(first.begin(), first.end(), '\n'));
  for (int step = 0;; ++step) {
    const std::string formatted = genvis::io::format_infotext(params);
    auto next = genvis::io::parse_infotext(formatted);
    if (pair_count(params) >= 3 && !negative_has_marker_line(params)) check(next == params, "parse(format(p)) == p for p with 3+ pairs");
    if (next == params) {
      check(genvis::io::format_infotext(next) == formatted, "format(parse(t)) == t at the fixed point");
      return;
    }
    check(step < max_steps, "parse(format(...)) reaches a fixed point");
    params = std::move(next);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    for (const auto& [key, text] : genvis::io::decode_png_text(data, size, "fuzz.png")) {
      (void)key;
      check_infotext(text);
    }
  } catch (const genvis::Error&) {
  }
  try {
    const genvis::io::Image image = genvis::io::decode_png(data, size, "fuzz.png");
    const std::string png = genvis::io::encode_png(image, {{"parameters", "x"}});
    const auto again = genvis::io::decode_png(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "re.png");
    check(again.pixels == image.pixels && again.width == image.width && again.channels == image.channels &&
              again.bit_depth == image.bit_depth,
          "decode(encode(image)) == image");
  } catch (const genvis::Error&) {
  }
  check_infotext(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
