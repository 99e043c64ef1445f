// Spacetime patches: a latent video [B, C, F, H, W] cut into (pt, ph, pw) patches that act as
// tokens (Sora's "spacetime patches"; Wan's patch_size), and the tokens put back.
//
//   at::Tensor tokens = genvis::models::patchify(latents, {1, 2, 2});            // [B, N, 4C]
//   at::Tensor back = genvis::models::unpatchify(tokens, {1, 2, 2}, C, F, H, W);  // == latents
//
// Token n = (i * (H/ph) + j) * (W/pw) + k for patch (i, j, k) in frame-row-column order; its
// values are ordered (dt, dy, dx, c), the layout of the transformer's proj_out output that
// diffusers' WanTransformer3DModel unpatchifies. UsageError when a size is not divisible by its
// patch size or the token count or width does not match.
#pragma once
#include <ATen/ATen.h>
#include <vector>

namespace genvis::models {

at::Tensor patchify(const at::Tensor& video, const std::vector<int64_t>& patch_size);
at::Tensor unpatchify(const at::Tensor& tokens, const std::vector<int64_t>& patch_size, int64_t channels, int64_t frames,
                      int64_t height, int64_t width);

}  // namespace genvis::models
