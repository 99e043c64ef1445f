// AutoencoderKL against diffusers 0.31 (fixture "vae"): F16 weights, float32 compute.
#include "io/weights.h"
#include "models/autoencoder_kl/autoencoder_kl.h"
#include "support/test_support.h"

#include <torch/torch.h>

namespace genvis::models {
namespace {

constexpr double kMaxAbs = 5e-4, kRelL2 = 1e-4;

void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double max_abs = (got - want).abs().max().item<double>();
  const double rel_l2 = ((got - want).norm() / want.norm()).item<double>();
  EXPECT_LE(max_abs, kMaxAbs) << what;
  EXPECT_LE(rel_l2, kRelL2) << what;
  std::cout << what << ": max_abs " << max_abs << " rel_l2 " << rel_l2 << "\n";
}

void check_vae(AutoencoderKL& vae) {
  auto io = io::open_weights(test::fixtures_dir() + "/vae/io.safetensors");
  torch::NoGradGuard no_grad;
  const auto posterior = vae->encode(io->load("image", at::kFloat));
  expect_close(posterior.mean, io->load("latent_mean", at::kFloat), "latent_mean");
  expect_close(posterior.logvar, io->load("latent_logvar", at::kFloat), "latent_logvar");
  expect_close(posterior.std(), io->load("latent_std", at::kFloat), "latent_std");
  expect_close(vae->decode(io->load("z", at::kFloat)), io->load("decoded", at::kFloat), "decoded");
  expect_close(vae->decode(posterior.mean), io->load("reconstruction", at::kFloat), "reconstruction");
}

TEST(AutoencoderKLParity, DiffusersFolder) {
  GENVIS_REQUIRE_FIXTURES();
  auto vae = load_autoencoder_kl(test::fixtures_dir() + "/vae");
  EXPECT_DOUBLE_EQ(vae->config.scaling_factor, 0.18215);
  EXPECT_EQ(vae->downscale_factor(), 8);
  check_vae(vae);
}

TEST(AutoencoderKLParity, SingleFileLdmLayout) {
  GENVIS_REQUIRE_FIXTURES();
  const auto config = AutoencoderKLConfig::from_file(test::fixtures_dir() + "/vae/config.json");
  auto vae = load_autoencoder_kl_single_file(test::fixtures_dir() + "/single_file/sd1_tiny_ldm.safetensors", config);
  check_vae(vae);
}

TEST(AutoencoderKLParity, SingleFileMatchesFolderBitExactly) {
  GENVIS_REQUIRE_FIXTURES();
  auto a = load_autoencoder_kl(test::fixtures_dir() + "/vae");
  auto b = load_autoencoder_kl_single_file(test::fixtures_dir() + "/single_file/sd1_tiny_ldm.safetensors", a->config);
  const auto pb = b->named_parameters();
  for (const auto& p : a->named_parameters()) EXPECT_TRUE(at::equal(p.value(), pb[p.key()])) << p.key();
}

}  // namespace
}  // namespace genvis::models
