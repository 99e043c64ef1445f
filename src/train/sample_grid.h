// The captioned sample sheets the training recipes write while they train.
//
//   const std::string path = genvis::train::write_sample_grid(images, captions, 32, out / "samples", step);
//   // -> <out>/samples/step-00000500.png, written atomically
#pragma once
#include "io/image.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace genvis::train {

// `images` `columns` per row, each with its caption underneath (a font size fitting images of side
// `resolution`, at most 3 lines; "" for none; no captions when no font is installed), written to
// <dir>/step-NNNNNNNN.png (8 digits). Returns the file's path.
std::string write_sample_grid(const std::vector<io::Image>& images, const std::vector<std::string>& captions,
                              int64_t resolution, const std::filesystem::path& dir, int64_t step, int columns = 4);

}  // namespace genvis::train
