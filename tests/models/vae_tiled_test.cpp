// Tiled AutoencoderKL encode/decode: blend arithmetic by hand, tile placement, exactness when one
// tile suffices, bit-equality with a literal transcription of diffusers 0.31 tiled_decode /
// tiled_encode, closeness to untiled output, and rejected settings.
#include "core/error.h"
#include "models/autoencoder_kl/tiled.h"
#include "support/test_support.h"

#include <cmath>
#include <torch/torch.h>

namespace genvis::models {
namespace {

using detail::TileGrid;

at::Tensor row_values(std::initializer_list<float> v) { return at::tensor(std::vector<float>(v)); }

// A [1,3,h,w] image in [-0.9, 0.9] with broad structure (no two tiles alike, no fine noise).
at::Tensor smooth_image(int64_t h, int64_t w) {
  const at::Tensor y = at::linspace(-1, 1, h).view({1, 1, h, 1});
  const at::Tensor x = at::linspace(-1, 1, w).view({1, 1, 1, w});
  const at::Tensor r = at::sin(3 * x + 2 * y);
  const at::Tensor g = at::cos(2 * x - 4 * y) * (0.5 + 0.5 * y);
  const at::Tensor b = x * y + 0.3 * at::sin(5 * x * y);
  return 0.9 * at::cat({r.expand({1, 1, h, w}), g.expand({1, 1, h, w}), b.expand({1, 1, h, w})}, 1).clamp(-1, 1);
}

AutoencoderKL fixture_vae() { return load_autoencoder_kl(test::fixtures_dir() + "/vae"); }

// Random weights, 32 channels per level; downscale factor 2^(levels-1).
AutoencoderKL small_random_vae(int64_t sample_size = 16, size_t levels = 2) {
  AutoencoderKLConfig c;
  c.block_out_channels.assign(levels, 32);
  c.down_block_types.assign(levels, "DownEncoderBlock2D");
  c.up_block_types.assign(levels, "UpDecoderBlock2D");
  c.sample_size = sample_size;
  torch::manual_seed(0);
  AutoencoderKL vae(c);
  vae->eval();
  return vae;
}

// --- diffusers 0.31 AutoencoderKL.blend_v / blend_h / tiled_decode / tiled_encode, transcribed
// literally: every tile first, then per-row in-place blends with Python-float weights, crop, cat.

void diffusers_blend(const at::Tensor& a, const at::Tensor& b, int64_t blend_extent, int64_t dim) {
  blend_extent = std::min({a.size(dim), b.size(dim), blend_extent});
  for (int64_t y = 0; y < blend_extent; ++y)
    b.select(dim, y).copy_(a.select(dim, a.size(dim) - blend_extent + y) * (1 - double(y) / blend_extent) +
                           b.select(dim, y) * (double(y) / blend_extent));
}

at::Tensor diffusers_blend_and_crop(std::vector<std::vector<at::Tensor>>& rows, int64_t blend_extent,
                                    int64_t row_limit) {
  std::vector<at::Tensor> result_rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<at::Tensor> result_row;
    for (size_t j = 0; j < rows[i].size(); ++j) {
      const at::Tensor& tile = rows[i][j];
      if (i > 0) diffusers_blend(rows[i - 1][j], tile, blend_extent, 2);
      if (j > 0) diffusers_blend(rows[i][j - 1], tile, blend_extent, 3);
      result_row.push_back(tile.slice(2, 0, row_limit).slice(3, 0, row_limit));
    }
    result_rows.push_back(at::cat(result_row, 3));
  }
  return at::cat(result_rows, 2);
}

at::Tensor diffusers_tiled_decode(AutoencoderKL& vae, const at::Tensor& z, int64_t tile_sample_min_size,
                                  double tile_overlap_factor) {
  const int64_t tile_latent_min_size = tile_sample_min_size / vae->downscale_factor();
  const auto overlap_size = static_cast<int64_t>(tile_latent_min_size * (1 - tile_overlap_factor));
  const auto blend_extent = static_cast<int64_t>(tile_sample_min_size * tile_overlap_factor);
  const int64_t row_limit = tile_sample_min_size - blend_extent;
  std::vector<std::vector<at::Tensor>> rows;
  for (int64_t i = 0; i < z.size(2); i += overlap_size) {
    rows.emplace_back();
    for (int64_t j = 0; j < z.size(3); j += overlap_size)
      rows.back().push_back(
          vae->decode(z.slice(2, i, i + tile_latent_min_size).slice(3, j, j + tile_latent_min_size)));
  }
  return diffusers_blend_and_crop(rows, blend_extent, row_limit);
}

at::Tensor diffusers_tiled_encode_moments(AutoencoderKL& vae, const at::Tensor& x, int64_t tile_sample_min_size,
                                          double tile_overlap_factor) {
  const int64_t tile_latent_min_size = tile_sample_min_size / vae->downscale_factor();
  const auto overlap_size = static_cast<int64_t>(tile_sample_min_size * (1 - tile_overlap_factor));
  const auto blend_extent = static_cast<int64_t>(tile_latent_min_size * tile_overlap_factor);
  const int64_t row_limit = tile_latent_min_size - blend_extent;
  std::vector<std::vector<at::Tensor>> rows;
  for (int64_t i = 0; i < x.size(2); i += overlap_size) {
    rows.emplace_back();
    for (int64_t j = 0; j < x.size(3); j += overlap_size)
      rows.back().push_back(vae->quant_conv(
          vae->encoder(x.slice(2, i, i + tile_sample_min_size).slice(3, j, j + tile_sample_min_size))));
  }
  return diffusers_blend_and_crop(rows, blend_extent, row_limit);
}

struct Difference {
  double max_abs, mean_abs, ref_std;
};

Difference difference(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor d = (got - want).abs();
  return {d.max().item<double>(), d.mean().item<double>(), want.std().item<double>()};
}

// --- (c) blend arithmetic and tile placement on hand-computed cases ---

TEST(VAETiledBlend, BlendVFadesTheLastRowsOfAIntoB) {
  const at::Tensor a = at::arange(4, at::kFloat).mul(4).view({1, 1, 4, 1});  // rows 0 4 8 12
  const at::Tensor b = at::full({1, 1, 4, 1}, 20.0f);
  detail::blend_v(a, b, 2);
  // k=0: a[2]*1 + b*0 = 8; k=1: a[3]*0.5 + 20*0.5 = 16; rows 2.. untouched.
  EXPECT_TRUE(at::equal(b.flatten(), row_values({8, 16, 20, 20})));
}

TEST(VAETiledBlend, BlendHExtentIsClippedToTheSmallerTile) {
  const at::Tensor a = row_values({10, 20}).view({1, 1, 1, 2});
  const at::Tensor b = row_values({0, 0, 0}).view({1, 1, 1, 3});
  detail::blend_h(a, b, 4);  // e = min(2, 3, 4) = 2: b[0] = a[0], b[1] = a[1] / 2
  EXPECT_TRUE(at::equal(b.flatten(), row_values({10, 10, 0})));
  const at::Tensor c = row_values({5, 6}).view({1, 1, 1, 2});
  detail::blend_h(a, c, 0);  // no overlap: untouched
  EXPECT_TRUE(at::equal(c.flatten(), row_values({5, 6})));
}

// Every tile decodes to a constant: its 1-based position in call order, so each output pixel is a
// hand-computable mix of tile numbers.
detail::TileFn numbered_tiles(int64_t scale, std::vector<std::pair<int64_t, int64_t>>& seen) {
  return [scale, &seen, n = 0.0f](const at::Tensor& t) mutable {
    seen.emplace_back(t.size(2), t.size(3));
    return at::full({t.size(0), 1, t.size(2) * scale, t.size(3) * scale}, ++n);
  };
}

TEST(VAETiledApply, OneRowOfTilesBlendsLinearlyAcrossEachOverlap) {
  // 6 latents, tile 4, stride 2, x2 output: tiles at 0 (4), 2 (4), 4 (2) -> 8, 8, 4 pixels;
  // overlap 4 pixels, each tile keeps its first 4.
  std::vector<std::pair<int64_t, int64_t>> seen;
  const at::Tensor out =
      detail::tiled_apply(at::zeros({1, 1, 1, 6}), TileGrid{.tile = 4, .stride = 2, .scale_num = 2},
                          numbered_tiles(2, seen));
  ASSERT_EQ(out.sizes(), (c10::IntArrayRef{1, 1, 2, 12}));
  // tile 1 unblended | tile 2 = 1*(1-x/4) + 2*(x/4) | tile 3 fades from tile 2's own columns 4..7 (= 2).
  const at::Tensor want = row_values({1, 1, 1, 1, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75});
  EXPECT_TRUE(at::equal(out[0][0][0], want)) << out;
  EXPECT_TRUE(at::equal(out[0][0][1], want));
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, int64_t>>{{1, 4}, {1, 4}, {1, 2}}));
}

