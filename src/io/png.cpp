#include "io/image.h"

#include "core/error.h"
#include "core/file.h"
#include "io/utf8.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <png.h>

// libpng reports errors by longjmp. Every function below that calls setjmp holds only plain
// pointers and PODs, so the jump never skips a destructor: the C++ objects (buffers, strings)
// live in the callers, which turn the failure into a typed error after the jump has landed.

namespace genvis::io {
namespace {

constexpr uint32_t kMaxSide = 65535;
constexpr uint64_t kMaxSamples = uint64_t{1} << 31;
constexpr size_t kMaxPngFileBytes = size_t{1} << 30;
constexpr size_t kMaxTextChunkBytes = size_t{8} << 20;   // one inflated zTXt/iTXt
constexpr size_t kMaxTotalTextBytes = size_t{32} << 20;  // all text chunks of a file
constexpr size_t kMaxTextChunks = 4096;
// Deflate cannot expand past 1032:1, so image data needing more inflated bytes than that
// proves the file truncated or corrupt before any image-sized allocation.
constexpr uint64_t kMaxDeflateRatio = 1032;

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

// Shared by the libpng callbacks through png_get_error_ptr / png_get_io_ptr.
struct PngIo {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  std::string* out = nullptr;
  char message[256] = {};
};

void on_error(png_structp png, png_const_charp message) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->message, sizeof io->message, "%s", message ? message : "unknown libpng error");
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (n > io->size - io->pos) png_error(png, "file is truncated");
  std::memcpy(out, io->data + io->pos, n);
  io->pos += n;
}

void on_write(png_structp png, png_bytep data, size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  bool failed = false;
  try {
    io->out->append(reinterpret_cast<const char*>(data), n);
  } catch (...) {
    failed = true;
  }
  if (failed) png_error(png, "out of memory");
}

void on_flush(png_structp) {}

struct ReadHandle {
  png_structp png = nullptr;
  png_infop info = nullptr;
  explicit ReadHandle(PngIo* io) {
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, io, on_error, on_warning);
    if (png) info = png_create_info_struct(png);
    if (!png || !info) {
      png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
      throw RuntimeError("out of memory creating a PNG reader");
    }
    png_set_read_fn(png, io, on_read);
  }
  ~ReadHandle() { png_destroy_read_struct(&png, &info, nullptr); }
  ReadHandle(const ReadHandle&) = delete;
  ReadHandle& operator=(const ReadHandle&) = delete;
};

struct WriteHandle {
  png_structp png = nullptr;
  png_infop info = nullptr;
  explicit WriteHandle(PngIo* io) {
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, io, on_error, on_warning);
    if (png) info = png_create_info_struct(png);
    if (!png || !info) {
      png_destroy_write_struct(&png, info ? &info : nullptr);
      throw RuntimeError("out of memory creating a PNG writer");
    }
    png_set_write_fn(png, io, on_write, on_flush);
  }
  ~WriteHandle() { png_destroy_write_struct(&png, &info); }
  WriteHandle(const WriteHandle&) = delete;
  WriteHandle& operator=(const WriteHandle&) = delete;
};

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

bool chunk_is(const uint8_t* type, const char* name) { return std::memcmp(type, name, 4) == 0; }

// The chunk layout, walked without libpng: sizes for the pre-allocation checks and the spans
// of the text chunks.
struct ChunkScan {
  uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  uint64_t idat_bytes = 0;
  std::vector<std::pair<size_t, size_t>> text_chunks;  // (offset, bytes) of whole chunks
};

