// AUTOMATIC1111's "parameters" text (stored in the PNG text chunk of that name):
//
//   a cat on a sofa, best quality
//   Negative prompt: blurry, lowres
//   Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512,
//   Model hash: abcdef1234, Model: v1-5, Denoising strength: 0.75, Version: v1.10.1
//
// (the last line is one line). format_infotext writes that layout; parse_infotext follows
// A1111's parse_generation_parameters (modules/infotext_utils.py) and never throws.
//
//   std::string text = genvis::io::format_infotext(params);
//   genvis::io::write_png(path, image, {{genvis::io::kInfotextKey, text}});
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genvis::io {

inline constexpr const char* kInfotextKey = "parameters";

// Unset optionals and empty strings are left out of the text. Values may hold any UTF-8.
struct GenerationParameters {
  std::string prompt, negative_prompt;
  std::optional<int64_t> steps;           // "Steps"
  std::string sampler, schedule;          // "Sampler", "Schedule type"
  std::optional<double> cfg_scale;        // "CFG scale" (finite)
  std::optional<uint64_t> seed;           // "Seed"
  std::optional<int> width, height;       // "Size: WxH", written only when both are set
  std::string model, model_hash;          // "Model", "Model hash"
  // Every other "Key: value" pair in order ("Denoising strength", "Version", ...). Keys must
  // look like A1111 keys: a letter, digit or '_', then one or more letters, digits, '_', ' ',
  // '-' or '/'.
  // A standard key whose value does not parse (e.g. "Seed: -1") lands here as text.
  std::vector<std::pair<std::string, std::string>> extra;

  bool operator==(const GenerationParameters&) const = default;
};

// Prompt, then "Negative prompt: ..." when there is one, then one line of "Key: value" pairs in
// A1111's order (Steps, Sampler, Schedule type, CFG scale, Seed, Size, Model hash, Model, extra).
// Values holding ',', ':', '\n' or '"', starting or ending in whitespace, or empty, are written
// as JSON strings (A1111's quote(); A1111 itself leaves '"' and the whitespace cases bare, which
// do not survive its parser). The whole text is stripped of surrounding whitespace like A1111.
// Round trip: parse_infotext(format_infotext(p)) == p when p has at least 3 pairs (A1111 reads
// a last line with fewer as part of the prompt) and its prompt lines have no surrounding
// whitespace (A1111's parser strips every prompt line).
std::string format_infotext(const GenerationParameters& params);

// The last line holds the parameters if A1111's pattern finds at least 3 "key: value" pairs in
// it; earlier lines are the prompt, and from a line starting with "Negative prompt:" onward
// the negative prompt. Each prompt line is stripped. Quoted values are JSON-unquoted; a later
// duplicate key replaces an earlier value; empty values are skipped (as in A1111). Invalid
// UTF-8 becomes U+FFFD. Python's \w is approximated for non-ASCII characters.
GenerationParameters parse_infotext(std::string_view text);

// A1111's quote() with the extra cases above: the value as written after "Key: ".
std::string quote_infotext_value(std::string_view value);

}  // namespace genvis::io