TEST(VAETiledApply, TwoByTwoTilesBlendVerticallyThenHorizontallyWithBlendedNeighbours) {
  // 2x2 latents, tile 2, stride 1, x2 output: tiles 1 (4x4), 2 (4x2), 3 (2x4), 4 (2x2); overlap 2.
  // Tile 2 after blend_h with tile 1: columns [1, 1.5]. Tile 3 after blend_v with tile 1: rows [1, 2].
  // Tile 4: blend_v with tile 2's bottom rows -> [[1, 1.5], [2.5, 2.75]], then blend_h with tile 3's
  // right columns -> [[1, 0.5*1 + 0.5*1.5], [2, 0.5*2 + 0.5*2.75]] = [[1, 1.25], [2, 2.375]].
  std::vector<std::pair<int64_t, int64_t>> seen;
  const at::Tensor out =
      detail::tiled_apply(at::zeros({1, 1, 2, 2}), TileGrid{.tile = 2, .stride = 1, .scale_num = 2},
                          numbered_tiles(2, seen));
  const at::Tensor want = at::tensor(std::vector<float>{1, 1, 1, 1.5,  //
                                                        1, 1, 1, 1.5,  //
                                                        1, 1, 1, 1.25, //
                                                        2, 2, 2, 2.375})
                              .view({1, 1, 4, 4});
  EXPECT_TRUE(at::equal(out, want)) << out;
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, int64_t>>{{2, 2}, {2, 1}, {1, 2}, {1, 1}}));
}