ChunkScan scan_chunks(const uint8_t* data, size_t size, const std::string& name) {
  if (size < 8 || std::memcmp(data, kSignature, 8) != 0) throw LoadError(name, "not a PNG file (bad signature)");
  ChunkScan scan;
  size_t pos = 8;
  bool first = true;
  while (true) {
    if (size - pos < 12)
      throw LoadError(name, "PNG file is truncated (no IEND chunk; " + std::to_string(size) + " bytes)");
    const uint32_t length = be32(data + pos);
    const uint8_t* type = data + pos + 4;
    if (length > 0x7FFFFFFFu) throw LoadError(name, "corrupt PNG: chunk length " + std::to_string(length));
    for (int k = 0; k < 4; ++k)
      if (!((type[k] >= 'A' && type[k] <= 'Z') || (type[k] >= 'a' && type[k] <= 'z')))
        throw LoadError(name, "corrupt PNG: invalid chunk type at byte " + std::to_string(pos + 4));
    if (size - pos - 12 < length)
      throw LoadError(name, "PNG file is truncated inside a " + std::string(type, type + 4) + " chunk");
    if (first) {
      if (!chunk_is(type, "IHDR") || length != 13) throw LoadError(name, "corrupt PNG: the first chunk is not IHDR");
      scan.width = be32(data + pos + 8);
      scan.height = be32(data + pos + 12);
      scan.bit_depth = data[pos + 16];
      scan.color_type = data[pos + 17];
      first = false;
    }
    if (chunk_is(type, "IDAT")) scan.idat_bytes += length;
    if (chunk_is(type, "tEXt") || chunk_is(type, "zTXt") || chunk_is(type, "iTXt"))
      scan.text_chunks.emplace_back(pos, size_t{length} + 12);
    pos += size_t{length} + 12;
    if (chunk_is(type, "IEND")) return scan;
  }
}

int channels_of_color_type(int color_type) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_PALETTE: return 1;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 0;
  }
}

struct DecodedHeader {
  png_uint_32 width = 0, height = 0;
  int channels = 0, bit_depth = 0;
  size_t rowbytes = 0;
};

// Reads up to the image data and sets the transforms to 8/16-bit gray/GA/RGB/RGBA.
bool read_header(png_structp png, png_infop info, DecodedHeader* out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out->width = png_get_image_width(png, info);
  out->height = png_get_image_height(png, info);
  out->channels = png_get_channels(png, info);
  out->bit_depth = png_get_bit_depth(png, info);
  out->rowbytes = png_get_rowbytes(png, info);
  return true;
}

bool read_rows(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

// Parses one text chunk placed in a synthetic PNG (signature, 1x1 IHDR, the chunk, IDAT).
bool read_text_info(png_structp png, png_infop info) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  return true;
}

struct WriteJob {
  png_uint_32 width, height;
  int bit_depth, color_type;
  png_textp text;
  int num_text;
  png_bytepp rows;
};

bool write_all(png_structp png, png_infop info, const WriteJob* job) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, job->width, job->height, job->bit_depth, job->color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (job->num_text > 0) png_set_text(png, info, job->text, job->num_text);
  png_write_info(png, info);
  png_write_image(png, job->rows);
  png_write_end(png, nullptr);
  return true;
}

std::string text_chunk_synthetic_png(const uint8_t* chunk, size_t bytes) {
  static const uint8_t kHeader[] = {
      0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n',                                  // signature
      0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0,       // 1x1 gray 8-bit
      0x3A, 0x7E, 0x9B, 0x55};                                                      // its CRC
  static const uint8_t kIdat[] = {0, 0, 0, 0, 'I', 'D', 'A', 'T'};
  std::string s(reinterpret_cast<const char*>(kHeader), sizeof kHeader);
  s.append(reinterpret_cast<const char*>(chunk), bytes);
  s.append(reinterpret_cast<const char*>(kIdat), sizeof kIdat);
  return s;
}

// Converts a UTF-8 key to the Latin-1 bytes of a PNG keyword, or explains why it cannot be one.
std::string png_keyword(const std::string& key) {
  const auto bad = [&](const std::string& why) { return UsageError("PNG text key '" + key + "' " + why); };
  std::string latin1;
  for (size_t i = 0; i < key.size();) {
    bool ok = true;
    const char32_t cp = utf8::decode(key, i, &ok);
    if (!ok) throw bad("is not valid UTF-8");
    if (!((cp >= 0x20 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xFF)))
      throw bad("has a character that is not printable Latin-1");
    latin1 += static_cast<char>(cp);
  }
  if (latin1.empty() || latin1.size() > 79) throw bad("must be 1 to 79 characters long");
  if (latin1.front() == ' ' || latin1.back() == ' ' || latin1.find("  ") != std::string::npos)
    throw bad("has leading, trailing or consecutive spaces");
  return latin1;
}

}  // namespace

// --- Image helpers (here, not in their own file, so that the fuzz target links png.cpp alone)

