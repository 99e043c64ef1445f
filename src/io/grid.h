// Contact sheets: images side by side in equal cells, each with an optional caption.
//
//   genvis::io::Image sheet = genvis::io::make_grid(images, 0, {"seed 1", "seed 2", "seed 3"});
//   genvis::io::write_png("grid.png", sheet);
//
// Layout (all in pixels): cells are max(width) x max(height) of the images, separated and
// surrounded by `padding`. When any caption is non-empty, every cell gets a caption box of
// max_caption_lines text lines below it (starting 4 px under the cell). Cell (row, col) has its
// top-left at (padding + col * (cell_w + padding), padding + row * (cell_h + caption_h + padding))
// and each image is centred in its cell at ((cell_w - w) / 2, (cell_h - h) / 2), rounded down.
#pragma once
#include "io/image.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace genvis::io {

inline constexpr const char* kDefaultFontPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

struct GridOptions {
  int padding = 8;
  std::array<uint8_t, 3> background{255, 255, 255};
  std::array<uint8_t, 3> text_color{0, 0, 0};
  std::string font_path = kDefaultFontPath;  // Debian: fonts-dejavu-core
  int font_size = 16;                         // pixels per em
  // Captions are word-wrapped (and broken inside words too long for a line) to the cell width;
  // one cut short ends in "…". '\n' in a caption starts a new line.
  int max_caption_lines = 2;
};

// Returns an 8-bit RGB image. Images may differ in size, bit depth and channels (alpha is
// composited over the background). columns == 0 picks ceil(sqrt(n)); more columns than
// images are reduced to the image count. captions is empty or one UTF-8 string per image
// (an empty string draws nothing). Throws UsageError for bad arguments or a sheet over 65535
// pixels a side, and LoadError naming the font file when captions are drawn and it cannot be
// loaded.
Image make_grid(const std::vector<Image>& images, int columns = 0, const std::vector<std::string>& captions = {},
                const GridOptions& options = {});

// A clip's frames left to right in one image, `padding` px apart on white (a frame strip: what
// `genvis dataset preview`, the video recipe's sample sheets and a video written as .png show).
// UsageError for no frames.
Image frame_strip(const std::vector<Image>& frames, int padding = 1);

}  // namespace genvis::io