TEST(VAETiledApply, PlacesTilesExactlyForLocalMapsInBothDirections) {
  // A map whose tiles agree on their overlaps gives back (up to the blend's rounding) the untiled map:
  // a check of tile placement, edge tiles and sizes that are not a multiple of the tile.
  torch::manual_seed(1);
  const at::Tensor latents = at::randn({2, 3, 37, 53});
  const auto up = [](const at::Tensor& t) { return at::upsample_nearest2d(t, {t.size(2) * 4, t.size(3) * 4}); };
  const at::Tensor decoded = detail::tiled_apply(latents, TileGrid{.tile = 8, .stride = 6, .scale_num = 4}, up);
  EXPECT_TRUE(at::allclose(decoded, up(latents), 0, 1e-6));

  const at::Tensor image = at::randn({2, 3, 40, 56});
  const auto down = [](const at::Tensor& t) { return at::avg_pool2d(t, 4); };
  const at::Tensor encoded = detail::tiled_apply(image, TileGrid{.tile = 16, .stride = 12, .scale_den = 4}, down);
  EXPECT_TRUE(at::allclose(encoded, down(image), 0, 1e-6));
}

TEST(VAETiledApply, RejectsATileFunctionWithTheWrongScale) {
  EXPECT_THROW(detail::tiled_apply(at::zeros({1, 1, 8, 8}), TileGrid{.tile = 4, .stride = 3, .scale_num = 2},
                                   [](const at::Tensor& t) { return t.clone(); }),
               RuntimeError);
}

// --- geometry, settings ---