Image Image::blank(int width, int height, int channels, int bit_depth, uint16_t fill) {
  if (width < 1 || height < 1 || width > static_cast<int>(kMaxSide) || height > static_cast<int>(kMaxSide))
    throw UsageError("image size " + std::to_string(width) + "x" + std::to_string(height) +
                     " is outside 1..65535 per side");
  if (channels < 1 || channels > 4) throw UsageError("image channels must be 1 to 4, got " + std::to_string(channels));
  if (bit_depth != 8 && bit_depth != 16) throw UsageError("image bit depth must be 8 or 16, got " + std::to_string(bit_depth));
  if (static_cast<uint64_t>(width) * static_cast<uint64_t>(height) * static_cast<uint64_t>(channels) > kMaxSamples)
    throw UsageError("image of " + std::to_string(width) + "x" + std::to_string(height) + "x" +
                     std::to_string(channels) + " samples is too large");
  if (bit_depth == 8 && fill > 255) throw UsageError("fill value " + std::to_string(fill) + " exceeds 255 for an 8-bit image");
  Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.bit_depth = bit_depth;
  image.pixels.assign(static_cast<size_t>(width) * static_cast<size_t>(height) * static_cast<size_t>(channels), fill);
  return image;
}

void Image::validate(const std::string& what) const {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width < 1 || height < 1 || width > static_cast<int>(kMaxSide) || height > static_cast<int>(kMaxSide))
    throw UsageError(what + ": image size " + size + " is outside 1..65535 per side");
  if (channels < 1 || channels > 4) throw UsageError(what + ": image channels must be 1 to 4, got " + std::to_string(channels));
  if (bit_depth != 8 && bit_depth != 16)
    throw UsageError(what + ": image bit depth must be 8 or 16, got " + std::to_string(bit_depth));
  const uint64_t expected = static_cast<uint64_t>(width) * static_cast<uint64_t>(height) * static_cast<uint64_t>(channels);
  if (pixels.size() != expected)
    throw UsageError(what + ": image " + size + "x" + std::to_string(channels) + " needs " + std::to_string(expected) +
                     " samples, has " + std::to_string(pixels.size()));
  if (bit_depth == 8)
    for (const uint16_t v : pixels)
      if (v > 255) throw UsageError(what + ": 8-bit image has sample value " + std::to_string(v));
}

Image Image::to_8bit() const {
  if (bit_depth == 8) return *this;
  Image out = *this;
  out.bit_depth = 8;
  for (auto& v : out.pixels) v = static_cast<uint16_t>((uint32_t{v} + 128) / 257);
  return out;
}

Image Image::with_channels(int n) const {
  if (n < 1 || n > 4) throw UsageError("image channels must be 1 to 4, got " + std::to_string(n));
  if (n == channels) return *this;
  if (channels < 1 || channels > 4) throw UsageError("image has " + std::to_string(channels) + " channels");
  Image out;
  out.width = width;
  out.height = height;
  out.channels = n;
  out.bit_depth = bit_depth;
  const size_t count = static_cast<size_t>(width) * static_cast<size_t>(height);
  out.pixels.resize(count * static_cast<size_t>(n));
  const bool in_color = channels >= 3, out_color = n >= 3;
  const bool out_alpha = n == 2 || n == 4;
  const uint16_t opaque = static_cast<uint16_t>(max_value());
  for (size_t i = 0; i < count; ++i) {
    const uint16_t* src = pixels.data() + i * static_cast<size_t>(channels);
    uint16_t* dst = out.pixels.data() + i * static_cast<size_t>(n);
    const uint16_t alpha = has_alpha() ? src[channels - 1] : opaque;
    if (out_color) {
      for (int c = 0; c < 3; ++c) dst[c] = in_color ? src[c] : src[0];
    } else if (in_color) {
      // PIL's ImageMath L24: ITU-R 601-2 luma in 16.16 fixed point, rounded.
      const uint64_t l = uint64_t{src[0]} * 19595 + uint64_t{src[1]} * 38470 + uint64_t{src[2]} * 7471 + 0x8000;
      dst[0] = static_cast<uint16_t>(l >> 16);
    } else {
      dst[0] = src[0];
    }
    if (out_alpha) dst[n - 1] = alpha;
  }
  return out;
}

// --- Reading

