// One writer for every family's results: images as PNG with an AUTOMATIC1111 `parameters`
// chunk; videos through the writer registered for their extension: built in are io/video.h's
// .mp4 (H.264), .webp (animated WebP) and frames folders (a path ending in '/' or without
// extension, registered as ""), and .png, a frame strip (the frames left to right in one image,
// 1 px apart), each carrying the parameters in its metadata.
//
//   std::vector<std::string> files = write_result(result, {.path = "out.png"});   // out-0.png, out-1.png for a batch
#pragma once
#include "pipelines/pipeline.h"

#include <functional>
#include <string>
#include <vector>

namespace genvis::pipelines {

struct OutputOptions {
  std::string path = "output.png";  // batches: NAME-0.EXT, NAME-1.EXT, ...
  double fps = 16;                  // videos
};

// The file for sample i of n: the path itself when n == 1, else NAME-i.EXT (a folder DIR/:
// DIR-i/).
std::string output_path(const std::string& path, int64_t i, int64_t n);

// One image sample [3,H,W] in [0,1] as PNG bytes, with the `parameters` chunk when `parameters`
// is given: what write_result writes for an image, for callers that send it elsewhere (the server).
std::string encode_sample_png(const at::Tensor& image, const io::GenerationParameters* parameters);

// Writes each sample (images always as PNG, whatever the extension); returns the files written.
// UsageError for a video without a writer for the path's extension.
std::vector<std::string> write_result(const Result& result, const OutputOptions& options);

// video [3,T,H,W] in [0,1] -> file.
using VideoWriter = std::function<void(const std::string& path, const at::Tensor& video, double fps,
                                       const io::GenerationParameters& parameters)>;
// Registers the writer for an extension (".mp4", ".webp", ..., "" for folders; matched ignoring
// case); a later one replaces it.
void register_video_writer(const std::string& extension, VideoWriter writer);

}  // namespace genvis::pipelines
