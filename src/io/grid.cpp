#include "io/grid.h"

#include "core/error.h"
#include "core/file.h"
#include "io/utf8.h"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

namespace genvis::io {
namespace {

constexpr int kCaptionGap = 4;
constexpr char32_t kEllipsis = 0x2026;
constexpr size_t kMaxCaptionChars = 2048;

struct LibraryDeleter {
  void operator()(FT_Library lib) const { FT_Done_FreeType(lib); }
};
struct FaceDeleter {
  void operator()(FT_Face face) const { FT_Done_Face(face); }
};

struct Glyph {
  int width = 0, rows = 0, left = 0, top = 0;
  long advance = 0;  // 26.6 fixed point
  unsigned index = 0;
  std::vector<uint8_t> coverage;  // [rows, width]
};

// One font at one pixel size, with the glyphs rendered so far.
class Font {
public:
  Font(const std::string& path, int pixel_size) : path_(path) {
    if (!file_exists(path))
      throw LoadError(path, "caption font not found; install the Debian package fonts-dejavu-core or set "
                            "GridOptions::font_path");
    FT_Library lib = nullptr;
    if (FT_Init_FreeType(&lib) != 0) throw RuntimeError("cannot initialise FreeType");
    library_.reset(lib);
    FT_Face face = nullptr;
    if (const FT_Error err = FT_New_Face(library_.get(), path.c_str(), 0, &face); err != 0)
      throw LoadError(path, "cannot load caption font (FreeType error " + std::to_string(err) + ")");
    face_.reset(face);
    if (const FT_Error err = FT_Set_Pixel_Sizes(face_.get(), 0, static_cast<FT_UInt>(pixel_size)); err != 0)
      throw LoadError(path, "font cannot be drawn at " + std::to_string(pixel_size) + " pixels (FreeType error " +
                                std::to_string(err) + ")");
    const FT_Size_Metrics& m = face_->size->metrics;
    ascender_ = static_cast<int>((m.ascender + 63) >> 6);
    line_height_ = std::max(1, static_cast<int>((m.height + 63) >> 6));
  }

  int ascender() const { return ascender_; }
  int line_height() const { return line_height_; }

  const Glyph& glyph(char32_t cp) {
    if (const auto it = glyphs_.find(cp); it != glyphs_.end()) return it->second;
    Glyph g;
    g.index = FT_Get_Char_Index(face_.get(), cp);
    if (FT_Load_Glyph(face_.get(), g.index, FT_LOAD_DEFAULT) == 0 &&
        FT_Render_Glyph(face_->glyph, FT_RENDER_MODE_NORMAL) == 0) {
      const FT_GlyphSlot slot = face_->glyph;
      const FT_Bitmap& bm = slot->bitmap;
      g.advance = slot->advance.x;
      g.left = slot->bitmap_left;
      g.top = slot->bitmap_top;
      if (bm.pixel_mode == FT_PIXEL_MODE_GRAY) {
        g.width = static_cast<int>(bm.width);
        g.rows = static_cast<int>(bm.rows);
        g.coverage.resize(static_cast<size_t>(g.width) * static_cast<size_t>(g.rows));
        for (int y = 0; y < g.rows; ++y)
          for (int x = 0; x < g.width; ++x)
            g.coverage[static_cast<size_t>(y * g.width + x)] =
                static_cast<uint8_t>(static_cast<unsigned>(bm.buffer[y * bm.pitch + x]) * 255 /
                                     std::max(1u, static_cast<unsigned>(bm.num_grays - 1)));
      }
    }
    return glyphs_.emplace(cp, std::move(g)).first->second;
  }

  long kerning(const Glyph& left, const Glyph& right) const {
    if (!FT_HAS_KERNING(face_.get()) || left.index == 0 || right.index == 0) return 0;
    FT_Vector delta{};
    if (FT_Get_Kerning(face_.get(), left.index, right.index, FT_KERNING_DEFAULT, &delta) != 0) return 0;
    return delta.x;
  }