Image decode_png(const uint8_t* data, size_t size, const std::string& name) {
  const ChunkScan scan = scan_chunks(data, size, name);
  if (scan.width > kMaxSide || scan.height > kMaxSide)
    throw LoadError(name, "PNG declares " + std::to_string(scan.width) + "x" + std::to_string(scan.height) +
                              " pixels; at most 65535 per side is supported");
  if (const int file_channels = channels_of_color_type(scan.color_type); file_channels > 0) {
    const uint64_t min_inflated = uint64_t{scan.width} * scan.height * static_cast<uint64_t>(file_channels) *
                                  static_cast<uint64_t>(scan.bit_depth) / 8;
    if (min_inflated > scan.idat_bytes * kMaxDeflateRatio + 1024)
      throw LoadError(name, "PNG is truncated or corrupt: " + std::to_string(scan.idat_bytes) +
                                " bytes of image data cannot hold " + std::to_string(scan.width) + "x" +
                                std::to_string(scan.height) + " pixels");
  }

  PngIo io;
  io.data = data;
  io.size = size;
  ReadHandle h(&io);
  png_set_user_limits(h.png, kMaxSide, kMaxSide);
  png_set_chunk_malloc_max(h.png, kMaxTextChunkBytes);
  // Ancillary chunks other than tRNS are skipped unparsed (text, ICC profiles, ...).
  png_set_keep_unknown_chunks(h.png, PNG_HANDLE_CHUNK_NEVER, nullptr, -1);

  DecodedHeader header;
  if (!read_header(h.png, h.info, &header)) throw LoadError(name, std::string("invalid PNG: ") + io.message);
  const uint64_t samples = uint64_t{header.width} * header.height * static_cast<uint64_t>(header.channels);
  if (samples > kMaxSamples)
    throw LoadError(name, "PNG of " + std::to_string(header.width) + "x" + std::to_string(header.height) + "x" +
                              std::to_string(header.channels) + " samples is larger than the 2^31 supported");
  if ((header.bit_depth != 8 && header.bit_depth != 16) || header.channels < 1 || header.channels > 4 ||
      header.rowbytes < size_t{header.width} * static_cast<size_t>(header.channels) * static_cast<size_t>(header.bit_depth / 8))
    throw LoadError(name, "PNG has an unsupported layout after expansion");

  std::vector<uint8_t> raw(header.rowbytes * header.height);
  std::vector<png_bytep> rows(header.height);
  for (png_uint_32 y = 0; y < header.height; ++y) rows[y] = raw.data() + size_t{y} * header.rowbytes;
  if (!read_rows(h.png, rows.data())) throw LoadError(name, std::string("invalid PNG: ") + io.message);

  Image image;
  image.width = static_cast<int>(header.width);
  image.height = static_cast<int>(header.height);
  image.channels = header.channels;
  image.bit_depth = header.bit_depth;
  image.pixels.resize(static_cast<size_t>(samples));
  const size_t row_samples = size_t{header.width} * static_cast<size_t>(header.channels);
  for (png_uint_32 y = 0; y < header.height; ++y) {
    const uint8_t* src = rows[y];
    uint16_t* dst = image.pixels.data() + size_t{y} * row_samples;
    if (header.bit_depth == 8)
      for (size_t i = 0; i < row_samples; ++i) dst[i] = src[i];
    else
      for (size_t i = 0; i < row_samples; ++i) dst[i] = static_cast<uint16_t>((src[2 * i] << 8) | src[2 * i + 1]);
  }
  return image;
}

Image read_png(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path, kMaxPngFileBytes);
  return decode_png(bytes.data(), bytes.size(), path);
}

