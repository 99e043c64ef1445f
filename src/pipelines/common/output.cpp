#include "pipelines/common/output.h"

#include "core/error.h"
#include "core/file.h"
#include "core/text.h"
#include "io/grid.h"
#include "io/image.h"
#include "io/image_tensor.h"
#include "io/video.h"

#include <cctype>
#include <filesystem>
#include <map>
#include <mutex>

namespace genvis::pipelines {

namespace {

// video [3,T,H,W] in [0,1] -> one PNG of its frames left to right, with the parameters chunk.
std::string encode_frame_strip_png(const at::Tensor& video, const io::GenerationParameters& parameters) {
  std::vector<io::Image> frames;
  for (int64_t t = 0; t < video.size(1); ++t) frames.push_back(io::tensor_to_image(video.select(1, t) * 2 - 1));
  return io::encode_png(io::frame_strip(frames), {{io::kInfotextKey, io::format_infotext(parameters)}});
}

// The formats io/video.h writes are built in: .mp4, .webp, and "" for a frames folder (a path
// ending in '/' or without extension).
struct VideoWriters {
  VideoWriters() {
    const VideoWriter io_writer = [](const std::string& path, const at::Tensor& video, double fps,
                                     const io::GenerationParameters& parameters) {
      io::write_video(path, video, fps, parameters);
    };
    for (const char* extension : {".mp4", ".webp", ""}) by_extension[extension] = io_writer;
    by_extension[".png"] = [](const std::string& path, const at::Tensor& video, double,
                              const io::GenerationParameters& parameters) {
      write_file_atomic(path, encode_frame_strip_png(video, parameters));
    };
  }
  std::mutex mutex;
  std::map<std::string, VideoWriter> by_extension;
};

// The key a path's writer is registered under: its extension in lower case; "" for a folder.
std::string extension_of(const std::string& path) {
  if (!path.empty() && path.back() == '/') return "";
  return ascii_lower(std::filesystem::path(path).extension().string());
}

VideoWriters& video_writers() {
  static VideoWriters w;
  return w;
}

}  // namespace

std::string output_path(const std::string& path, int64_t i, int64_t n) {
  if (n <= 1) return path;
  if (path.size() > 1 && path.back() == '/') return output_path(path.substr(0, path.size() - 1), i, n) + "/";
  const std::filesystem::path out(path);
  return (out.parent_path() / (out.stem().string() + "-" + std::to_string(i) + out.extension().string())).string();
}

void register_video_writer(const std::string& extension, VideoWriter writer) {
  auto& w = video_writers();
  std::lock_guard lock(w.mutex);
  w.by_extension[ascii_lower(extension)] = std::move(writer);
}

std::string encode_sample_png(const at::Tensor& image, const io::GenerationParameters* parameters) {
  io::PngText text;
  if (parameters) text.emplace_back(io::kInfotextKey, io::format_infotext(*parameters));
  return io::encode_png(io::tensor_to_image(image * 2 - 1), text);
}

std::vector<std::string> write_result(const Result& result, const OutputOptions& options) {
  if (!result.samples.defined() || (result.samples.dim() != 4 && result.samples.dim() != 5) || result.samples.size(1) != 3)
    throw RuntimeError("write_result: samples must be [B,3,H,W] or [B,3,T,H,W]");
  const int64_t n = result.samples.size(0);
  if (!result.parameters.empty() && static_cast<int64_t>(result.parameters.size()) != n)
    throw RuntimeError("write_result: " + std::to_string(result.parameters.size()) + " parameter sets for " +
                       std::to_string(n) + " samples");
  const std::string extension = extension_of(options.path);
  VideoWriter video;
  if (result.is_video()) {
    auto& w = video_writers();
    std::lock_guard lock(w.mutex);
    const auto it = w.by_extension.find(extension);
    if (it == w.by_extension.end()) {
      std::string known;
      for (const auto& [e, _] : w.by_extension) known += (known.empty() ? "" : ", ") + (e.empty() ? "a folder" : e);
      throw UsageError("'output': no video writer for '" + extension + "'" +
                       (known.empty() ? " (this build writes no video files)" : " (known: " + known + ")"));
    }
    video = it->second;
  }
  std::vector<std::string> written;
  for (int64_t i = 0; i < n; ++i) {
    const std::string path = output_path(options.path, i, n);
    const io::GenerationParameters p =
        result.parameters.empty() ? io::GenerationParameters{} : result.parameters[static_cast<size_t>(i)];
    if (video) {
      video(path, result.samples[i], options.fps, p);
    } else {
      write_file_atomic(path, encode_sample_png(result.samples[i], result.parameters.empty() ? nullptr : &p));
    }
    written.push_back(path);
  }
  return written;
}

}  // namespace genvis::pipelines