  // Width in pixels of a line of code points.
  int measure(const std::u32string& text) {
    long pen = 0;
    const Glyph* prev = nullptr;
    for (const char32_t cp : text) {
      const Glyph& g = glyph(cp);
      if (prev) pen += kerning(*prev, g);
      pen += g.advance;
      prev = &g;
    }
    return static_cast<int>((pen + 63) >> 6);
  }

private:
  std::string path_;
  std::unique_ptr<FT_LibraryRec_, LibraryDeleter> library_;
  std::unique_ptr<FT_FaceRec_, FaceDeleter> face_;
  std::map<char32_t, Glyph> glyphs_;
  int ascender_ = 0, line_height_ = 1;
};

// Captions are cut to kMaxCaptionChars code points: more cannot fit in a cell anyway.
std::u32string decode_caption(const std::string& caption) {
  std::u32string out;
  for (size_t i = 0; i < caption.size() && out.size() < kMaxCaptionChars;) {
    char32_t cp = utf8::decode(caption, i);
    if (cp == '\r' || cp == '\t') cp = ' ';
    if (cp != '\n' && cp < 0x20) continue;
    out += cp;
  }
  return out;
}

// Number of leading code points of `text` that fit in max_width (at least one).
size_t fit_prefix(Font& font, const std::u32string& text, int max_width) {
  long pen = 0;
  const Glyph* prev = nullptr;
  size_t fit = 0;
  for (const char32_t cp : text) {
    const Glyph& g = font.glyph(cp);
    if (prev) pen += font.kerning(*prev, g);
    pen += g.advance;
    prev = &g;
    if (fit > 0 && ((pen + 63) >> 6) > max_width) break;
    ++fit;
  }
  return fit;
}

// Greedy word wrap to max_width; the last kept line gets an ellipsis when text was cut.
std::vector<std::u32string> wrap_caption(Font& font, const std::u32string& text, int max_width, size_t max_lines) {
  std::vector<std::u32string> lines;
  size_t start = 0;
  while (lines.size() <= max_lines) {
    const size_t nl = text.find(U'\n', start);
    const std::u32string paragraph = text.substr(start, nl == std::u32string::npos ? std::u32string::npos : nl - start);
    std::u32string line;
    size_t i = 0;
    while (i < paragraph.size() && lines.size() <= max_lines) {
      size_t j = paragraph.find(U' ', i);
      if (j == std::u32string::npos) j = paragraph.size();
      std::u32string word = paragraph.substr(i, j - i);
      i = j + 1;
      std::u32string candidate = line.empty() ? word : line + U' ' + word;
      if (font.measure(candidate) <= max_width) {
        line = std::move(candidate);
        continue;
      }
      if (!line.empty()) lines.push_back(std::move(line));
      line.clear();
      // A word wider than the line is broken between characters.
      while (!word.empty() && lines.size() <= max_lines && font.measure(word) > max_width) {
        const size_t fit = fit_prefix(font, word, max_width);
        lines.push_back(word.substr(0, fit));
        word.erase(0, fit);
      }
      line = std::move(word);
    }
    lines.push_back(std::move(line));
    if (nl == std::u32string::npos) break;
    start = nl + 1;
  }
  const bool cut = lines.size() > max_lines;
  if (cut) lines.resize(max_lines);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (cut) {
    if (lines.empty()) lines.emplace_back();
    std::u32string& last = lines.back();
    while (!last.empty() && font.measure(last + kEllipsis) > max_width) last.pop_back();
    while (!last.empty() && last.back() == U' ') last.pop_back();
    last += kEllipsis;
  }
  return lines;
}

struct Box {
  int x0, y0, x1, y1;  // half-open
};

void draw_line(Image& sheet, Font& font, const std::u32string& line, int pen_x, int baseline, const Box& clip,
               const std::array<uint8_t, 3>& color) {
  long pen = static_cast<long>(pen_x) << 6;
  const Glyph* prev = nullptr;
  for (const char32_t cp : line) {
    const Glyph& g = font.glyph(cp);
    if (prev) pen += font.kerning(*prev, g);
    const int gx = static_cast<int>((pen + 32) >> 6) + g.left;
    const int gy = baseline - g.top;
    for (int y = 0; y < g.rows; ++y) {
      const int sy = gy + y;
      if (sy < clip.y0 || sy >= clip.y1) continue;
      for (int x = 0; x < g.width; ++x) {
        const int sx = gx + x;
        if (sx < clip.x0 || sx >= clip.x1) continue;
        const unsigned a = g.coverage[static_cast<size_t>(y * g.width + x)];
        if (a == 0) continue;
        for (int c = 0; c < 3; ++c) {
          uint16_t& p = sheet.at(sx, sy, c);
          p = static_cast<uint16_t>((p * (255 - a) + color[static_cast<size_t>(c)] * a + 127) / 255);
        }
      }
    }
    pen += g.advance;
    prev = &g;
  }
}

}  // namespace

Image make_grid(const std::vector<Image>& images, int columns, const std::vector<std::string>& captions,
                const GridOptions& options) {
  if (images.empty()) throw UsageError("make_grid: no images");
  if (columns < 0) throw UsageError("make_grid: columns must be >= 0, got " + std::to_string(columns));
  if (!captions.empty() && captions.size() != images.size())
    throw UsageError("make_grid: " + std::to_string(captions.size()) + " captions for " +
                     std::to_string(images.size()) + " images");
  if (options.padding < 0 || options.padding > 4096)
    throw UsageError("make_grid: padding must be 0..4096, got " + std::to_string(options.padding));
  if (options.font_size < 4 || options.font_size > 512)
    throw UsageError("make_grid: font_size must be 4..512, got " + std::to_string(options.font_size));
  if (options.max_caption_lines < 1 || options.max_caption_lines > 64)
    throw UsageError("make_grid: max_caption_lines must be 1..64, got " + std::to_string(options.max_caption_lines));
  for (size_t i = 0; i < images.size(); ++i) images[i].validate("make_grid image " + std::to_string(i));

  const int n = static_cast<int>(images.size());
  int cols = columns == 0 ? static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n)))) : columns;
  while (columns == 0 && cols > 1 && (cols - 1) * (cols - 1) >= n) --cols;  // sqrt rounding
  while (columns == 0 && cols * cols < n) ++cols;
  cols = std::min(cols, n);
  const int rows = (n + cols - 1) / cols;
  int cell_w = 0, cell_h = 0;
  for (const auto& im : images) {
    cell_w = std::max(cell_w, im.width);
    cell_h = std::max(cell_h, im.height);
  }

  const bool any_caption = std::any_of(captions.begin(), captions.end(), [](const std::string& c) { return !c.empty(); });
  std::unique_ptr<Font> font;
  int caption_h = 0;
  if (any_caption) {
    font = std::make_unique<Font>(options.font_path, options.font_size);
    caption_h = kCaptionGap + options.max_caption_lines * font->line_height();
  }

  const int64_t pad = options.padding;
  const int64_t sheet_w = int64_t{cols} * cell_w + (cols + 1) * pad;
  const int64_t sheet_h = int64_t{rows} * (cell_h + caption_h) + (rows + 1) * pad;
  if (sheet_w > 65535 || sheet_h > 65535)
    throw UsageError("make_grid: the sheet would be " + std::to_string(sheet_w) + "x" + std::to_string(sheet_h) +
                     " pixels, more than 65535 a side");
  Image sheet = Image::blank(static_cast<int>(sheet_w), static_cast<int>(sheet_h), 3);
  for (size_t i = 0; i < sheet.pixels.size(); ++i) sheet.pixels[i] = options.background[i % 3];

  for (int k = 0; k < n; ++k) {
    const int col = k % cols, row = k / cols;
    const int x0 = options.padding + col * (cell_w + options.padding);
    const int y0 = options.padding + row * (cell_h + caption_h + options.padding);
    const Image src = images[static_cast<size_t>(k)].to_8bit().with_channels(4);
    const int ox = x0 + (cell_w - src.width) / 2, oy = y0 + (cell_h - src.height) / 2;
    for (int y = 0; y < src.height; ++y)
      for (int x = 0; x < src.width; ++x) {
        const unsigned a = src.at(x, y, 3);
        for (int c = 0; c < 3; ++c) {
          const unsigned s = src.at(x, y, c), bg = options.background[static_cast<size_t>(c)];
          sheet.at(ox + x, oy + y, c) = static_cast<uint16_t>((s * a + bg * (255 - a) + 127) / 255);
        }
      }

    if (!font || captions[static_cast<size_t>(k)].empty()) continue;
    const Box box{x0, y0 + cell_h + kCaptionGap, x0 + cell_w, y0 + cell_h + caption_h};
    const auto lines = wrap_caption(*font, decode_caption(captions[static_cast<size_t>(k)]), cell_w,
                                    static_cast<size_t>(options.max_caption_lines));
    for (size_t l = 0; l < lines.size(); ++l) {
      const int width = font->measure(lines[l]);
      const int pen_x = x0 + std::max(0, (cell_w - width) / 2);
      const int baseline = box.y0 + static_cast<int>(l) * font->line_height() + font->ascender();
      draw_line(sheet, *font, lines[l], pen_x, baseline, box, options.text_color);
    }
  }
  return sheet;
}

Image frame_strip(const std::vector<Image>& frames, int padding) {
  if (frames.empty()) throw UsageError("frame_strip: no frames");
  GridOptions options;
  options.padding = padding;
  return make_grid(frames, static_cast<int>(frames.size()), {}, options);
}

}  // namespace genvis::io
