// AutoencoderKLWan (Wan 2.1's causal 3D VAE) on a tiny random model: config and shape errors,
// causality, chunk-size invariance of the cached encode/decode, and tiling placement.
#include "core/error.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

nlohmann::json tiny_json() {
  return {{"_class_name", "AutoencoderKLWan"}, {"_diffusers_version", "0.33.1"},
          {"attn_scales", nlohmann::json::array()}, {"base_dim", 2},
          {"dim_mult", {1, 2, 2, 2}}, {"dropout", 0.0},
          {"latents_mean", {0.1, -0.2, 0.3, 0.0}}, {"latents_std", {1.5, 2.0, 0.5, 1.0}},
          {"num_res_blocks", 1}, {"temperal_downsample", {false, true, true}},
          {"z_dim", 4}};
}

AutoencoderKLWan tiny_vae(uint64_t seed = 0) {
  torch::manual_seed(seed);
  AutoencoderKLWan vae(AutoencoderKLWanConfig::from_json(tiny_json()));
  vae->eval();
  return vae;
}

void expect_near(const at::Tensor& a, const at::Tensor& b, double tol, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_LE((a - b).abs().max().item<double>(), tol) << what;
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(WanVAEConfig, DefaultsAndFactors) {
  const AutoencoderKLWanConfig c;  // diffusers' defaults: Wan 2.1's full-size VAE
  EXPECT_TRUE(c.problems().empty());
  EXPECT_EQ(c.spatial_factor(), 8);
  EXPECT_EQ(c.temporal_factor(), 4);
  const auto t = AutoencoderKLWanConfig::from_json(tiny_json());
  EXPECT_EQ(t.base_dim, 2);
  EXPECT_EQ(t.latents_std[2], 0.5);
  // Keys of later diffusers versions, with Wan 2.1 values.
  nlohmann::json j = tiny_json();
  j["is_residual"] = false, j["patch_size"] = nullptr, j["scale_factor_temporal"] = 4, j["scale_factor_spatial"] = 8;
  j["decoder_base_dim"] = 4, j["in_channels"] = 3, j["out_channels"] = 3;
  EXPECT_EQ(AutoencoderKLWanConfig::from_json(j).decoder_base_dim, 4);
}

TEST(WanVAEConfig, EveryProblemAtOnce) {
  nlohmann::json j = tiny_json();
  j["base_dimm"] = 3;
  j["z_dim"] = "sixteen";
  j["attn_scales"] = {0.5};
  j["temperal_downsample"] = {false, true};
  j["latents_std"] = {1.0, 2.0};
  j["is_residual"] = true;
  const std::string m = message_of([&] { AutoencoderKLWanConfig::from_json(j, "vae/config.json"); });
  for (const char* want : {"vae/config.json", "base_dimm", "z_dim has the wrong type", "attn_scales must be empty",
                           "temperal_downsample has 2 entries", "latents_std has 2 entries", "is_residual"})
    EXPECT_NE(m.find(want), std::string::npos) << want << " not in: " << m;
  EXPECT_THROW(AutoencoderKLWanConfig::from_json(j), LoadError);

  j = tiny_json();
  j["scale_factor_spatial"] = 16;
  j["patch_size"] = 2;
  const std::string m2 = message_of([&] { AutoencoderKLWanConfig::from_json(j); });
  EXPECT_NE(m2.find("scale_factor_spatial 16"), std::string::npos) << m2;
  EXPECT_NE(m2.find("patch_size 2"), std::string::npos) << m2;
  EXPECT_THROW(AutoencoderKLWanConfig::from_json(nlohmann::json::array()), LoadError);
}

TEST(WanVAEConfig, LoadErrorsNameTheFolder) {
  test::TempDir dir;
  EXPECT_THROW(load_autoencoder_kl_wan(dir.file("absent")), LoadError);
  test::write_bytes(dir.file("config.json"), tiny_json().dump());
  const std::string m = message_of([&] { load_autoencoder_kl_wan(dir.path()); });  // no weights
  EXPECT_NE(m.find(dir.path()), std::string::npos) << m;
  EXPECT_THROW(load_autoencoder_kl_wan(dir.path()), LoadError);
  test::write_bytes(dir.file("config.json"), "{\"z_dim\": 16,");
  EXPECT_THROW(load_autoencoder_kl_wan(dir.path()), LoadError);
}

TEST(WanVAE, ShapesAndLatentStatistics) {
  auto vae = tiny_vae();
  const auto posterior = vae->encode(torch::rand({2, 3, 9, 16, 24}) * 2 - 1);
  EXPECT_EQ(posterior.mean.sizes(), (std::vector<int64_t>{2, 4, 3, 2, 3}));
  EXPECT_EQ(posterior.logvar.sizes(), (std::vector<int64_t>{2, 4, 3, 2, 3}));
  const at::Tensor video = vae->decode(posterior.mean);
  EXPECT_EQ(video.sizes(), (std::vector<int64_t>{2, 3, 9, 16, 24}));
  EXPECT_LE(video.abs().max().item<double>(), 1.0);
  EXPECT_EQ(vae->video_frames(3), 9);
  EXPECT_EQ(vae->latent_frames(9), 3);
  EXPECT_EQ(vae->latents_mean().sizes(), (std::vector<int64_t>{1, 4, 1, 1, 1}));
  EXPECT_FLOAT_EQ(vae->latents_std()[0][2].item<float>(), 0.5f);
  EXPECT_EQ(vae->latents_std().scalar_type(), at::kFloat);
}

TEST(WanVAE, ShapeErrorsNameTheProblem) {
  auto vae = tiny_vae();
  const std::string frames = message_of([&] { vae->encode(torch::zeros({1, 3, 6, 16, 16})); });
  EXPECT_NE(frames.find("6 frames is not of the form 4k+1"), std::string::npos) << frames;
  EXPECT_NE(frames.find("5 and 9"), std::string::npos) << frames;
  EXPECT_THROW(vae->encode(torch::zeros({1, 3, 6, 16, 16})), UsageError);
  EXPECT_THROW(vae->encode(torch::zeros({1, 3, 0, 16, 16})), UsageError);
  const std::string size = message_of([&] { vae->encode(torch::zeros({1, 3, 5, 12, 16})); });
  EXPECT_NE(size.find("12x16"), std::string::npos) << size;
  EXPECT_THROW(vae->encode(torch::zeros({1, 4, 5, 16, 16})), UsageError);  // channels
  EXPECT_THROW(vae->encode(torch::zeros({3, 5, 16, 16})), UsageError);     // rank
  EXPECT_THROW(vae->encode(torch::zeros({1, 3, 5, 16, 16}), {.encode_frames = 6}), UsageError);
  EXPECT_THROW(vae->decode(torch::zeros({1, 16, 2, 2, 2})), UsageError);  // z_dim is 4
  EXPECT_THROW(vae->decode(torch::zeros({1, 4, 0, 2, 2})), UsageError);
  EXPECT_THROW(vae->decode(torch::zeros({1, 4, 2, 2, 2}), {.decode_frames = 0}), UsageError);
}

// Frame t depends on frames <= t only: the first latent frame of a 5-frame video is the encoding
// of frame 0 alone, and the first 5 decoded frames of 3 latent frames are the decoding of the first 2.
TEST(WanVAE, Causality) {
  auto vae = tiny_vae(1);
  const at::Tensor video = torch::rand({1, 3, 9, 16, 16}) * 2 - 1;
  const auto all = vae->encode(video);
  expect_near(vae->encode(video.narrow(2, 0, 1)).mean, all.mean.narrow(2, 0, 1), 1e-6, "first latent frame");
  expect_near(vae->encode(video.narrow(2, 0, 5)).mean, all.mean.narrow(2, 0, 2), 1e-6, "first two latent frames");
  const at::Tensor z = torch::randn({1, 4, 3, 2, 2});
  const at::Tensor decoded = vae->decode_unclamped(z);
  expect_near(vae->decode_unclamped(z.narrow(2, 0, 1)), decoded.narrow(2, 0, 1), 1e-6, "first frame");
  expect_near(vae->decode_unclamped(z.narrow(2, 0, 2)), decoded.narrow(2, 0, 5), 1e-6, "first five frames");
  // And the later frames do depend on the earlier ones (the cache is used).
  at::Tensor changed = z.clone();
  changed.narrow(2, 0, 1).add_(1.0);
  EXPECT_GT((vae->decode_unclamped(changed).narrow(2, 5, 4) - decoded.narrow(2, 5, 4)).abs().max().item<double>(), 1e-4);
}

// Training: the with-gradient passes give the inference numbers, gradients reach both ends of
// the encoder and decoder, and a few Adam steps on a reconstruction + KL loss lower it.
TEST(WanVAE, TrainsThroughTheChunkedCausalPasses) {
  auto vae = tiny_vae(3);
  vae->train();
  torch::manual_seed(30);
  const at::Tensor video = torch::rand({2, 3, 5, 16, 16}) * 2 - 1;
  const at::Tensor moments = vae->encode_moments_with_grad(video);
  EXPECT_TRUE(moments.requires_grad());
  // (Inference convolves through oneDNN, training through libtorch's autograd kernels.)
  expect_near(moments.detach(), vae->encode_moments(video), 1e-4, "moments with and without gradients");
  const at::Tensor z = torch::randn({2, 4, 2, 2, 2});
  expect_near(vae->decode_with_grad(z).detach(), vae->decode_unclamped(z), 1e-4, "decode with and without gradients");

  const auto loss_of = [&](const at::Tensor& x) {
    const at::Tensor m = vae->encode_moments_with_grad(x);
    const auto halves = m.chunk(2, 1);
    const at::Tensor logvar = halves[1].clamp(-30, 20);
    const at::Tensor sample = halves[0] + (0.5 * logvar).exp() * torch::randn_like(halves[0]);
    const at::Tensor recon = at::mse_loss(vae->decode_with_grad(sample), x);
    const at::Tensor kl = 0.5 * (halves[0].pow(2) + logvar.exp() - 1 - logvar).mean();
    return recon + 1e-4 * kl;
  };
  at::Tensor loss = loss_of(video);
  loss.backward();
  for (const auto* name : {"encoder.conv_in.weight", "decoder.conv_out.weight", "quant_conv.weight",
                           "decoder.up_blocks.0.upsamplers.0.time_conv.weight"}) {
    const at::Tensor g = vae->named_parameters()[name].grad();
    ASSERT_TRUE(g.defined()) << name;
    EXPECT_GT(g.abs().sum().item<double>(), 0) << name;
  }
  torch::optim::Adam adam(vae->parameters(), torch::optim::AdamOptions(3e-3));
  const double first = loss.item<double>();
  double last = first;
  for (int step = 0; step < 25; ++step) {
    adam.zero_grad();
    torch::manual_seed(100 + step);
    loss = loss_of(video);
    loss.backward();
    adam.step();
    last = loss.item<double>();
  }
  EXPECT_LT(last, 0.7 * first) << "first " << first << ", last " << last;
}

// The reference's chunks (frame 0, then 4 video frames or 1 latent frame at a time) and one
// chunk for everything after frame 0 (the straightforward causal computation) agree.
TEST(WanVAE, ChunkSizesGiveTheSameResult) {
  auto vae = tiny_vae(2);
  const at::Tensor video = torch::rand({1, 3, 13, 16, 16}) * 2 - 1;
  const at::Tensor chunked = vae->encode_moments(video);
  expect_near(vae->encode_moments(video, {.encode_frames = 12}), chunked, 1e-5, "encode, one chunk after frame 0");
  expect_near(vae->encode_moments(video, {.encode_frames = 8}), chunked, 1e-5, "encode, chunks of 8");
  const at::Tensor z = torch::randn({1, 4, 4, 2, 3});
  const at::Tensor decoded = vae->decode_unclamped(z);
  EXPECT_EQ(decoded.size(2), 13);
  expect_near(vae->decode_unclamped(z, {.decode_frames = 3}), decoded, 1e-5, "decode, one chunk after frame 0");
  expect_near(vae->decode_unclamped(z, {.decode_frames = 2}), decoded, 1e-5, "decode, chunks of 2");
  EXPECT_TRUE(at::equal(vae->decode(z), decoded.clamp(-1, 1)));
  // whole_clip: frame 0, then everything else in one call, for any clip length.
  const WanVAEChunking whole = WanVAEChunking::whole_clip(video.size(2));
  EXPECT_EQ(whole.encode_frames, 12);
  expect_near(vae->encode_moments(video, whole), chunked, 1e-5, "encode, whole_clip");
  expect_near(vae->decode_unclamped(z, whole), decoded, 1e-5, "decode, whole_clip");
  for (const int64_t frames : {1, 2, 5, 6}) {
    const WanVAEChunking c = WanVAEChunking::whole_clip(frames);
    EXPECT_EQ(c.encode_frames % 4, 0) << frames << " frames";
    EXPECT_GE(c.encode_frames, std::max<int64_t>(frames - 1, 1)) << frames << " frames";
    EXPECT_GE(c.decode_frames, 1) << frames << " frames";
  }
}

// The upsamplers' nearest x2 runs in the input's dtype; WanUpsample goes through float. Nearest
// neighbours are copies, so the results are identical, bf16 included.
TEST(WanVAE, UpsamplingInTheInputDtypeEqualsTheFloatPath) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    WanVAEResample up(6, "upsample2d", 3);
    up->to(dtype);
    const at::Tensor x = torch::randn({1, 6, 3, 5, 7}).to(dtype);
    const at::Tensor reference = at::upsample_nearest3d(x.to(at::kFloat), {3, 10, 14}).to(dtype);
    const at::Tensor kernel = up->conv->weight.unsqueeze(2);
    const at::Tensor got = up->forward(x, nullptr);
    if (at::hasMKLDNN()) {  // the convolution the module runs on the CPU: bit-identical
      const at::Tensor want = at::mkldnn_convolution(reference, kernel, up->conv->bias, {0, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1);
      EXPECT_TRUE(at::equal(got, want)) << dtype;
    } else {
      const at::Tensor want = at::conv3d(reference, kernel, up->conv->bias, {1, 1, 1}, {0, 1, 1});
      EXPECT_LE((got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>(), dtype == at::kFloat ? 1e-5 : 3e-2);
    }
  }
}

// Tiles are placed and blended as diffusers does: the top-left tile's kept square is that tile's
// own decode/encode, the next tile fades in linearly over the overlap; frames too small to tile
// skip tiling.
TEST(WanVAE, TilingPlacesTiles) {
  auto vae = tiny_vae(3);
  const WanVAETiling tiling{.tile_size = 16, .stride = 8};
  EXPECT_FALSE(needs_tiling(vae, 16, 16, tiling));
  EXPECT_TRUE(needs_tiling(vae, 16, 24, tiling));
  EXPECT_THROW(needs_tiling(vae, 16, 16, {.tile_size = 12, .stride = 8}), UsageError);
  EXPECT_THROW(needs_tiling(vae, 16, 16, {.tile_size = 16, .stride = 24}), UsageError);

  const at::Tensor z = torch::randn({1, 4, 2, 4, 5});
  const at::Tensor tiled = tiled_decode(vae, z, tiling, {}, /*clamp=*/false);
  EXPECT_EQ(tiled.sizes(), (std::vector<int64_t>{1, 3, 5, 32, 40}));
  const at::Tensor corner = vae->decode_unclamped(z.narrow(3, 0, 2).narrow(4, 0, 2));
  expect_near(tiled.narrow(3, 0, 8).narrow(4, 0, 8), corner.narrow(3, 0, 8).narrow(4, 0, 8), 1e-6, "decode corner");
  // Its right neighbour's first 8 columns fade in linearly over the corner tile's last 8 (blend_h).
  const at::Tensor right = vae->decode_unclamped(z.narrow(3, 0, 2).narrow(4, 1, 2));
  const at::Tensor k = torch::arange(8, torch::kFloat) / 8;
  const at::Tensor blended = corner.narrow(4, 8, 8) * (1 - k) + right.narrow(4, 0, 8) * k;
  expect_near(tiled.narrow(3, 0, 8).narrow(4, 8, 8), blended.narrow(3, 0, 8), 1e-6, "decode blend");
  EXPECT_TRUE(at::equal(tiled_decode(vae, z, tiling), tiled.clamp(-1, 1)));
  const at::Tensor small = z.narrow(3, 0, 2).narrow(4, 0, 2);  // one tile: no tiling
  EXPECT_TRUE(at::equal(tiled_decode(vae, small, tiling), vae->decode(small)));

  const at::Tensor video = torch::rand({1, 3, 5, 32, 40}) * 2 - 1;
  const auto posterior = tiled_encode(vae, video, tiling);
  EXPECT_EQ(posterior.mean.sizes(), (std::vector<int64_t>{1, 4, 2, 4, 5}));
  const auto tile = vae->encode(video.narrow(3, 0, 16).narrow(4, 0, 16));
  expect_near(posterior.mean.narrow(3, 0, 1).narrow(4, 0, 1), tile.mean.narrow(3, 0, 1).narrow(4, 0, 1), 1e-6,
              "encode corner");
}

}  // namespace
}  // namespace genvis::models
