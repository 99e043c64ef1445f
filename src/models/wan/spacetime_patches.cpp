#include "models/wan/spacetime_patches.h"

#include "core/error.h"

#include <c10/util/Exception.h>

namespace genvis::models {
namespace {

void check_patch(const std::vector<int64_t>& p, int64_t frames, int64_t height, int64_t width, const char* what) {
  if (p.size() != 3 || p[0] < 1 || p[1] < 1 || p[2] < 1)
    throw UsageError(std::string(what) + ": the patch size must be 3 positive numbers (t, h, w)");
  if (frames < 1 || height < 1 || width < 1 || frames % p[0] || height % p[1] || width % p[2])
    throw UsageError(std::string(what) + ": " + std::to_string(frames) + "x" + std::to_string(height) + "x" +
                     std::to_string(width) + " (frames x height x width) is not divisible by the patch size " +
                     std::to_string(p[0]) + "x" + std::to_string(p[1]) + "x" + std::to_string(p[2]));
}

}  // namespace

at::Tensor patchify(const at::Tensor& video, const std::vector<int64_t>& p) {
  if (!video.defined() || video.dim() != 5)
    throw UsageError("patchify: expected a [B,C,F,H,W] video, got " + (video.defined() ? c10::str(video.sizes()) : std::string("nothing")));
  const int64_t B = video.size(0), C = video.size(1), F = video.size(2), H = video.size(3), W = video.size(4);
  check_patch(p, F, H, W, "patchify");
  return video.reshape({B, C, F / p[0], p[0], H / p[1], p[1], W / p[2], p[2]})
      .permute({0, 2, 4, 6, 3, 5, 7, 1})  // B, f, h, w, dt, dy, dx, C
      .reshape({B, (F / p[0]) * (H / p[1]) * (W / p[2]), p[0] * p[1] * p[2] * C});
}

at::Tensor unpatchify(const at::Tensor& tokens, const std::vector<int64_t>& p, int64_t channels, int64_t frames,
                      int64_t height, int64_t width) {
  check_patch(p, frames, height, width, "unpatchify");
  const int64_t f = frames / p[0], h = height / p[1], w = width / p[2];
  if (!tokens.defined() || tokens.dim() != 3 || tokens.size(1) != f * h * w ||
      tokens.size(2) != channels * p[0] * p[1] * p[2])
    throw UsageError("unpatchify: expected tokens [B," + std::to_string(f * h * w) + "," +
                     std::to_string(channels * p[0] * p[1] * p[2]) + "], got " +
                     (tokens.defined() ? c10::str(tokens.sizes()) : std::string("nothing")));
  const int64_t B = tokens.size(0);
  return tokens.reshape({B, f, h, w, p[0], p[1], p[2], channels})
      .permute({0, 7, 1, 4, 2, 5, 3, 6})  // B, C, f, dt, h, dy, w, dx
      .reshape({B, channels, frames, height, width});
}

}  // namespace genvis::models
