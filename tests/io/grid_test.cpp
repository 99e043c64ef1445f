#include "core/error.h"
#include "core/file.h"
#include "io/grid.h"
#include "support/test_support.h"

namespace genvis::io {
namespace {

Image pattern(int w, int h, int channels, int seed) {
  Image im = Image::blank(w, h, channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) im.at(x, y, c) = static_cast<uint16_t>((seed * 50 + x * 13 + y * 29 + c * 7) % 200);
  return im;
}

bool is_background(const Image& sheet, int x, int y, const std::array<uint8_t, 3>& bg) {
  return sheet.at(x, y, 0) == bg[0] && sheet.at(x, y, 1) == bg[1] && sheet.at(x, y, 2) == bg[2];
}

// Asserts that `src` (RGB, opaque) sits at (ox, oy) in the sheet.
void expect_placed(const Image& sheet, const Image& src, int ox, int oy) {
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(sheet.at(ox + x, oy + y, c), src.at(x, y, c)) << x << "," << y;
}

int ink_in(const Image& sheet, int x0, int y0, int x1, int y1, const std::array<uint8_t, 3>& bg) {
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) n += !is_background(sheet, x, y, bg);
  return n;
}

bool have_font() { return file_exists(kDefaultFontPath); }

TEST(GridTest, CellPlacementIsExact) {
  GridOptions opt;
  opt.background = {255, 250, 245};
  const Image a = pattern(3, 2, 3, 1), b = pattern(2, 4, 3, 2);
  const Image sheet = make_grid({a, b}, 0, {}, opt);
  EXPECT_EQ(sheet.channels, 3);
  EXPECT_EQ(sheet.bit_depth, 8);
  EXPECT_EQ(sheet.width, 2 * 3 + 3 * 8);  // cells are 3x4
  EXPECT_EQ(sheet.height, 4 + 2 * 8);
  expect_placed(sheet, a, 8, 8 + 1);      // centred vertically: (4 - 2) / 2
  expect_placed(sheet, b, 8 + 3 + 8, 8);  // (3 - 2) / 2 == 0 horizontally
  EXPECT_EQ(ink_in(sheet, 0, 0, sheet.width, sheet.height, opt.background), 3 * 2 + 2 * 4);
}

TEST(GridTest, ColumnsAndRows) {
  std::vector<Image> images;
  for (int i = 0; i < 7; ++i) images.push_back(pattern(4, 4, 3, i));
  GridOptions opt;
  opt.padding = 2;
  const Image three = make_grid(images, 3, {}, opt);
  EXPECT_EQ(three.width, 3 * 4 + 4 * 2);
  EXPECT_EQ(three.height, 3 * 4 + 4 * 2);
  for (int i = 0; i < 7; ++i) expect_placed(three, images[static_cast<size_t>(i)], 2 + (i % 3) * 6, 2 + (i / 3) * 6);

  const Image automatic = make_grid(images, 0, {}, opt);  // ceil(sqrt(7)) == 3
  EXPECT_EQ(automatic.width, three.width);
  EXPECT_EQ(make_grid({images[0], images[1], images[2], images[3]}, 0, {}, opt).width, 2 * 4 + 3 * 2);
  EXPECT_EQ(make_grid({images[0]}, 0, {}, opt).width, 4 + 2 * 2);
  EXPECT_EQ(make_grid({images[0], images[1]}, 10, {}, opt).width, 2 * 4 + 3 * 2);  // clamped to n
  opt.padding = 0;
  const Image tight = make_grid({images[0], images[1]}, 1, {}, opt);
  EXPECT_EQ(tight.width, 4);
  expect_placed(tight, images[1], 0, 4);
}

TEST(GridTest, ConvertsDepthChannelsAndAlpha) {
  Image gray16 = Image::blank(1, 1, 1, 16, 65535);
  Image rgba = Image::blank(3, 1, 4);
  rgba.pixels = {10, 20, 30, 0, 10, 20, 30, 255, 200, 100, 0, 128};
  GridOptions opt;
  opt.padding = 0;
  opt.background = {0, 0, 100};
  const Image sheet = make_grid({gray16, rgba}, 2, {}, opt);  // cells are 3x1
  EXPECT_EQ(sheet.width, 6);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(sheet.at(1, 0, c), 255);  // gray16 centred in its cell
  EXPECT_TRUE(is_background(sheet, 0, 0, opt.background));
  EXPECT_TRUE(is_background(sheet, 2, 0, opt.background));
  // Alpha 0 shows the background, 255 the image, 128 a rounded blend.
  EXPECT_EQ(sheet.at(3, 0, 0), 0);
  EXPECT_EQ(sheet.at(3, 0, 2), 100);
  EXPECT_EQ(sheet.at(4, 0, 0), 10);
  EXPECT_EQ(sheet.at(4, 0, 2), 30);
  EXPECT_EQ(sheet.at(5, 0, 0), (200 * 128 + 0 * 127 + 127) / 255);
  EXPECT_EQ(sheet.at(5, 0, 1), (100 * 128 + 127) / 255);
  EXPECT_EQ(sheet.at(5, 0, 2), (0 * 128 + 100 * 127 + 127) / 255);
}

TEST(GridTest, CaptionsDrawInTheirBoxOnly) {
  if (!have_font()) GTEST_SKIP() << kDefaultFontPath << " is not installed";
  const Image a = Image::blank(64, 48, 3, 8, 255), b = Image::blank(64, 48, 3, 8, 255);
  GridOptions opt;
  opt.background = {255, 255, 255};
  const Image plain = make_grid({a, b}, 2, {}, opt);
  const Image sheet = make_grid({a, b}, 2, {"Hello", ""}, opt);
  EXPECT_GT(sheet.height, plain.height);  // caption rows added
  const int cap_y0 = 8 + 48, cap_y1 = sheet.height - 8;
  EXPECT_GT(ink_in(sheet, 8, cap_y0, 8 + 64, cap_y1, opt.background), 20);           // "Hello" drawn
  EXPECT_EQ(ink_in(sheet, 8 + 64 + 8, cap_y0, 8 + 128 + 8, cap_y1, opt.background), 0);  // empty caption
  EXPECT_EQ(ink_in(sheet, 0, 0, sheet.width, cap_y0, opt.background), 0);             // images are white
  EXPECT_EQ(ink_in(sheet, 8 + 64, 0, 8 + 64 + 8, sheet.height, opt.background), 0);    // padding column
  // Anti-aliased: some pixels are between text and background.
  bool partial = false;
  for (int y = cap_y0; y < cap_y1; ++y)
    for (int x = 8; x < 72; ++x) partial |= sheet.at(x, y, 0) > 0 && sheet.at(x, y, 0) < 255;
  EXPECT_TRUE(partial);
  opt.text_color = {255, 0, 0};
  const Image red = make_grid({a, b}, 2, {"Hello", ""}, opt);
  for (int y = cap_y0; y < cap_y1; ++y)
    for (int x = 8; x < 72; ++x) ASSERT_EQ(red.at(x, y, 0), 255);
}

TEST(GridTest, LongCaptionsWrapAndTruncate) {
  if (!have_font()) GTEST_SKIP() << kDefaultFontPath << " is not installed";
  const Image a = Image::blank(80, 20, 3, 8, 255);
  GridOptions opt;
  opt.max_caption_lines = 3;
  const std::string words = "the quick brown fox jumps over the lazy dog again and again and again";
  const Image sheet = make_grid({a}, 1, {words}, opt);
  const int line_top = 8 + 20 + 4;
  const int band = (sheet.height - 8 - line_top) / 3;
  for (int l = 0; l < 3; ++l)
    EXPECT_GT(ink_in(sheet, 8, line_top + l * band, 88, line_top + (l + 1) * band, opt.background), 10) << "line " << l;
  EXPECT_EQ(ink_in(sheet, 88, 0, sheet.width, sheet.height, opt.background), 0);  // never past the cell

  // No spaces at all, many lines of text, unicode (including glyphs DejaVu lacks) and controls.
  const std::string hostile = std::string(5000, 'W') + "\n\n\xE7\x8C\xAB\t\x01\xFF \xC3\xA9";
  for (const int lines : {1, 2, 64}) {
    opt.max_caption_lines = lines;
    const Image h = make_grid({a, a}, 2, {hostile, "\xE2\x80\xA6\n\n\n"}, opt);
    EXPECT_EQ(ink_in(h, 88, 0, 96, h.height, opt.background), 0);
  }
}

TEST(GridTest, MissingFontIsALoadErrorOnlyWhenCaptioning) {
  GridOptions opt;
  opt.font_path = "/nonexistent/DejaVuSans.ttf";
  const Image a = Image::blank(4, 4, 3);
  EXPECT_NO_THROW(make_grid({a}, 0, {}, opt));
  EXPECT_NO_THROW(make_grid({a}, 0, {""}, opt));
  try {
    make_grid({a}, 0, {"caption"}, opt);
    ADD_FAILURE() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.file(), opt.font_path);
    EXPECT_NE(std::string(e.what()).find("fonts-dejavu-core"), std::string::npos) << e.what();
  }
  test::TempDir dir;
  test::write_bytes(dir.file("bad.ttf"), "not a font");
  opt.font_path = dir.file("bad.ttf");
  EXPECT_THROW(make_grid({a}, 0, {"caption"}, opt), LoadError);
}

TEST(GridTest, BadArguments) {
  const Image a = Image::blank(4, 4, 3);
  EXPECT_THROW(make_grid({}), UsageError);
  EXPECT_THROW(make_grid({a}, -1), UsageError);
  EXPECT_THROW(make_grid({a, a}, 0, {"one"}), UsageError);
  EXPECT_THROW(make_grid({Image{}}), UsageError);
  GridOptions opt;
  opt.padding = -1;
  EXPECT_THROW(make_grid({a}, 0, {}, opt), UsageError);
  opt = {};
  opt.padding = 4000;
  EXPECT_THROW(make_grid(std::vector<Image>(20, a), 20, {}, opt), UsageError);  // over 65535 wide
}

}  // namespace
}  // namespace genvis::io
