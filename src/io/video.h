// Video files, through the libraries (no hand-written codecs). A video tensor is [3, T, H, W]
// float in [0, 1] on any device (written frames are clamped, NaN becomes 0, and rounded to 8 bits).
//
//   Written, chosen by the path:              Read, chosen by the content:
//   .mp4    H.264 (libx264, yuv420p, crf 18)  MP4/MOV, WebM/MKV, GIF, ... (libavformat/libavcodec)
//   .webp   animated WebP (libwebp)           animated or still WebP (libwebp's WebPAnimDecoder)
//   DIR/ or a name without extension:         a folder: every *.png in it, sorted by name with
//           DIR/frame-0000.png, frame-0001.png ...      digit runs compared by value
//
// The generation parameters (the AUTOMATIC1111 text PNGs carry, io/infotext.h) travel with the
// file: MP4 in the container's `comment` tag (ffprobe -show_format, exiftool: Comment); WebP in
// an EXIF chunk's UserComment, written as AUTOMATIC1111 writes its WebPs (io/exif.h; exiftool:
// User Comment; A1111's PNG Info tab); frames in each PNG's `parameters` chunk (plus an `fps`
// chunk, so the folder keeps its rate).
//
//   genvis::io::write_video("clip.mp4", video, 16, params);
//   genvis::io::Video v = genvis::io::read_video("clip.webp", {.max_frames = 17});  // v.frames [3,T,H,W]
//   std::optional<genvis::io::GenerationParameters> p = genvis::io::read_video_parameters("clip.mp4");
#pragma once
#include "io/infotext.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace genvis::io {

enum class VideoFormat { MP4, WebP, Frames };

// By the path's extension, ignoring case: ".mp4", ".webp", and a path ending in '/' or whose
// last component has no extension for a frames folder. UsageError for anything else.
VideoFormat video_format_for_path(const std::string& path);

// Frame rates genvis writes: finite, > 0 and <= 1000 (WebP stores whole milliseconds per frame).
// UsageError otherwise, naming 'fps'.
void check_fps(double fps);

struct VideoWriteOptions {
  int h264_crf = 18;          // libx264 constant rate factor, 0..51 (lower: better, larger)
  bool webp_lossless = true;  // exact pixels; false: lossy VP8 at webp_quality
  float webp_quality = 90;    // 0..100
};

// Writes `video` ([3,T,H,W], T >= 1) at `fps`, in the format the path names, with `parameters`
// as its metadata (none when they are empty). Files are replaced atomically. MP4 frames of odd
// width or height are padded to even sizes by repeating the last column/row (H.264 4:2:0 has no
// odd sizes), with a warning; if this FFmpeg has no libx264 the MP4 is MPEG-4 Part 2, with a
// warning. A frames folder is created if needed; stale frame-NNNN.png files beyond T (from a
// longer video written there before) are removed, nothing else. WebP frames are each stored
// whole (one ANMF chunk per frame, never merged), so every reader counts T frames.
// UsageError for bad shapes, sizes, fps or extension; RuntimeError when an encoder or the
// file system fails.
void write_video(const std::string& path, const at::Tensor& video, double fps, const GenerationParameters& parameters,
                 const VideoWriteOptions& options = {});

struct VideoReadOptions {
  int64_t max_frames = 0;  // read at most this many frames from the start; 0 = all
};

struct Video {
  at::Tensor frames;  // [3, T, H, W] float32 on the CPU, in [0, 1]
  double fps = 0;     // 0 when the file does not say (a folder of PNGs without an fps chunk)
};

// Decodes every frame (or the first max_frames) as RGB; alpha is dropped, as in
// Image::with_channels. LoadError naming the path and the reason for a missing file, a file
// that is no video (or is truncated, corrupt, or holds no video stream), zero frames, frames
// that change size, or a folder without PNGs; UsageError for max_frames < 0.
Video read_video(const std::string& path, const VideoReadOptions& options = {});

// What `genvis info` shows, read without decoding pixels (frame counts come from the container,
// or by walking the packets without decoding when it does not say).
struct VideoInfo {
  std::string format;  // "mp4", "webp", "frames", or libavformat's demuxer name ("matroska,webm", "gif", ...)
  std::string codec;   // "h264", "vp9", "gif", "vp8l" (lossless WebP), "vp8" (lossy WebP), "png", ...
  int width = 0, height = 0;
  int64_t frame_count = 0;
  double fps = 0;                                              // 0 when unknown
  std::vector<std::pair<std::string, std::string>> metadata;  // container tags / EXIF UserComment / PNG text
  std::optional<std::string> parameters;                       // the raw generation-parameters text
};
VideoInfo probe_video(const std::string& path);

// The generation parameters the file carries (the MP4/WebM `comment` tag, else `description`;
// the WebP EXIF UserComment; the first frame's `parameters` chunk), parsed; nullopt when there
// are none. A comment that is no A1111 text parses as a prompt (parse_infotext never throws).
std::optional<GenerationParameters> read_video_parameters(const std::string& path);

// True when the file's first bytes are those of a container read_video knows (RIFF/WEBP,
// ISO-BMFF 'ftyp', Matroska/WebM EBML, GIF87a/89a); false for folders and unreadable files.
bool looks_like_video_file(const std::string& path);

}  // namespace genvis::io
