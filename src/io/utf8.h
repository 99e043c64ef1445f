// Minimal UTF-8 helpers shared by the PNG text, infotext and caption code (header-only so the
// fuzz target links nothing more).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace genvis::io::utf8 {

constexpr char32_t kReplacement = 0xFFFD;

// Decodes the code point starting at s[i] and advances i past it. An invalid or truncated
// sequence (overlong forms and surrogates included) consumes one byte and yields U+FFFD with
// *valid set to false.
inline char32_t decode(std::string_view s, size_t& i, bool* valid = nullptr) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(i);
  if (valid) *valid = true;
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int extra = 0;
  char32_t cp = 0, min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) extra = 1, cp = b0 & 0x1F, min = 0x80;
  else if (b0 >= 0xE0 && b0 <= 0xEF) extra = 2, cp = b0 & 0x0F, min = 0x800;
  else if (b0 >= 0xF0 && b0 <= 0xF4) extra = 3, cp = b0 & 0x07, min = 0x10000;
  bool ok = extra > 0 && s.size() - i > static_cast<size_t>(extra);
  for (int k = 1; ok && k <= extra; ++k) {
    const uint8_t b = byte(i + static_cast<size_t>(k));
    if ((b & 0xC0) != 0x80) ok = false;
    else cp = (cp << 6) | (b & 0x3F);
  }
  if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
  if (!ok) {
    ++i;
    if (valid) *valid = false;
    return kReplacement;
  }
  i += static_cast<size_t>(extra) + 1;
  return cp;
}

inline void append(std::string& out, char32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacement;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline bool is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    bool ok = true;
    decode(s, i, &ok);
    if (!ok) return false;
  }
  return true;
}

// Replaces every invalid sequence by U+FFFD.
inline std::string sanitize(std::string_view s) {
  if (is_valid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) append(out, decode(s, i));
  return out;
}

inline std::string from_latin1(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) append(out, static_cast<uint8_t>(c));
  return out;
}

}  // namespace genvis::io::utf8
