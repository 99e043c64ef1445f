#include "models/autoencoder_kl/tiled.h"

#include "core/error.h"
#include "core/shape.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <torch/torch.h>

namespace genvis::models {
namespace {

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}


void check_input(const at::Tensor& x, int64_t channels, const char* what, const char* function) {
  if (!x.defined() || x.dim() != 4 || x.size(1) != channels)
    throw UsageError(std::string(function) + ": " + what + " must be [B," + std::to_string(channels) + ",H,W], got " +
                     (x.defined() ? shape_of(x) : std::string("an undefined tensor")));
}

void blend(const at::Tensor& a, const at::Tensor& b, int64_t extent, int64_t dim) {
  extent = std::min({a.size(dim), b.size(dim), extent});
  if (extent <= 0) return;
  // diffusers multiplies each row by the Python float (1 - k/e) or k/e, which the kernel rounds to
  // float (double for double tensors), and rounds each product to the tensor's dtype before adding.
  const auto weight_type = b.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  std::vector<int64_t> shape(b.dim(), 1);
  shape[dim] = extent;
  const at::Tensor k_over_e = at::arange(extent, at::TensorOptions().dtype(at::kDouble)).div_(extent);
  const at::Tensor wb = k_over_e.to(weight_type).to(b.device()).view(shape);
  const at::Tensor wa = (1 - k_over_e).to(weight_type).to(b.device()).view(shape);
  const at::Tensor head = b.narrow(dim, 0, extent);
  const at::Tensor tail = a.narrow(dim, a.size(dim) - extent, extent);
  head.copy_((tail * wa).to(b.scalar_type()) + (head * wb).to(b.scalar_type()));
}

}  // namespace

namespace detail {

TileGrid latent_grid(const AutoencoderKLImpl& vae, const VAETiling& tiling) {
  const int64_t f = vae.downscale_factor();
  if (!std::isfinite(tiling.overlap) || tiling.overlap < 0 || tiling.overlap >= 1)
    throw UsageError("VAE tiling: overlap " + format_number(tiling.overlap) + " is outside [0, 1)");
  const bool from_config = tiling.tile_size == 0;
  const int64_t size = from_config ? vae.config.sample_size : tiling.tile_size;
  if (size <= 0 || size % f != 0)
    throw UsageError("VAE tiling: " + std::string(from_config ? "config.sample_size " : "tile size ") +
                     std::to_string(size) + " is not a positive multiple of the VAE downscale factor " +
                     std::to_string(f) + (from_config ? "; give a tile size" : ""));
  const int64_t tile = size / f;
  // diffusers: blend_extent = int(tile_latent_min_size * tile_overlap_factor), in latents.
  const auto blend = static_cast<int64_t>(std::floor(static_cast<double>(tile) * tiling.overlap));
  return {.tile = tile, .stride = tile - blend, .scale_num = 1, .scale_den = 1};
}

void blend_v(const at::Tensor& a, const at::Tensor& b, int64_t extent) { blend(a, b, extent, 2); }
void blend_h(const at::Tensor& a, const at::Tensor& b, int64_t extent) { blend(a, b, extent, 3); }

at::Tensor tiled_apply(const at::Tensor& input, const TileGrid& grid, const TileFn& fn) {
  if (!input.defined() || input.dim() != 4) throw UsageError("tiled_apply: input must be [B,C,H,W]");
  if (grid.tile < 1 || grid.stride < 1 || grid.stride > grid.tile || grid.scale_num < 1 || grid.scale_den < 1)
    throw UsageError("tiled_apply: bad grid (tile " + std::to_string(grid.tile) + ", stride " +
                     std::to_string(grid.stride) + ")");
  const int64_t height = input.size(2), width = input.size(3);
  const int64_t blend_extent = grid.to_output(grid.tile - grid.stride), keep = grid.to_output(grid.stride);
  std::vector<int64_t> rows, cols;
  for (int64_t y = 0; y < height; y += grid.stride) rows.push_back(y);
  for (int64_t x = 0; x < width; x += grid.stride) cols.push_back(x);

  at::Tensor out;
  // The bottom blend_extent rows of each blended tile of the row above: all that blend_v reads.
  std::vector<at::Tensor> above(cols.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    at::Tensor left;  // the blended tile to the left (blend_h reads its last columns)
    for (size_t j = 0; j < cols.size(); ++j) {
      const int64_t h = std::min(grid.tile, height - rows[i]), w = std::min(grid.tile, width - cols[j]);
      at::Tensor tile = fn(input.narrow(2, rows[i], h).narrow(3, cols[j], w));
      if (tile.dim() != 4 || tile.size(0) != input.size(0) || tile.size(2) != grid.to_output(h) ||
          tile.size(3) != grid.to_output(w))
        throw RuntimeError("tiled_apply: a tile of " + std::to_string(h) + "x" + std::to_string(w) + " gave " +
                           shape_of(tile) + ", expected " + std::to_string(grid.to_output(h)) + "x" +
                           std::to_string(grid.to_output(w)));
      if (!out.defined())
        out = at::empty({input.size(0), tile.size(1), grid.to_output(height), grid.to_output(width)}, tile.options());
      if (i > 0) blend_v(above[j], tile, blend_extent);
      if (j > 0) blend_h(left, tile, blend_extent);
      const int64_t crop_h = std::min(keep, tile.size(2)), crop_w = std::min(keep, tile.size(3));
      out.narrow(2, grid.to_output(rows[i]), crop_h)
          .narrow(3, grid.to_output(cols[j]), crop_w)
          .copy_(tile.narrow(2, 0, crop_h).narrow(3, 0, crop_w));
      const int64_t bottom = std::min(blend_extent, tile.size(2));
      above[j] = tile.narrow(2, tile.size(2) - bottom, bottom).clone();
      left = tile;
    }
  }
  return out;
}

}  // namespace detail

