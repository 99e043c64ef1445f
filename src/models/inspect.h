// What is in a file or folder: weight files (format, tensors, parameters, detected layout and
// family), diffusers folders (their components), PNG images (size and generation parameters),
// and videos (MP4/WebM/GIF/WebP files and folders of PNG frames: size, frame count, fps, codec,
// generation parameters). The result is JSON so that the CLI and a server present the same facts.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace genvis::models {

struct InspectOptions {
  bool list_tensors = false;  // include every tensor's name, dtype and shape
  bool hash = false;          // include the file's SHA-256 and A1111 model hash (reads the whole file)
};

// Throws LoadError when the path cannot be read or is of no known kind.
nlohmann::ordered_json inspect_path(const std::string& path, const InspectOptions& options = {});

// Human-readable rendering of inspect_path()'s result.
std::string format_inspection(const nlohmann::ordered_json& info);

}  // namespace genvis::models
