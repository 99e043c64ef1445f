// Shared by video.cpp (formats, tensors, frame folders), video_ffmpeg.cpp (MP4 and everything
// libavformat reads) and video_webp.cpp (libwebp). Not part of the io API.
#pragma once
#include "io/video.h"

#include <cstdint>
#include <string>
#include <vector>

namespace genvis::io::video_detail {

// 8-bit RGB frames packed as [T][H][W][3].
struct Rgb8Frames {
  int width = 0, height = 0;
  int64_t count = 0;
  std::vector<uint8_t> pixels;
  double fps = 0;  // 0 = unknown

  size_t frame_bytes() const { return static_cast<size_t>(width) * static_cast<size_t>(height) * 3; }
  const uint8_t* frame(int64_t t) const { return pixels.data() + static_cast<size_t>(t) * frame_bytes(); }
};

// Largest side the readers accept (the writers are bounded by their codecs).
inline constexpr int kMaxVideoSide = 16384;

void write_mp4(const std::string& path, const Rgb8Frames& frames, double fps, const std::string& comment,
               const VideoWriteOptions& options);
void write_webp(const std::string& path, const Rgb8Frames& frames, double fps, const std::string& comment,
                const VideoWriteOptions& options);

// max_frames 0 = all. The result has count >= 1 or the call throws LoadError.
Rgb8Frames read_with_ffmpeg(const std::string& path, int64_t max_frames);
Rgb8Frames read_webp(const std::string& path, int64_t max_frames);

VideoInfo probe_with_ffmpeg(const std::string& path, bool count_frames);
VideoInfo probe_webp(const std::string& path);

bool is_webp_file(const std::string& path);

}  // namespace genvis::io::video_detail
