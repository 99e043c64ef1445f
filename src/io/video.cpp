#include "io/video.h"

#include "core/error.h"
#include "core/file.h"
#include "core/text.h"
#include "io/image.h"
#include "io/video_internal.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>

namespace genvis::io {
namespace fs = std::filesystem;
using video_detail::Rgb8Frames;

namespace {

constexpr const char* kFpsKey = "fps";  // PNG text chunk of frames folders
constexpr int kMaxWriteSide = 16383;    // WebP's limit; H.264 levels end below it too

bool ends_with_slash(const std::string& path) { return !path.empty() && path.back() == '/'; }

std::string fps_text(double fps) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", fps);
  return buf;
}

// "frame-0003.png" < "frame-12.png": digit runs compare by value, everything else bytewise.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])), db = std::isdigit(static_cast<unsigned char>(b[j]));
    if (da && db) {
      size_t ei = i, ej = j;
      while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei]))) ++ei;
      while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej]))) ++ej;
      size_t si = i, sj = j;
      while (si + 1 < ei && a[si] == '0') ++si;
      while (sj + 1 < ej && b[sj] == '0') ++sj;
      if (ei - si != ej - sj) return ei - si < ej - sj;
      const int c = a.compare(si, ei - si, b, sj, ej - sj);
      if (c != 0) return c < 0;
      i = ei, j = ej;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i, ++j;
    }
  }
  if ((a.size() - i) != (b.size() - j)) return a.size() - i < b.size() - j;
  return a < b;
}

std::string frame_name(int64_t t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "frame-%04lld.png", static_cast<long long>(t));
  return buf;
}

// "frame-" digits ".png": the names write_frames owns in a folder.
bool is_frame_name(const std::string& name) {
  if (name.size() < 11 || name.compare(0, 6, "frame-") != 0 || name.compare(name.size() - 4, 4, ".png") != 0)
    return false;
  return std::all_of(name.begin() + 6, name.end() - 4, [](unsigned char c) { return std::isdigit(c); });
}

std::vector<std::string> png_files_in(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > 4 && ascii_lower(name.substr(name.size() - 4)) == ".png" && it->is_regular_file()) names.push_back(name);
  }
  if (ec) throw LoadError(dir, "cannot list the folder: " + ec.message());
  std::sort(names.begin(), names.end(), natural_less);
  return names;
}

std::string strip_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

Rgb8Frames to_rgb8(const at::Tensor& video) {
  if (!video.defined()) throw UsageError("video tensor is undefined");
  if (video.dim() != 4 || video.size(0) != 3)
    throw UsageError("video must be a [3, T, H, W] tensor, got " + c10::str(video.sizes()));
  const int64_t t = video.size(1), h = video.size(2), w = video.size(3);
  if (t < 1) throw UsageError("video has no frames (T = 0)");
  if (h < 1 || w < 1 || h > kMaxWriteSide || w > kMaxWriteSide)
    throw UsageError("video frames of " + std::to_string(w) + "x" + std::to_string(h) + " are outside 1.." +
                     std::to_string(kMaxWriteSide) + " per side");
  if (video.is_complex() || video.scalar_type() == at::kBool) throw UsageError("video must be a real-valued tensor");
  // [3,T,H,W] -> [T,H,W,3] bytes: clamp to [0,1] (NaN -> 0), round half to even.
  at::Tensor x = at::nan_to_num(video.detach().to(at::kCPU, at::kFloat), 0.0).clamp(0, 1);
  x = x.mul(255).round().to(at::kByte).permute({1, 2, 3, 0}).contiguous();
  Rgb8Frames f;
  f.count = t, f.height = static_cast<int>(h), f.width = static_cast<int>(w);
  f.pixels.assign(x.data_ptr<uint8_t>(), x.data_ptr<uint8_t>() + x.numel());
  return f;
}

at::Tensor to_tensor(Rgb8Frames& f) {
  at::Tensor bytes = at::from_blob(f.pixels.data(), {f.count, f.height, f.width, 3}, at::kByte);
  return bytes.permute({3, 0, 1, 2}).to(at::kFloat).div_(255).contiguous();
}

