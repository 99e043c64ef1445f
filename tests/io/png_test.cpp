#include "core/error.h"
#include "core/file.h"
#include "io/image.h"
#include "io/infotext.h"
#include "support/test_support.h"

#include <csetjmp>
#include <cstring>
#include <png.h>
#include <zlib.h>

namespace genvis::io {
namespace {

// --- A PNG writer on libpng directly, for the variants write_png does not produce.

struct RawText {
  int compression;  // PNG_TEXT_COMPRESSION_NONE / _zTXt, PNG_ITXT_COMPRESSION_NONE / _zTXt
  std::string key, text;  // bytes as they go into the chunk (Latin-1 for tEXt/zTXt)
};

struct RawPng {
  int width = 1, height = 1, bit_depth = 8, color_type = PNG_COLOR_TYPE_GRAY;
  int interlace = PNG_INTERLACE_NONE;
  std::vector<std::vector<uint8_t>> rows;  // packed as in the file
  std::vector<png_color> palette;
  std::vector<uint8_t> trns_alpha;         // palette images
  bool has_trns_color = false;
  png_color_16 trns_color{};
  std::vector<RawText> text_before, text_after;  // around the image data
};

struct RawJob {
  const RawPng* png;
  png_textp before, after;
  int n_before, n_after;
  png_bytepp rows;
};

void raw_write(png_structp png, png_bytep data, size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}
void raw_flush(png_structp) {}

bool raw_encode(png_structp png, png_infop info, const RawJob* job) {
  if (setjmp(png_jmpbuf(png))) return false;
  const RawPng& p = *job->png;
  png_set_IHDR(png, info, static_cast<png_uint_32>(p.width), static_cast<png_uint_32>(p.height), p.bit_depth,
               p.color_type, p.interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!p.palette.empty()) png_set_PLTE(png, info, p.palette.data(), static_cast<int>(p.palette.size()));
  if (!p.trns_alpha.empty())
    png_set_tRNS(png, info, p.trns_alpha.data(), static_cast<int>(p.trns_alpha.size()), nullptr);
  if (p.has_trns_color) png_set_tRNS(png, info, nullptr, 0, &p.trns_color);
  if (job->n_before) png_set_text(png, info, job->before, job->n_before);
  png_write_info(png, info);
  png_set_interlace_handling(png);
  png_write_image(png, job->rows);
  if (job->n_after) png_set_text(png, info, job->after, job->n_after);
  png_write_end(png, info);
  return true;
}

std::vector<png_text> to_png_text(const std::vector<RawText>& in) {
  std::vector<png_text> out(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    std::memset(&out[i], 0, sizeof(png_text));
    out[i].compression = in[i].compression;
    out[i].key = const_cast<char*>(in[i].key.c_str());
    out[i].text = const_cast<char*>(in[i].text.c_str());
    const bool itxt = in[i].compression >= PNG_ITXT_COMPRESSION_NONE;
    (itxt ? out[i].itxt_length : out[i].text_length) = in[i].text.size();
  }
  return out;
}

std::string encode_raw(const RawPng& p) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, raw_write, raw_flush);
  std::vector<png_bytep> rows;
  for (const auto& r : p.rows) rows.push_back(const_cast<png_bytep>(r.data()));
  auto before = to_png_text(p.text_before), after = to_png_text(p.text_after);
  const RawJob job{&p, before.data(), after.data(), static_cast<int>(before.size()), static_cast<int>(after.size()),
                   rows.data()};
  const bool ok = raw_encode(png, info, &job);
  png_destroy_write_struct(&png, &info);
  EXPECT_TRUE(ok) << "test PNG writer failed";
  return out;
}

// Packs samples of bit_depth <= 8 big-endian first, or 16-bit samples as two bytes.
std::vector<uint8_t> pack_row(const std::vector<int>& samples, int bit_depth) {
  std::vector<uint8_t> row;
  if (bit_depth == 16) {
    for (const int v : samples) row.push_back(static_cast<uint8_t>(v >> 8)), row.push_back(static_cast<uint8_t>(v));
    return row;
  }
  row.assign((samples.size() * static_cast<size_t>(bit_depth) + 7) / 8, 0);
  for (size_t i = 0; i < samples.size(); ++i) {
    const size_t bit = i * static_cast<size_t>(bit_depth);
    row[bit / 8] |= static_cast<uint8_t>(samples[i] << (8 - bit_depth - static_cast<int>(bit % 8)));
  }
  return row;
}

