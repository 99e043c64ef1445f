#include "pipelines/shipped_models.h"

#include "core/error.h"

#include <algorithm>
#include <cstdlib>
#include <dlfcn.h>
#include <filesystem>

namespace genvis::pipelines {

namespace fs = std::filesystem;

namespace {

// The file this code was loaded from: the executable, or libgenvis.so when linked as a library.
fs::path this_library() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&this_library), &info) == 0 || !info.dli_fname) return {};
  std::error_code ec;
  const fs::path p = fs::canonical(info.dli_fname, ec);
  return ec ? fs::path() : p;
}

}  // namespace

std::vector<std::string> default_model_candidates() {
  // The variable, when set, is the only place: a wrong path is an error, not a silent fallback.
  if (const char* env = std::getenv("GENVIS_DEFAULT_MODEL"); env && *env) return {env};
  return shipped_model_candidates(kDefaultModelName);
}

std::vector<std::string> shipped_model_candidates(const std::string& name) {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path dir = exe.parent_path();
    for (const fs::path& base : {dir / "models", dir.parent_path() / "models", dir.parent_path() / "share" / "genvis" / "models"})
      out.push_back((base / name).lexically_normal().string());
  }
  if (const fs::path lib = this_library(); !lib.empty())
    out.push_back((lib.parent_path().parent_path() / "share" / "genvis" / "models" / name).lexically_normal().string());
#ifdef GENVIS_SOURCE_MODELS_DIR
  out.push_back((fs::path(GENVIS_SOURCE_MODELS_DIR) / name).lexically_normal().string());
#endif
  std::vector<std::string> unique;
  for (const auto& c : out)
    if (std::find(unique.begin(), unique.end(), c) == unique.end()) unique.push_back(c);
  return unique;
}

namespace {

std::string first_model_folder(const std::vector<std::string>& candidates, const std::string& what,
                               const char* variable) {
  std::string looked;
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(fs::path(c) / "model_index.json", ec)) return c;
    looked += (looked.empty() ? "" : ", ") + c;
  }
  throw UsageError("no --model given and the built-in " + what + " was not found (looked in: " + looked +
                   "); pass --model DIR|FILE or set " + variable);
}

}  // namespace

std::string find_default_model() {
  return first_model_folder(default_model_candidates(), std::string("model ") + kDefaultModelName,
                            "GENVIS_DEFAULT_MODEL");
}

std::vector<std::string> default_video_model_candidates() {
  if (const char* env = std::getenv("GENVIS_DEFAULT_VIDEO_MODEL"); env && *env) return {env};
  return shipped_model_candidates(kDefaultVideoModelName);
}

std::string find_default_video_model() {
  return first_model_folder(default_video_model_candidates(),
                            std::string("video model ") + kDefaultVideoModelName +
                                " (train one with: genvis train video --config configs/video-shapes.json)",
                            "GENVIS_DEFAULT_VIDEO_MODEL");
}

std::string find_shipped_model(const std::string& name, const std::string& marker) {
  for (const auto& c : shipped_model_candidates(name)) {
    std::error_code ec;
    if (fs::is_regular_file(fs::path(c) / marker, ec)) return c;
  }
  return {};
}

}  // namespace genvis::pipelines