void write_frames(const std::string& path, const Rgb8Frames& frames, double fps, const std::string& parameters) {
  const std::string dir = strip_slashes(path);
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw UsageError("'" + dir + "' exists and is not a folder (a frames folder was asked for: the output has no "
                     "extension or ends in '/')");
  fs::create_directories(dir, ec);
  if (ec) throw RuntimeError(dir + ": cannot create the frames folder: " + ec.message());
  PngText text;
  if (!parameters.empty()) text.emplace_back(kInfotextKey, parameters);
  text.emplace_back(kFpsKey, fps_text(fps));
  Image image = Image::blank(frames.width, frames.height, 3);
  std::vector<std::string> written;
  for (int64_t t = 0; t < frames.count; ++t) {
    std::copy(frames.frame(t), frames.frame(t) + frames.frame_bytes(), image.pixels.begin());
    written.push_back(frame_name(t));
    write_png((fs::path(dir) / written.back()).string(), image, text);
  }
  // Frames of a longer video written here before would otherwise be read as part of this one.
  for (const auto& name : png_files_in(dir))
    if (is_frame_name(name) && std::find(written.begin(), written.end(), name) == written.end()) {
      fs::remove(fs::path(dir) / name, ec);
      if (ec) throw RuntimeError(dir + "/" + name + ": cannot remove a stale frame: " + ec.message());
    }
}

// Frames of a folder as [3,T,H,W] floats (16-bit PNGs keep their precision).
Video read_frames(const std::string& dir, int64_t max_frames) {
  std::vector<std::string> names = png_files_in(dir);
  if (names.empty()) throw LoadError(dir, "holds no PNG frames (*.png)");
  if (max_frames > 0 && static_cast<int64_t>(names.size()) > max_frames) names.resize(static_cast<size_t>(max_frames));
  const auto file = [&](size_t i) { return (fs::path(dir) / names[i]).string(); };
  Video v;
  at::Tensor frames;
  for (size_t i = 0; i < names.size(); ++i) {
    const Image image = read_png(file(i)).with_channels(3);
    if (i == 0) {
      frames = at::empty({3, static_cast<int64_t>(names.size()), image.height, image.width}, at::kFloat);
      for (const auto& [key, value] : read_png_text(file(0)))
        if (key == kFpsKey) {
          char* end = nullptr;
          const double fps = std::strtod(value.c_str(), &end);
          if (end && *end == '\0' && std::isfinite(fps) && fps > 0) v.fps = fps;
        }
    } else if (image.width != frames.size(3) || image.height != frames.size(2)) {
      throw LoadError(file(i), "frame is " + std::to_string(image.width) + "x" + std::to_string(image.height) + " but " +
                                   names[0] + " is " + std::to_string(frames.size(3)) + "x" +
                                   std::to_string(frames.size(2)) + ": a video's frames must share one size");
    }
    auto acc = frames.accessor<float, 4>();
    const auto max = static_cast<float>(image.max_value());
    const auto t = static_cast<int64_t>(i);
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < image.width; ++x)
        for (int c = 0; c < 3; ++c) acc[c][t][y][x] = static_cast<float>(image.at(x, y, c)) / max;
  }
  v.frames = frames;
  return v;
}

VideoInfo probe_frames(const std::string& dir) {
  const std::vector<std::string> names = png_files_in(dir);
  if (names.empty()) throw LoadError(dir, "holds no PNG frames (*.png)");
  const std::string first = (fs::path(dir) / names[0]).string();
  const Image image = read_png(first);
  VideoInfo info;
  info.format = "frames";
  info.codec = "png";
  info.width = image.width, info.height = image.height;
  info.frame_count = static_cast<int64_t>(names.size());
  for (const auto& [key, value] : read_png_text(first)) {
    if (key == kInfotextKey) info.parameters = value;
    else if (key == kFpsKey) info.fps = std::strtod(value.c_str(), nullptr);
    info.metadata.emplace_back(key, value);
  }
  if (!std::isfinite(info.fps) || info.fps < 0) info.fps = 0;
  return info;
}

void check_exists(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw LoadError(path, "no such file or directory");
}

}  // namespace