TEST(VAETiling, LatentGridFollowsDiffusers) {
  const auto grid = [](AutoencoderKL& vae, const VAETiling& t) {
    const auto g = detail::latent_grid(*vae, t);
    return std::pair{g.tile, g.stride};
  };
  AutoencoderKL vae = small_random_vae(/*sample_size=*/16);  // f = 2
  EXPECT_EQ(grid(vae, {}), (std::pair<int64_t, int64_t>{8, 6}));  // 16 px / 2 = 8 latents, 25% = 2
  EXPECT_EQ(grid(vae, {.tile_size = 64, .overlap = 0.5}), (std::pair<int64_t, int64_t>{32, 16}));
  EXPECT_EQ(grid(vae, {.tile_size = 64, .overlap = 0}), (std::pair<int64_t, int64_t>{32, 32}));
  EXPECT_EQ(grid(vae, {.tile_size = 20, .overlap = 0.25}), (std::pair<int64_t, int64_t>{10, 8}));  // floor(2.5)
  // SD geometry: sample_size 512, f 8 -> diffusers' tile_latent_min_size 64, overlap 16 latents (128 px).
  AutoencoderKL sd = small_random_vae(/*sample_size=*/512, /*levels=*/4);
  EXPECT_EQ(grid(sd, {}), (std::pair<int64_t, int64_t>{64, 48}));
  EXPECT_EQ(grid(sd, {.tile_size = 256}), (std::pair<int64_t, int64_t>{32, 24}));
}

TEST(VAETiling, NeedsTilingOnlyWhenLargerThanOneTile) {
  AutoencoderKL vae = small_random_vae(/*sample_size=*/16);
  EXPECT_FALSE(needs_tiling(vae, 16, 16));
  EXPECT_FALSE(needs_tiling(vae, 8, 16));
  EXPECT_TRUE(needs_tiling(vae, 18, 16));
  EXPECT_TRUE(needs_tiling(vae, 16, 18));
  EXPECT_FALSE(needs_tiling(vae, 18, 16, {.tile_size = 32}));
}

