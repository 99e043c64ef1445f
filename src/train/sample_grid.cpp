#include "train/sample_grid.h"

#include "core/error.h"
#include "core/file.h"
#include "io/grid.h"

#include <algorithm>
#include <cstdio>

namespace genvis::train {

std::string write_sample_grid(const std::vector<io::Image>& images, const std::vector<std::string>& captions,
                              int64_t resolution, const std::filesystem::path& dir, int64_t step, int columns) {
  io::Image grid;
  try {
    io::GridOptions options;  // small images: a small font, three lines of caption
    options.font_size = std::clamp(static_cast<int>(resolution / 4), 8, 16);
    options.max_caption_lines = 3;
    grid = io::make_grid(images, columns, captions, options);
  } catch (const Error&) {
    grid = io::make_grid(images, columns);  // no caption font installed
  }
  std::filesystem::create_directories(dir);
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld.png", static_cast<long long>(step));
  const std::string path = (dir / name).string();
  write_file_atomic(path, io::encode_png(grid));
  return path;
}

}  // namespace genvis::train