VideoFormat video_format_for_path(const std::string& path) {
  if (path.empty()) throw UsageError("video output path is empty");
  if (ends_with_slash(path)) return VideoFormat::Frames;
  const std::string ext = ascii_lower(fs::path(path).extension().string());
  if (ext.empty()) return VideoFormat::Frames;
  if (ext == ".mp4") return VideoFormat::MP4;
  if (ext == ".webp") return VideoFormat::WebP;
  throw UsageError("'" + path + "': cannot write a video as '" + ext +
                   "': use .mp4 (H.264), .webp (animated WebP) or a folder of PNG frames (a path ending in '/' or "
                   "without extension)");
}

void check_fps(double fps) {
  if (!std::isfinite(fps) || fps <= 0 || fps > 1000)
    throw UsageError("'fps' must be a number in (0, 1000], got " + fps_text(fps));
}

void write_video(const std::string& path, const at::Tensor& video, double fps, const GenerationParameters& parameters,
                 const VideoWriteOptions& options) {
  const VideoFormat format = video_format_for_path(path);
  check_fps(fps);
  if (options.h264_crf < 0 || options.h264_crf > 51)
    throw UsageError("H.264 crf must be 0..51, got " + std::to_string(options.h264_crf));
  if (!(options.webp_quality >= 0 && options.webp_quality <= 100))
    throw UsageError("WebP quality must be 0..100, got " + fps_text(options.webp_quality));
  const Rgb8Frames frames = to_rgb8(video);
  const std::string text = parameters == GenerationParameters{} ? "" : format_infotext(parameters);
  switch (format) {
    case VideoFormat::MP4: return video_detail::write_mp4(path, frames, fps, text, options);
    case VideoFormat::WebP: return video_detail::write_webp(path, frames, fps, text, options);
    case VideoFormat::Frames: return write_frames(path, frames, fps, text);
  }
}

Video read_video(const std::string& path, const VideoReadOptions& options) {
  if (options.max_frames < 0) throw UsageError("max_frames must be >= 0, got " + std::to_string(options.max_frames));
  check_exists(path);
  if (fs::is_directory(path)) return read_frames(path, options.max_frames);
  Rgb8Frames f = video_detail::is_webp_file(path) ? video_detail::read_webp(path, options.max_frames)
                                                  : video_detail::read_with_ffmpeg(path, options.max_frames);
  return {to_tensor(f), f.fps};
}

VideoInfo probe_video(const std::string& path) {
  check_exists(path);
  if (fs::is_directory(path)) return probe_frames(path);
  if (video_detail::is_webp_file(path)) return video_detail::probe_webp(path);
  return video_detail::probe_with_ffmpeg(path, true);
}

std::optional<GenerationParameters> read_video_parameters(const std::string& path) {
  check_exists(path);
  VideoInfo info;
  if (fs::is_directory(path)) info = probe_frames(path);
  else if (video_detail::is_webp_file(path)) info = video_detail::probe_webp(path);
  else info = video_detail::probe_with_ffmpeg(path, false);
  if (!info.parameters) return std::nullopt;
  return parse_infotext(*info.parameters);
}

bool looks_like_video_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return false;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char b[12] = {};
  const size_t n = std::fread(b, 1, sizeof b, f);
  std::fclose(f);
  if (n >= 12 && std::memcmp(b, "RIFF", 4) == 0 && std::memcmp(b + 8, "WEBP", 4) == 0) return true;
  if (n >= 8 && std::memcmp(b + 4, "ftyp", 4) == 0) return true;
  if (n >= 4 && b[0] == 0x1A && b[1] == 0x45 && b[2] == 0xDF && b[3] == 0xA3) return true;
  if (n >= 6 && (std::memcmp(b, "GIF87a", 6) == 0 || std::memcmp(b, "GIF89a", 6) == 0)) return true;
  return false;
}

namespace video_detail {

bool is_webp_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char b[12] = {};
  const size_t n = std::fread(b, 1, sizeof b, f);
  std::fclose(f);
  return n == 12 && std::memcmp(b, "RIFF", 4) == 0 && std::memcmp(b + 8, "WEBP", 4) == 0;
}

}  // namespace video_detail

}  // namespace genvis::io