TEST(VAETiling, RejectsBadSettingsAndInputs) {
  AutoencoderKL vae = small_random_vae(/*sample_size=*/16);
  const at::Tensor z = at::zeros({1, 4, 12, 12}), image = at::zeros({1, 3, 24, 24});
  for (const VAETiling bad : {VAETiling{.tile_size = -2}, VAETiling{.tile_size = 7}, VAETiling{.overlap = -0.1},
                              VAETiling{.overlap = 1.0}, VAETiling{.overlap = std::nan("")},
                              VAETiling{.overlap = INFINITY}}) {
    EXPECT_THROW(tiled_decode(vae, z, bad), UsageError) << bad.tile_size << " " << bad.overlap;
    EXPECT_THROW(tiled_encode(vae, image, bad), UsageError) << bad.tile_size << " " << bad.overlap;
    EXPECT_THROW(needs_tiling(vae, 24, 24, bad), UsageError);
  }
  try {
    tiled_decode(vae, z, {.tile_size = 7});
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("tile size 7 is not a positive multiple of the VAE downscale factor 2"),
              std::string::npos)
        << e.what();
  }
  AutoencoderKL odd = small_random_vae(/*sample_size=*/15);  // default tile from an odd sample_size
  try {
    tiled_decode(odd, z);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("config.sample_size 15"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(tiled_decode(odd, z, {.tile_size = 16}));
  EXPECT_THROW(tiled_decode(vae, at::zeros({1, 3, 12, 12})), UsageError);      // latent channels
  EXPECT_THROW(tiled_decode(vae, at::zeros({4, 12, 12})), UsageError);         // rank
  EXPECT_THROW(tiled_encode(vae, at::zeros({1, 4, 24, 24})), UsageError);      // image channels
  EXPECT_THROW(tiled_encode(vae, at::zeros({1, 3, 24, 25})), UsageError);      // tiled, not a multiple of f
  EXPECT_NO_THROW(tiled_encode(vae, at::zeros({1, 3, 16, 15})));              // one tile: plain encode
}

// --- (a) one tile: identical to untiled ---

TEST(VAETiledFixture, AnImageThatFitsOneTileIsExactlyUntiled) {
  GENVIS_REQUIRE_FIXTURES();
  auto vae = fixture_vae();  // sample_size 64, f 8: one tile = 8x8 latents
  torch::NoGradGuard no_grad;
  const at::Tensor image = smooth_image(64, 48);
  const auto untiled = vae->encode(image);
  const auto tiled = tiled_encode(vae, image);
  EXPECT_TRUE(at::equal(tiled.mean, untiled.mean));
  EXPECT_TRUE(at::equal(tiled.logvar, untiled.logvar));
  EXPECT_TRUE(at::equal(tiled_decode(vae, untiled.mean), vae->decode(untiled.mean)));
  EXPECT_TRUE(at::equal(tiled_decode(vae, untiled.mean, {.tile_size = 64, .overlap = 0.5}), vae->decode(untiled.mean)));
}

// --- diffusers parity: the streamed, strip-keeping loop computes what diffusers' loop computes ---

TEST(VAETiledFixture, DecodeEqualsDiffusersTiledDecodeBitForBit) {
  GENVIS_REQUIRE_FIXTURES();
  auto vae = fixture_vae();
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  const at::Tensor z = at::randn({2, 4, 20, 27});  // tiles at 0, 6, 12, 18 (2 rows) / 24 (3 columns)
  const at::Tensor got = tiled_decode(vae, z);
  ASSERT_EQ(got.sizes(), (c10::IntArrayRef{2, 3, 160, 216}));
  EXPECT_TRUE(at::equal(got, diffusers_tiled_decode(vae, z, 64, 0.25)));
  // 6 latents, half overlap: 3-latent stride, 24-pixel blend.
  const at::Tensor small = z.narrow(2, 0, 14).narrow(3, 0, 17);
  const at::Tensor half = tiled_decode(vae, small, {.tile_size = 48, .overlap = 0.5});
  EXPECT_TRUE(at::equal(half, diffusers_tiled_decode(vae, small, 48, 0.5)));
}

TEST(VAETiledFixture, EncodeEqualsDiffusersTiledEncodeBitForBit) {
  GENVIS_REQUIRE_FIXTURES();
  auto vae = fixture_vae();
  torch::NoGradGuard no_grad;
  const at::Tensor image = smooth_image(136, 184);  // 17x23 latents
  const auto got = tiled_encode(vae, image);
  ASSERT_EQ(got.mean.sizes(), (c10::IntArrayRef{1, 4, 17, 23}));
  const auto want = diffusers_tiled_encode_moments(vae, image, 64, 0.25).chunk(2, 1);
  EXPECT_TRUE(at::equal(got.mean, want[0]));
  EXPECT_TRUE(at::equal(got.logvar, want[1].clamp(-30, 20)));
}

// --- (b) several tiles: close to untiled ---
//
// Not exact: every GroupNorm (and the mid-block attention) sees one tile instead of the whole image,
// and each tile is zero-padded at its own borders; the seam blend mixes two tiles' border regions.
// (The tiling arithmetic itself is exact: see the bit-for-bit diffusers tests above.) How close the
// result is depends on the VAE and the content, so the check uses statistically stationary input
// (i.i.d. noise), where every tile's GroupNorm statistics estimate the same population values and
// what remains is the border effect, which shrinks as the tile grows relative to the receptive
// field. Measured with the fixture VAE (mean |tiled - untiled| / std(untiled), 352x416 pixels, i.e.
// 2x3 tiles of 256 or 3x4 of 128; max |tiled - untiled| is 0.7 std (encode) to 2.5 std (decode)):
//   decode:         tile 256 0.12, tile 256 without overlap 0.19, tile 128 0.25
//   encode mean:    tile 256 0.07, tile 256 without overlap 0.15, tile 128 0.18
//   encode logvar:  tile 256 0.07, tile 256 without overlap 0.15, tile 128 0.17
// The asserted bounds are ~1.5x the tile-256 values, plus the two properties that make tiling
// useful: blending beats butt-joined tiles, and larger tiles are closer. (With smooth, non-stationary
// content this random-weight VAE differs by ~0.5-0.65 std even at tile 256, because its per-tile
// statistics really differ; diffusers' own docs warn of "tile-sized changes" for trained VAEs.)

const VAETiling kTile256{.tile_size = 256}, kTile256NoOverlap{.tile_size = 256, .overlap = 0},
    kTile128{.tile_size = 128};

double relative_error(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  EXPECT_EQ(got.sizes(), want.sizes()) << what;
  const Difference d = difference(got, want);
  std::cout << what << ": mean_abs " << d.mean_abs << " max_abs " << d.max_abs << " untiled std " << d.ref_std
            << " -> mean_abs/std " << d.mean_abs / d.ref_std << "\n";
  return d.mean_abs / d.ref_std;
}

TEST(VAETiledFixture, DecodeOfSeveralTilesIsCloseToUntiled) {
  GENVIS_REQUIRE_FIXTURES();
  auto vae = fixture_vae();
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  const at::Tensor z = at::randn({1, 4, 44, 52});  // tile 256 px = 32 latents, stride 24: last tiles partial
  const at::Tensor untiled = vae->decode(z);
  const double e256 = relative_error(tiled_decode(vae, z, kTile256), untiled, "decode tile 256");
  const double e256_butt =
      relative_error(tiled_decode(vae, z, kTile256NoOverlap), untiled, "decode tile 256 overlap 0");
  const double e128 = relative_error(tiled_decode(vae, z, kTile128), untiled, "decode tile 128");
  EXPECT_LE(e256, 0.18);
  EXPECT_LT(e256, e256_butt);
  EXPECT_LT(e256, e128);
}

TEST(VAETiledFixture, EncodeOfSeveralTilesIsCloseToUntiled) {
  GENVIS_REQUIRE_FIXTURES();
  auto vae = fixture_vae();
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  const at::Tensor image = at::rand({1, 3, 352, 416}) * 2 - 1;
  const auto untiled = vae->encode(image);
  const auto p256 = tiled_encode(vae, image, kTile256), p256_butt = tiled_encode(vae, image, kTile256NoOverlap),
             p128 = tiled_encode(vae, image, kTile128);
  for (const bool mean : {true, false}) {
    const auto part = [mean](const LatentDistribution& p) { return mean ? p.mean : p.logvar; };
    const std::string what = mean ? "encode mean" : "encode logvar";
    const double e256 = relative_error(part(p256), part(untiled), what + " tile 256");
    const double e256_butt = relative_error(part(p256_butt), part(untiled), what + " tile 256 overlap 0");
    const double e128 = relative_error(part(p128), part(untiled), what + " tile 128");
    EXPECT_LE(e256, 0.1) << what;
    EXPECT_LT(e256, e256_butt) << what;
    EXPECT_LT(e256, e128) << what;
  }
}

TEST(VAETiledFixture, OutputShapesForSizesThatAreNotAMultipleOfTheTile) {
  GENVIS_REQUIRE_FIXTURES();
  auto vae = fixture_vae();
  torch::NoGradGuard no_grad;
  for (const auto& [h, w] : {std::pair<int64_t, int64_t>{8, 9}, {9, 8}, {13, 7}, {7, 31}, {1, 17}}) {
    const at::Tensor out = tiled_decode(vae, at::zeros({1, 4, h, w}));
    EXPECT_EQ(out.sizes(), (c10::IntArrayRef{1, 3, 8 * h, 8 * w})) << h << "x" << w;
    const auto posterior = tiled_encode(vae, at::zeros({1, 3, 8 * h, 8 * w}));
    EXPECT_EQ(posterior.mean.sizes(), (c10::IntArrayRef{1, 4, h, w})) << h << "x" << w;
    EXPECT_EQ(posterior.logvar.sizes(), (c10::IntArrayRef{1, 4, h, w})) << h << "x" << w;
  }
}

}  // namespace
}  // namespace genvis::models
