#include "io/exif.h"

#include "core/error.h"
#include "io/utf8.h"

#include <algorithm>
#include <cstring>

namespace genvis::io {
namespace {

constexpr uint16_t kExifIfdPointer = 0x8769;
constexpr uint16_t kUserComment = 0x9286;
constexpr uint16_t kTypeAscii = 2, kTypeLong = 4, kTypeUndefined = 7;
constexpr uint16_t kMaxIfdEntries = 4096;
constexpr char kUnicodeCode[8] = {'U', 'N', 'I', 'C', 'O', 'D', 'E', '\0'};
constexpr char kAsciiCode[8] = {'A', 'S', 'C', 'I', 'I', '\0', '\0', '\0'};

void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xFF);
}
void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v & 0xFFFF));
}
// One IFD entry: tag, type, count, value or offset (big-endian).
void put_entry(std::string& out, uint16_t tag, uint16_t type, uint32_t count, uint32_t value) {
  put16(out, tag);
  put16(out, type);
  put32(out, count);
  put32(out, value);
}

// Reads a TIFF block of either byte order, every access bounds-checked.
struct Tiff {
  const uint8_t* data;
  size_t size;
  bool big_endian;
  const std::string& name;

  LoadError bad(const std::string& why) const { return LoadError(name, "malformed EXIF: " + why); }
  uint16_t u16(size_t at) const {
    if (at > size || size - at < 2) throw bad("offset " + std::to_string(at) + " is outside the block");
    return big_endian ? static_cast<uint16_t>(data[at] << 8 | data[at + 1])
                      : static_cast<uint16_t>(data[at + 1] << 8 | data[at]);
  }
  uint32_t u32(size_t at) const {
    const uint32_t a = u16(at), b = u16(at + 2);
    return big_endian ? (a << 16 | b) : (b << 16 | a);
  }
  // The entry of `tag` in the IFD at `offset`: its byte position, or 0 when absent.
  size_t find(size_t offset, uint16_t tag) const {
    const uint16_t count = u16(offset);
    if (count > kMaxIfdEntries) throw bad("IFD of " + std::to_string(count) + " entries");
    for (size_t i = 0; i < count; ++i) {
      const size_t entry = offset + 2 + 12 * i;
      if (u16(entry) == tag) return entry;
    }
    return 0;
  }
};

std::string utf16_to_utf8(const uint8_t* p, size_t n, bool big_endian) {
  if (n >= 2 && ((p[0] == 0xFE && p[1] == 0xFF) || (p[0] == 0xFF && p[1] == 0xFE))) {
    big_endian = p[0] == 0xFE;
    p += 2, n -= 2;
  }
  const auto unit = [&](size_t i) {
    return big_endian ? static_cast<char32_t>(p[2 * i] << 8 | p[2 * i + 1])
                      : static_cast<char32_t>(p[2 * i + 1] << 8 | p[2 * i]);
  };
  std::string out;
  const size_t units = n / 2;
  for (size_t i = 0; i < units; ++i) {
    const char32_t u = unit(i);
    if (u >= 0xD800 && u <= 0xDBFF && i + 1 < units && unit(i + 1) >= 0xDC00 && unit(i + 1) <= 0xDFFF) {
      utf8::append(out, 0x10000 + ((u - 0xD800) << 10) + (unit(i + 1) - 0xDC00));
      ++i;
    } else {
      utf8::append(out, u);  // a lone surrogate becomes U+FFFD
    }
  }
  if (n % 2) utf8::append(out, utf8::kReplacement);
  return out;
}

}  // namespace

std::string encode_exif_user_comment(const std::string& text) {
  if (!utf8::is_valid(text)) throw UsageError("EXIF UserComment: text is not valid UTF-8");
  std::string comment(kUnicodeCode, 8);
  // Readers take a leading FE FF / FF FE as a byte-order mark; a text that itself starts with
  // U+FEFF or U+FFFE gets an explicit big-endian mark first so that character survives.
  if (!text.empty()) {
    size_t first = 0;
    const char32_t cp = utf8::decode(text, first);
    if (cp == 0xFEFF || cp == 0xFFFE) put16(comment, 0xFEFF);
  }
  for (size_t i = 0; i < text.size();) {
    const char32_t cp = utf8::decode(text, i);
    if (cp >= 0x10000) {
      put16(comment, static_cast<uint16_t>(0xD800 + ((cp - 0x10000) >> 10)));
      put16(comment, static_cast<uint16_t>(0xDC00 + ((cp - 0x10000) & 0x3FF)));
    } else {
      put16(comment, static_cast<uint16_t>(cp));
    }
  }
  if (comment.size() > 0xFFFFFF00u) throw UsageError("EXIF UserComment: text too long");
  // Header (8) | IFD0 at 8: 1 entry (2 + 12 + 4) | Exif IFD at 26: 1 entry (2 + 12 + 4) | comment at 44.
  std::string out = {'M', 'M', 0, 42};
  put32(out, 8);
  put16(out, 1);
  put_entry(out, kExifIfdPointer, kTypeLong, 1, 26);
  put32(out, 0);
  put16(out, 1);
  put_entry(out, kUserComment, kTypeUndefined, static_cast<uint32_t>(comment.size()), 44);
  put32(out, 0);
  return out + comment;
}

std::optional<std::string> decode_exif_user_comment(const uint8_t* data, size_t size, const std::string& name) {
  if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) data += 6, size -= 6;
  if (size < 8) throw LoadError(name, "malformed EXIF: " + std::to_string(size) + " bytes");
  bool big_endian = false;
  if (data[0] == 'M' && data[1] == 'M') big_endian = true;
  else if (!(data[0] == 'I' && data[1] == 'I')) throw LoadError(name, "malformed EXIF: no II/MM byte-order mark");
  const Tiff tiff{data, size, big_endian, name};
  if (tiff.u16(2) != 42) throw tiff.bad("TIFF magic is not 42");

  const size_t pointer = tiff.find(tiff.u32(4), kExifIfdPointer);
  if (!pointer) return std::nullopt;
  const size_t entry = tiff.find(tiff.u32(pointer + 8), kUserComment);
  if (!entry) return std::nullopt;
  const uint16_t type = tiff.u16(entry + 2);
  if (type != kTypeUndefined && type != kTypeAscii) throw tiff.bad("UserComment of type " + std::to_string(type));
  const uint32_t count = tiff.u32(entry + 4);
  const size_t offset = count <= 4 ? entry + 8 : tiff.u32(entry + 8);
  if (offset > size || size - offset < count) throw tiff.bad("UserComment runs past the end of the block");
  const uint8_t* p = data + offset;
  size_t n = count;

  std::string text;
  if (n >= 8 && std::memcmp(p, kUnicodeCode, 8) == 0) {
    text = utf16_to_utf8(p + 8, n - 8, big_endian);
  } else if (n >= 8 && std::memcmp(p, kAsciiCode, 8) == 0) {
    text = utf8::sanitize(std::string_view(reinterpret_cast<const char*>(p + 8), n - 8));
  } else {
    // The undefined code (8 NULs), or no code at all: taken as UTF-8 like A1111's fallback.
    if (n >= 8 && std::all_of(p, p + 8, [](uint8_t b) { return b == 0; })) p += 8, n -= 8;
    text = utf8::sanitize(std::string_view(reinterpret_cast<const char*>(p), n));
  }
  while (!text.empty() && text.back() == '\0') text.pop_back();
  return text;
}

}  // namespace genvis::io
