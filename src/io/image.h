// 8/16-bit images and PNG files (with their text chunks), independent of libtorch: the PNG
// reader is fuzzed on its own (fuzz/png_text_fuzz.cpp).
//
//   genvis::io::Image img = genvis::io::read_png("in.png");         // any PNG colour type
//   genvis::io::Image rgb = img.to_8bit().with_channels(3);
//   genvis::io::write_png("out.png", rgb, {{"parameters", "a cat\nSteps: 20, ..."}});
//   for (const auto& [key, text] : genvis::io::read_png_text("out.png")) { ... }
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace genvis::io {

// Pixels are row-major HWC: pixels[(y * width + x) * channels + c].
// channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. Values are 0..255 when bit_depth == 8 and
// 0..65535 when bit_depth == 16 (never scaled into the high byte).
struct Image {
  int width = 0, height = 0, channels = 0;
  int bit_depth = 8;
  std::vector<uint16_t> pixels;

  // A width x height image with every sample set to `fill`; throws UsageError on bad sizes.
  static Image blank(int width, int height, int channels, int bit_depth = 8, uint16_t fill = 0);

  int max_value() const { return bit_depth == 16 ? 65535 : 255; }
  bool has_alpha() const { return channels == 2 || channels == 4; }
  bool empty() const { return pixels.empty(); }
  size_t index(int x, int y, int c) const {
    return (static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) *
               static_cast<size_t>(channels) + static_cast<size_t>(c);
  }
  uint16_t at(int x, int y, int c) const { return pixels[index(x, y, c)]; }
  uint16_t& at(int x, int y, int c) { return pixels[index(x, y, c)]; }

  // 16-bit samples become round(v / 257); 8-bit images are returned unchanged.
  Image to_8bit() const;
  // Converts between gray (1), gray+alpha (2), RGB (3) and RGBA (4). Gray is replicated to RGB;
  // RGB becomes gray by PIL's "L" weights (0.299, 0.587, 0.114, rounded); a missing alpha is
  // opaque; a dropped alpha is discarded (no compositing).
  Image with_channels(int channels) const;
  // Throws UsageError naming `what` unless sizes, bit depth and sample values are consistent.
  void validate(const std::string& what) const;
};

// Keyword and UTF-8 text of one tEXt, zTXt or iTXt chunk, in file order.
using PngText = std::vector<std::pair<std::string, std::string>>;

// Decodes any PNG (1/2/4/8/16-bit; gray, gray+alpha, RGB, RGBA, palette; interlaced or not).
// Palettes expand to RGB, tRNS becomes an alpha channel, bit depths below 8 scale to 8-bit,
// 16-bit stays 16-bit. Throws LoadError naming the file for anything that is not a complete,
// valid PNG, and for images over 65535 pixels a side or 2^31 samples.
Image read_png(const std::string& path);
Image decode_png(const uint8_t* data, size_t size, const std::string& name_for_errors);

// Reads every tEXt/zTXt/iTXt chunk (before and after the image data) without decoding pixels.
// Latin-1 (tEXt, zTXt, keywords) is converted to UTF-8; invalid UTF-8 in iTXt becomes U+FFFD.
// A compressed chunk that inflates past 8 MiB, or more than 32 MiB of text in all, is refused
// with LoadError (compression bombs), as is a malformed text chunk or a truncated file.
PngText read_png_text(const std::string& path);
PngText decode_png_text(const uint8_t* data, size_t size, const std::string& name_for_errors);

// Encodes an 8- or 16-bit gray/gray+alpha/RGB/RGBA image (non-interlaced) with the text chunks
// placed before the image data. Like PIL's PngInfo.add_text (which AUTOMATIC1111 uses for
// "parameters"), text that Latin-1 can represent is written as tEXt, anything else as an
// uncompressed iTXt. Keys must be 1-79 printable Latin-1 characters without leading, trailing
// or double spaces; text must be valid UTF-8 without NUL. Violations throw UsageError.
std::string encode_png(const Image& image, const PngText& text = {});
// encode_png written atomically (a reader sees the old file or the complete new one).
void write_png(const std::string& path, const Image& image, const PngText& text = {});

}  // namespace genvis::io