// Deterministic sample values for (x, y, c) in 0..max.
int sample(int x, int y, int c, int max) { return (x * 37 + y * 91 + c * 53 + x * y * 7) % (max + 1); }

Image decode(const std::string& bytes) {
  return decode_png(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.png");
}
PngText decode_text(const std::string& bytes) {
  return decode_png_text(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.png");
}

Image pattern_image(int w, int h, int channels, int bit_depth) {
  Image im = Image::blank(w, h, channels, bit_depth);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) im.at(x, y, c) = static_cast<uint16_t>(sample(x, y, c, im.max_value()));
  return im;
}

// Rewrites the CRC of the chunk starting at `offset` after its data was changed.
void fix_crc(std::string& png, size_t offset) {
  const auto* p = reinterpret_cast<const uint8_t*>(png.data());
  const uint32_t length = (uint32_t{p[offset]} << 24) | (uint32_t{p[offset + 1]} << 16) |
                          (uint32_t{p[offset + 2]} << 8) | p[offset + 3];
  const uLong crc = crc32(0, p + offset + 4, length + 4);
  for (int k = 0; k < 4; ++k) png[offset + 8 + length + static_cast<size_t>(k)] = static_cast<char>(crc >> (24 - 8 * k));
}

size_t find_chunk(const std::string& png, const char* type) {
  const size_t at = png.find(type);
  EXPECT_NE(at, std::string::npos) << type;
  return at - 4;
}

// --- Image helpers

TEST(ImageTest, BlankAndAccess) {
  Image im = Image::blank(3, 2, 4, 16, 7);
  EXPECT_EQ(im.pixels.size(), 24u);
  im.at(2, 1, 3) = 65535;
  EXPECT_EQ(im.pixels[(1 * 3 + 2) * 4 + 3], 65535);
  EXPECT_EQ(im.at(0, 0, 0), 7);
  EXPECT_THROW(Image::blank(0, 1, 3), UsageError);
  EXPECT_THROW(Image::blank(1, 1, 5), UsageError);
  EXPECT_THROW(Image::blank(1, 1, 3, 12), UsageError);
  EXPECT_THROW(Image::blank(1, 1, 3, 8, 256), UsageError);
}

TEST(ImageTest, To8BitRounds) {
  Image im = Image::blank(4, 1, 1, 16);
  im.pixels = {0, 128, 129, 65535};
  const Image out = im.to_8bit();
  EXPECT_EQ(out.bit_depth, 8);
  EXPECT_EQ(out.pixels, (std::vector<uint16_t>{0, 0, 1, 255}));
}

TEST(ImageTest, WithChannels) {
  Image rgba = Image::blank(1, 1, 4);
  rgba.pixels = {255, 0, 0, 10};
  EXPECT_EQ(rgba.with_channels(3).pixels, (std::vector<uint16_t>{255, 0, 0}));
  EXPECT_EQ(rgba.with_channels(2).pixels, (std::vector<uint16_t>{76, 10}));  // PIL: L of pure red is 76
  EXPECT_EQ(rgba.with_channels(1).pixels, (std::vector<uint16_t>{76}));
  Image gray = Image::blank(1, 1, 1, 16, 1000);
  EXPECT_EQ(gray.with_channels(4).pixels, (std::vector<uint16_t>{1000, 1000, 1000, 65535}));
  EXPECT_EQ(gray.with_channels(2).pixels, (std::vector<uint16_t>{1000, 65535}));
  Image white = Image::blank(1, 1, 3, 8, 255);
  EXPECT_EQ(white.with_channels(1).pixels, (std::vector<uint16_t>{255}));
  EXPECT_THROW(white.with_channels(0), UsageError);
}

// --- Pixel round trips

TEST(PngTest, WriteReadAllChannelCountsAndDepths) {
  test::TempDir dir;
  for (const int depth : {8, 16})
    for (int channels = 1; channels <= 4; ++channels) {
      const Image im = pattern_image(13, 7, channels, depth);
      const std::string path = dir.file("im" + std::to_string(depth) + "_" + std::to_string(channels) + ".png");
      write_png(path, im);
      const Image back = read_png(path);
      EXPECT_EQ(back.width, 13);
      EXPECT_EQ(back.height, 7);
      EXPECT_EQ(back.channels, channels);
      EXPECT_EQ(back.bit_depth, depth);
      EXPECT_EQ(back.pixels, im.pixels) << depth << "-bit, " << channels << " channels";
    }
}

TEST(PngTest, SixteenBitIsBigEndianInTheFile) {
  Image im = Image::blank(1, 1, 1, 16);
  im.pixels = {0x1234};
  const std::string png = encode_png(im);
  EXPECT_EQ(decode(png).pixels[0], 0x1234);
  EXPECT_NE(png.find(std::string("IHDR") + std::string("\0\0\0\1\0\0\0\1\x10\0", 10)), std::string::npos);
}

TEST(PngTest, LowBitDepthGrayScalesTo8Bit) {
  for (const int depth : {1, 2, 4}) {
    for (const int interlace : {PNG_INTERLACE_NONE, PNG_INTERLACE_ADAM7}) {
      RawPng p;
      p.width = 11;
      p.height = 9;
      p.bit_depth = depth;
      p.interlace = interlace;
      const int max = (1 << depth) - 1;
      for (int y = 0; y < p.height; ++y) {
        std::vector<int> row;
        for (int x = 0; x < p.width; ++x) row.push_back(sample(x, y, 0, max));
        p.rows.push_back(pack_row(row, depth));
      }
      const Image im = decode(encode_raw(p));
      ASSERT_EQ(im.channels, 1);
      ASSERT_EQ(im.bit_depth, 8);
      for (int y = 0; y < p.height; ++y)
        for (int x = 0; x < p.width; ++x)
          EXPECT_EQ(im.at(x, y, 0), sample(x, y, 0, max) * 255 / max) << depth << " bit at " << x << "," << y;
    }
  }
}

TEST(PngTest, PaletteExpandsToRGBAndTRNSToAlpha) {
  for (const int depth : {1, 2, 4, 8}) {
    for (const bool trns : {false, true}) {
      RawPng p;
      p.width = 10;
      p.height = 5;
      p.bit_depth = depth;
      p.color_type = PNG_COLOR_TYPE_PALETTE;
      p.interlace = depth == 4 ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE;
      const int entries = 1 << depth;
      for (int i = 0; i < entries; ++i)
        p.palette.push_back(png_color{static_cast<png_byte>(i * 3), static_cast<png_byte>(255 - i),
                                      static_cast<png_byte>(i * 7 % 256)});
      if (trns) p.trns_alpha = {0, 128};  // entries past the list stay opaque
      for (int y = 0; y < p.height; ++y) {
        std::vector<int> row;
        for (int x = 0; x < p.width; ++x) row.push_back(sample(x, y, 0, entries - 1));
        p.rows.push_back(pack_row(row, depth));
      }
      const Image im = decode(encode_raw(p));
      ASSERT_EQ(im.channels, trns ? 4 : 3);
      ASSERT_EQ(im.bit_depth, 8);
      for (int y = 0; y < p.height; ++y)
        for (int x = 0; x < p.width; ++x) {
          const int i = sample(x, y, 0, entries - 1);
          EXPECT_EQ(im.at(x, y, 0), p.palette[static_cast<size_t>(i)].red);
          EXPECT_EQ(im.at(x, y, 1), p.palette[static_cast<size_t>(i)].green);
          EXPECT_EQ(im.at(x, y, 2), p.palette[static_cast<size_t>(i)].blue);
          if (trns) {
            EXPECT_EQ(im.at(x, y, 3), i == 0 ? 0 : i == 1 ? 128 : 255);
          }
        }
    }
  }
}

TEST(PngTest, ColorKeyTRNSBecomesAlpha) {
  for (const int depth : {8, 16}) {
    RawPng gray;
    gray.width = 4;
    gray.bit_depth = depth;
    gray.rows = {pack_row({5, 6, 5, 1000 % (depth == 8 ? 256 : 65536)}, depth)};
    gray.has_trns_color = true;
    gray.trns_color.gray = 5;
    const Image g = decode(encode_raw(gray));
    ASSERT_EQ(g.channels, 2);
    EXPECT_EQ(g.bit_depth, depth);
    const uint16_t opaque = depth == 8 ? 255 : 65535;
    EXPECT_EQ(g.pixels, (std::vector<uint16_t>{5, 0, 6, opaque, 5, 0, static_cast<uint16_t>(depth == 8 ? 232 : 1000), opaque}));

    RawPng rgb;
    rgb.width = 2;
    rgb.bit_depth = depth;
    rgb.color_type = PNG_COLOR_TYPE_RGB;
    rgb.rows = {pack_row({1, 2, 3, 1, 2, 4}, depth)};
    rgb.has_trns_color = true;
    rgb.trns_color.red = 1;
    rgb.trns_color.green = 2;
    rgb.trns_color.blue = 3;
    const Image c = decode(encode_raw(rgb));
    ASSERT_EQ(c.channels, 4);
    EXPECT_EQ(c.pixels, (std::vector<uint16_t>{1, 2, 3, 0, 1, 2, 4, opaque}));
  }
}

TEST(PngTest, InterlacedAllColorTypesExact) {
  const std::pair<int, int> types[] = {{PNG_COLOR_TYPE_GRAY, 1}, {PNG_COLOR_TYPE_GRAY_ALPHA, 2},
                                       {PNG_COLOR_TYPE_RGB, 3}, {PNG_COLOR_TYPE_RGB_ALPHA, 4}};
  for (const int depth : {8, 16})
    for (const auto& [type, channels] : types) {
      RawPng p;
      p.width = 13;
      p.height = 11;
      p.bit_depth = depth;
      p.color_type = type;
      p.interlace = PNG_INTERLACE_ADAM7;
      const int max = depth == 8 ? 255 : 65535;
      for (int y = 0; y < p.height; ++y) {
        std::vector<int> row;
        for (int x = 0; x < p.width; ++x)
          for (int c = 0; c < channels; ++c) row.push_back(sample(x, y, c, max));
        p.rows.push_back(pack_row(row, depth));
      }
      const Image im = decode(encode_raw(p));
      ASSERT_EQ(im.channels, channels);
      ASSERT_EQ(im.bit_depth, depth);
      EXPECT_EQ(im.pixels, pattern_image(13, 11, channels, depth).pixels) << depth << "-bit type " << type;
    }
}

// --- Text chunks

TEST(PngTextTest, LatinOneAsTEXtOtherwiseITXt) {
  Image im = Image::blank(2, 2, 3);
  const PngText text = {{"parameters", "caf\xC3\xA9 \xC2\xB1"},           // Latin-1 representable
                        {"Comment", "\xE7\x8C\xAB \xF0\x9F\x90\xB1 cat"}, // needs UTF-8
                        {"Title", "plain ascii"},
                        {"Empty", ""}};
  const std::string png = encode_png(im, text);
  EXPECT_NE(png.find("tEXtparameters"), std::string::npos);
  EXPECT_NE(png.find(std::string("caf\xE9 \xB1")), std::string::npos);  // stored as Latin-1
  EXPECT_NE(png.find("iTXtComment"), std::string::npos);
  EXPECT_NE(png.find("tEXtTitle"), std::string::npos);
  EXPECT_LT(png.find("tEXtparameters"), png.find("IDAT"));
  EXPECT_EQ(decode_text(png), text);
  test::TempDir dir;
  write_png(dir.file("t.png"), im, text);
  EXPECT_EQ(read_png_text(dir.file("t.png")), text);
  EXPECT_EQ(read_png(dir.file("t.png")).pixels, im.pixels);
}

TEST(PngTextTest, ReadsAllChunkKindsInFileOrder) {
  RawPng p;
  p.rows = {{7}};
  p.text_before = {{PNG_TEXT_COMPRESSION_NONE, "Author", "Bj\xF6rk"},  // Latin-1 bytes
                   {PNG_TEXT_COMPRESSION_zTXt, "Description", std::string(5000, 'z') + "\xE9"},
                   {PNG_ITXT_COMPRESSION_NONE, "parameters", "\xE7\x8C\xAB"}};
  p.text_after = {{PNG_ITXT_COMPRESSION_zTXt, "Comment", "\xCE\xB1\xCE\xB2\xCE\xB3 compressed"},
                  {PNG_TEXT_COMPRESSION_NONE, "Late", "after IDAT"}};
  const std::string png = encode_raw(p);
  EXPECT_NE(png.find("zTXtDescription"), std::string::npos);
  EXPECT_GT(png.find("tEXtLate"), png.find("IDAT"));
  const PngText expected = {{"Author", "Bj\xC3\xB6rk"},
                            {"Description", std::string(5000, 'z') + "\xC3\xA9"},
                            {"parameters", "\xE7\x8C\xAB"},
                            {"Comment", "\xCE\xB1\xCE\xB2\xCE\xB3 compressed"},
                            {"Late", "after IDAT"}};
  EXPECT_EQ(decode_text(png), expected);
  EXPECT_EQ(decode(png).pixels, (std::vector<uint16_t>{7}));
}

TEST(PngTextTest, InvalidUTF8InITXtIsReplaced) {
  RawPng p;
  p.rows = {{0}};
  p.text_before = {{PNG_ITXT_COMPRESSION_NONE, "k", "a\xFF" "b"}};
  const PngText text = decode_text(encode_raw(p));
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(text[0].second, "a\xEF\xBF\xBD" "b");
}

TEST(PngTextTest, ParametersRoundTrip) {
  GenerationParameters params;
  params.prompt = "a photo of a \xE7\x8C\xAB, (masterpiece:1.2)\nsecond line";
  params.negative_prompt = "blurry, lowres";
  params.steps = 30;
  params.sampler = "DPM++ 2M";
  params.schedule = "Karras";
  params.cfg_scale = 7.5;
  params.seed = 3141592653ull;
  params.width = 768;
  params.height = 512;
  params.model_hash = "6ce0161689";
  params.model = "v1-5-pruned-emaonly";
  params.extra = {{"Denoising strength", "0.7"}, {"Lora hashes", "\"a: 1, b: 2\""}, {"Version", "v1.10.1"}};
  test::TempDir dir;
  write_png(dir.file("p.png"), Image::blank(8, 8, 3), {{kInfotextKey, format_infotext(params)}});
  const PngText text = read_png_text(dir.file("p.png"));
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(text[0].first, "parameters");
  EXPECT_EQ(parse_infotext(text[0].second), params);
}

TEST(PngTextTest, WriteRefusesBadKeysAndText) {
  const Image im = Image::blank(1, 1, 1);
  EXPECT_THROW(encode_png(im, {{"", "x"}}), UsageError);
  EXPECT_THROW(encode_png(im, {{std::string(80, 'k'), "x"}}), UsageError);
  EXPECT_THROW(encode_png(im, {{" lead", "x"}}), UsageError);
  EXPECT_THROW(encode_png(im, {{"two  spaces", "x"}}), UsageError);
  EXPECT_THROW(encode_png(im, {{"\xE7\x8C\xAB", "x"}}), UsageError);
  EXPECT_THROW(encode_png(im, {{"k", "bad \xFF utf8"}}), UsageError);
  EXPECT_THROW(encode_png(im, {{"k", std::string("nul\0inside", 10)}}), UsageError);
  EXPECT_NO_THROW(encode_png(im, {{std::string(79, 'k'), "x"}, {"Caf\xC3\xA9", "x"}}));
  EXPECT_EQ(decode_text(encode_png(im, {{"Caf\xC3\xA9", "x"}}))[0].first, "Caf\xC3\xA9");
}

TEST(PngTest, WriteRefusesInconsistentImages) {
  test::TempDir dir;
  Image im = Image::blank(2, 2, 3);
  im.pixels.pop_back();
  EXPECT_THROW(write_png(dir.file("a.png"), im), UsageError);
  Image big = Image::blank(1, 1, 1);
  big.pixels[0] = 300;
  EXPECT_THROW(encode_png(big), UsageError);
  EXPECT_THROW(encode_png(Image{}), UsageError);
  EXPECT_FALSE(genvis::file_exists(dir.file("a.png")));
}

// --- Hostile inputs

std::string small_png() {
  RawPng p;
  p.width = 5;
  p.height = 4;
  p.color_type = PNG_COLOR_TYPE_RGB;
  for (int y = 0; y < 4; ++y) {
    std::vector<int> row;
    for (int i = 0; i < 15; ++i) row.push_back(sample(i, y, 0, 255));
    p.rows.push_back(pack_row(row, 8));
  }
  p.text_before = {{PNG_TEXT_COMPRESSION_zTXt, "parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7"}};
  p.text_after = {{PNG_TEXT_COMPRESSION_NONE, "After", "x"}};
  return encode_raw(p);
}

TEST(PngHostileTest, EveryTruncationIsALoadError) {
  const std::string png = small_png();
  ASSERT_NO_THROW(decode(png));
  ASSERT_EQ(decode_text(png).size(), 2u);
  for (size_t n = 0; n < png.size(); ++n) {
    const std::string prefix = png.substr(0, n);
    EXPECT_THROW(decode(prefix), LoadError) << "prefix " << n;
    EXPECT_THROW(decode_text(prefix), LoadError) << "prefix " << n;
  }
}

TEST(PngHostileTest, CorruptCRCsAndData) {
  const std::string png = small_png();
  std::string bad_ihdr = png;
  bad_ihdr[29] ^= 1;  // last CRC byte of IHDR
  EXPECT_THROW(decode(bad_ihdr), LoadError);

  std::string bad_idat_crc = png;
  const size_t idat = find_chunk(png, "IDAT");
  bad_idat_crc[idat + 12] ^= 0x55;  // data byte, CRC left stale
  EXPECT_THROW(decode(bad_idat_crc), LoadError);

  std::string bad_idat = png;
  for (size_t k = 10; k < 16; ++k) bad_idat[idat + k] = static_cast<char>(0xFF);  // inside the zlib stream
  fix_crc(bad_idat, idat);
  EXPECT_THROW(decode(bad_idat), LoadError);

  std::string bad_text_crc = png;
  bad_text_crc[find_chunk(png, "zTXt") + 10] ^= 1;
  EXPECT_THROW(decode_text(bad_text_crc), LoadError);

  std::string bad_text = png;
  const size_t ztxt = find_chunk(png, "zTXt");
  for (size_t k = 8 + 12; k < 8 + 20; ++k) bad_text[ztxt + k] = 0x11;  // damaged deflate data
  fix_crc(bad_text, ztxt);
  EXPECT_THROW(decode_text(bad_text), LoadError);
  EXPECT_NO_THROW(decode(bad_text));  // pixels do not depend on text chunks
}

TEST(PngHostileTest, HugeDeclaredDimensionsAreRefusedBeforeAllocating) {
  const std::string png = small_png();
  const auto with_size = [&](uint32_t w, uint32_t h, uint8_t color_type) {
    std::string s = png;
    for (int k = 0; k < 4; ++k) {
      s[16 + static_cast<size_t>(k)] = static_cast<char>(w >> (24 - 8 * k));
      s[20 + static_cast<size_t>(k)] = static_cast<char>(h >> (24 - 8 * k));
    }
    s[25] = static_cast<char>(color_type);
    fix_crc(s, 8);
    return s;
  };
  for (const auto& [w, h] : std::vector<std::pair<uint32_t, uint32_t>>{
           {100000, 1}, {1, 100000}, {65535, 65535}, {60000, 40000}, {0x7FFFFFFF, 0x7FFFFFFF}, {0, 4}}) {
    try {
      decode(with_size(w, h, PNG_COLOR_TYPE_RGB_ALPHA));
      ADD_FAILURE() << w << "x" << h << " decoded";
    } catch (const LoadError& e) {
      EXPECT_EQ(e.file(), "test.png");
    }
  }
}

TEST(PngHostileTest, NotAPNG) {
  EXPECT_THROW(decode(""), LoadError);
  EXPECT_THROW(decode("GIF89a..........................."), LoadError);
  EXPECT_THROW(decode_text("\x89PNG\r\n\x1A\n"), LoadError);
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 131 + 7);
  EXPECT_THROW(decode(garbage), LoadError);
  test::TempDir dir;
  EXPECT_THROW(read_png(dir.file("missing.png")), LoadError);
  EXPECT_THROW(read_png_text(dir.path()), LoadError);
  try {
    read_png(dir.file("missing.png"));
  } catch (const LoadError& e) {
    EXPECT_EQ(e.file(), dir.file("missing.png"));
  }
}

TEST(PngHostileTest, TextCompressionBombIsRefused) {
  RawPng p;
  p.rows = {{1}};
  p.text_before = {{PNG_TEXT_COMPRESSION_zTXt, "parameters", std::string(16u << 20, 'a')}};
  const std::string png = encode_raw(p);
  ASSERT_LT(png.size(), 100000u);
  EXPECT_THROW(decode_text(png), LoadError);
  EXPECT_EQ(decode(png).pixels, (std::vector<uint16_t>{1}));  // the image itself is fine

  RawPng q;  // an iTXt bomb too
  q.rows = {{1}};
  q.text_before = {{PNG_ITXT_COMPRESSION_zTXt, "parameters", std::string(16u << 20, 'b')}};
  EXPECT_THROW(decode_text(encode_raw(q)), LoadError);

  RawPng many;  // each chunk under the limit, all together over it
  many.rows = {{1}};
  for (int i = 0; i < 6; ++i)
    many.text_before.push_back({PNG_TEXT_COMPRESSION_zTXt, "k" + std::to_string(i), std::string(6u << 20, 'c')});
  EXPECT_THROW(decode_text(encode_raw(many)), LoadError);
}

}  // namespace
}  // namespace genvis::io