bool needs_tiling(const AutoencoderKL& vae, int64_t height, int64_t width, const VAETiling& tiling) {
  const detail::TileGrid grid = detail::latent_grid(*vae, tiling);
  const int64_t tile_pixels = grid.tile * vae->downscale_factor();
  return height > tile_pixels || width > tile_pixels;
}

at::Tensor tiled_decode(AutoencoderKL& vae, const at::Tensor& z, const VAETiling& tiling) {
  check_input(z, vae->config.latent_channels, "latents", "tiled_decode");
  const int64_t f = vae->downscale_factor();
  detail::TileGrid grid = detail::latent_grid(*vae, tiling);
  if (!needs_tiling(vae, z.size(2) * f, z.size(3) * f, tiling)) return vae->decode(z);
  grid.scale_num = f;
  return detail::tiled_apply(z, grid, [&](const at::Tensor& tile) { return vae->decode(tile); });
}

LatentDistribution tiled_encode(AutoencoderKL& vae, const at::Tensor& image, const VAETiling& tiling) {
  check_input(image, vae->config.in_channels, "image", "tiled_encode");
  const int64_t f = vae->downscale_factor();
  detail::TileGrid grid = detail::latent_grid(*vae, tiling);
  if (!needs_tiling(vae, image.size(2), image.size(3), tiling)) return vae->encode(image);
  if (image.size(2) % f != 0 || image.size(3) % f != 0)
    throw UsageError("tiled_encode: image " + std::to_string(image.size(2)) + "x" + std::to_string(image.size(3)) +
                     " is not a multiple of the VAE downscale factor " + std::to_string(f));
  // The same grid in pixels; tile outputs are 1/f the size.
  grid.tile *= f;
  grid.stride *= f;
  grid.scale_den = f;
  const at::Tensor moments =
      detail::tiled_apply(image, grid, [&](const at::Tensor& tile) { return vae->encode_moments(tile); });
  return LatentDistribution::from_moments(moments);
}

}  // namespace genvis::models
