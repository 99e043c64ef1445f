// Tiled AutoencoderKL encode/decode: diffusers' enable_tiling() algorithm (overlapping tiles, a
// linear blend over each overlap, crop, place), run one tile at a time so that peak memory follows
// the tile size, not the image size.
//
//   torch::NoGradGuard no_grad;  // without it autograd keeps every tile's activations
//   at::Tensor image = genvis::models::tiled_decode(vae, latents / vae->config.scaling_factor);
//   auto posterior = genvis::models::tiled_encode(vae, image /*[B,3,H,W], H,W multiples of 8*/);
//   auto small = genvis::models::tiled_decode(vae, z, {.tile_size = 256});  // less memory, more seams
//
// An image no larger than one tile goes through vae->encode / vae->decode unchanged, as in diffusers.
// Otherwise the result equals diffusers 0.31 AutoencoderKL with enable_tiling() (tile_sample_min_size
// = tile_size, tile_overlap_factor = overlap) whenever tile_size / f * overlap is a whole number, as
// for the defaults (64 * 0.25 = 16 latents); for other settings diffusers' sample- and latent-space
// strides disagree and it misplaces tiles, while here both come from one latent grid.
//
// Tiled output is close to, not equal to, untiled output: every GroupNorm and the mid-block
// attention see one tile instead of the whole image. The whole batch goes through each tile.
#pragma once
#include "models/autoencoder_kl/autoencoder_kl.h"

#include <functional>

namespace genvis::models {

struct VAETiling {
  int64_t tile_size = 0;  // pixels, a positive multiple of the downscale factor; 0 = config.sample_size
  double overlap = 0.25;  // fraction of a tile shared with each neighbour, in [0, 1)
};

// Whether an image of height x width pixels is larger than one tile in either direction, i.e.
// whether tiled_encode / tiled_decode would tile it. Throws UsageError for bad settings.
bool needs_tiling(const AutoencoderKL& vae, int64_t height, int64_t width, const VAETiling& tiling = {});

// z [B,latent,h,w] -> [B,out,h*f,w*f], as vae->decode (no scaling, no clamp).
at::Tensor tiled_decode(AutoencoderKL& vae, const at::Tensor& z, const VAETiling& tiling = {});

// image [B,in,H,W] -> mean/logvar [B,latent,H/f,W/f], as vae->encode. When tiling, H and W must be
// multiples of f; the moments (quant_conv output) are blended, then logvar is clamped, as in diffusers.
LatentDistribution tiled_encode(AutoencoderKL& vae, const at::Tensor& image, const VAETiling& tiling = {});

namespace detail {

// A square tile grid over a [B,C,H,W] input, in input units, and the input -> output scale
// (f/1 for decode, 1/f for encode). Tiles start at 0, stride, 2*stride, ... < H (edge tiles are
// smaller); each output tile shares to_output(tile - stride) rows/columns with its neighbours.
struct TileGrid {
  int64_t tile = 0, stride = 0;
  int64_t scale_num = 1, scale_den = 1;
  int64_t to_output(int64_t n) const { return n * scale_num / scale_den; }
};

// The latent grid for `tiling` (validated; UsageError): tile = tile_size / f latents,
// stride = tile - floor(tile * overlap).
TileGrid latent_grid(const AutoencoderKLImpl& vae, const VAETiling& tiling);

// diffusers' blend_v / blend_h, in place on b: for k < e = min(extent, a's and b's size along the
// axis), b[k] = a[size_a - e + k] * (1 - k/e) + b[k] * (k/e), along H (blend_v) or W (blend_h).
void blend_v(const at::Tensor& a, const at::Tensor& b, int64_t extent);
void blend_h(const at::Tensor& a, const at::Tensor& b, int64_t extent);

// Runs fn on each tile of input, row by row, blends every output tile with the already blended tiles
// above (blend_v) and to the left (blend_h), and writes its top-left to_output(stride) square into
// the result [B,C',to_output(H),to_output(W)]. fn must map a [B,C,h,w] tile to
// [B,C',to_output(h),to_output(w)] (RuntimeError otherwise), in a fresh tensor (it is blended in
// place). Holds one row of tile edges, not all tiles.
using TileFn = std::function<at::Tensor(const at::Tensor&)>;
at::Tensor tiled_apply(const at::Tensor& input, const TileGrid& grid, const TileFn& fn);

}  // namespace detail
}  // namespace genvis::models
