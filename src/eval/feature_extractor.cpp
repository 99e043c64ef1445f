#include "eval/feature_extractor.h"

#include <filesystem>

namespace genvis::eval {

std::string folder_name(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "models/x/" -> "models/x"
  const std::string name = p.filename().string();
  return name.empty() || name == "." ? "model" : name;
}

}  // namespace genvis::eval
