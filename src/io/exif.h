// The one EXIF field genvis writes and reads: UserComment (tag 0x9286 in the Exif IFD), where
// AUTOMATIC1111 keeps the generation parameters of its JPEG and WebP images (piexif's
// UserComment.dump(text, encoding="unicode"): "UNICODE\0" then UTF-16BE, in a big-endian TIFF).
// Animated WebPs written by genvis carry their parameters this way (io/video.h), so exiftool,
// PIL and A1111's "PNG Info" tab show them. Independent of libtorch; fuzzed on its own
// (fuzz/exif_fuzz.cpp).
//
//   std::string exif = genvis::io::encode_exif_user_comment(io::format_infotext(params));
//   std::optional<std::string> text = genvis::io::decode_exif_user_comment(exif);
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace genvis::io {

// A big-endian TIFF ("MM", no "Exif\0\0" prefix, as a WebP EXIF chunk holds it) with IFD0 holding
// only the Exif IFD pointer and the Exif IFD holding only UserComment: the "UNICODE\0" charset
// code and the UTF-8 `text` as UTF-16BE. UsageError if `text` is not valid UTF-8.
std::string encode_exif_user_comment(const std::string& text);

// The UserComment of an EXIF block (with or without the "Exif\0\0" prefix, either byte order) as
// UTF-8 with trailing NULs removed; nullopt when the block has none. Charsets: UNICODE (UTF-16;
// a BOM decides the byte order, else the TIFF's), ASCII, and the undefined code (8 NULs) read
// as UTF-8; invalid sequences become U+FFFD. LoadError naming `name_for_errors` when the block
// is malformed (bad header, offsets or counts outside it).
std::optional<std::string> decode_exif_user_comment(const uint8_t* data, size_t size,
                                                    const std::string& name_for_errors = "EXIF");
inline std::optional<std::string> decode_exif_user_comment(const std::string& data,
                                                           const std::string& name_for_errors = "EXIF") {
  return decode_exif_user_comment(reinterpret_cast<const uint8_t*>(data.data()), data.size(), name_for_errors);
}

}  // namespace genvis::io