PngText decode_png_text(const uint8_t* data, size_t size, const std::string& name) {
  const ChunkScan scan = scan_chunks(data, size, name);
  if (scan.text_chunks.size() > kMaxTextChunks)
    throw LoadError(name, "PNG has " + std::to_string(scan.text_chunks.size()) + " text chunks, more than the " +
                              std::to_string(kMaxTextChunks) + " supported");
  PngText out;
  size_t total = 0;
  for (const auto& [offset, bytes] : scan.text_chunks) {
    const std::string chunk_type(reinterpret_cast<const char*>(data + offset + 4), 4);
    const std::string synthetic = text_chunk_synthetic_png(data + offset, bytes);
    PngIo io;
    io.data = reinterpret_cast<const uint8_t*>(synthetic.data());
    io.size = synthetic.size();
    ReadHandle h(&io);
    // Strict: a malformed or CRC-damaged text chunk, or one inflating past the limit, is an
    // error rather than a chunk silently dropped.
    png_set_benign_errors(h.png, 0);
    png_set_crc_action(h.png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
    png_set_chunk_malloc_max(h.png, kMaxTextChunkBytes);
    if (!read_text_info(h.png, h.info)) {
      std::string why = io.message;
      if (chunk_type != "tEXt") why += " (compressed text may inflate to at most " + std::to_string(kMaxTextChunkBytes >> 20) + " MiB)";
      throw LoadError(name, "invalid " + chunk_type + " chunk at byte " + std::to_string(offset) + ": " + why);
    }
    png_textp text = nullptr;
    int count = 0;
    png_get_text(h.png, h.info, &text, &count);
    for (int i = 0; i < count; ++i) {
      const bool itxt = text[i].compression == PNG_ITXT_COMPRESSION_NONE || text[i].compression == PNG_ITXT_COMPRESSION_zTXt;
      const size_t length = itxt ? text[i].itxt_length : text[i].text_length;
      const std::string_view value(text[i].text ? text[i].text : "", text[i].text ? length : 0);
      total += value.size();
      if (total > kMaxTotalTextBytes)
        throw LoadError(name, "PNG text chunks hold more than " + std::to_string(kMaxTotalTextBytes >> 20) + " MiB of text");
      out.emplace_back(utf8::from_latin1(text[i].key ? text[i].key : ""),
                       itxt ? utf8::sanitize(value) : utf8::from_latin1(value));
    }
  }
  return out;
}

PngText read_png_text(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path, kMaxPngFileBytes);
  return decode_png_text(bytes.data(), bytes.size(), path);
}

// --- Writing

std::string encode_png(const Image& image, const PngText& text) {
  image.validate("encode_png");
  struct Entry {
    std::string key, value;
    bool itxt;
  };
  std::vector<Entry> entries;
  for (const auto& [key, value] : text) {
    Entry e{png_keyword(key), {}, false};
    if (!utf8::is_valid(value)) throw UsageError("PNG text for key '" + key + "' is not valid UTF-8");
    if (value.find('\0') != std::string::npos) throw UsageError("PNG text for key '" + key + "' contains a NUL byte");
    std::string latin1;
    for (size_t i = 0; i < value.size() && !e.itxt;) {
      const char32_t cp = utf8::decode(value, i);
      if (cp > 0xFF) e.itxt = true;
      else latin1 += static_cast<char>(cp);
    }
    e.value = e.itxt ? value : latin1;
    entries.push_back(std::move(e));
  }
  std::vector<png_text> chunks(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    std::memset(&chunks[i], 0, sizeof(png_text));
    chunks[i].compression = entries[i].itxt ? PNG_ITXT_COMPRESSION_NONE : PNG_TEXT_COMPRESSION_NONE;
    chunks[i].key = const_cast<char*>(entries[i].key.c_str());
    chunks[i].text = const_cast<char*>(entries[i].value.c_str());
    chunks[i].text_length = entries[i].itxt ? 0 : entries[i].value.size();
    chunks[i].itxt_length = entries[i].itxt ? entries[i].value.size() : 0;
  }

  const size_t bytes_per_sample = image.bit_depth == 16 ? 2 : 1;
  const size_t rowbytes = static_cast<size_t>(image.width) * static_cast<size_t>(image.channels) * bytes_per_sample;
  std::vector<uint8_t> raw(rowbytes * static_cast<size_t>(image.height));
  if (bytes_per_sample == 1) {
    for (size_t i = 0; i < image.pixels.size(); ++i) raw[i] = static_cast<uint8_t>(image.pixels[i]);
  } else {
    for (size_t i = 0; i < image.pixels.size(); ++i) {
      raw[2 * i] = static_cast<uint8_t>(image.pixels[i] >> 8);
      raw[2 * i + 1] = static_cast<uint8_t>(image.pixels[i] & 0xFF);
    }
  }
  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = raw.data() + y * rowbytes;

  static const int kColorTypes[] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                    PNG_COLOR_TYPE_RGB_ALPHA};
  std::string out;
  out.reserve(raw.size() / 2 + 1024);
  PngIo io;
  io.out = &out;
  WriteHandle h(&io);
  const WriteJob job{static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), image.bit_depth,
                     kColorTypes[image.channels], chunks.data(), static_cast<int>(chunks.size()), rows.data()};
  if (!write_all(h.png, h.info, &job)) throw RuntimeError(std::string("cannot encode PNG: ") + io.message);
  return out;
}

void write_png(const std::string& path, const Image& image, const PngText& text) {
  const std::string bytes = encode_png(image, text);
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

}  // namespace genvis::io
