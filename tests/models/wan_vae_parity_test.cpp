// AutoencoderKLWan against diffusers 0.33.1 (fixture "wan21_vae"): F16 weights up-cast to F32,
// float32 compute, the reference's chunking (frame 0, then 4 frames; decode 1 latent frame at a
// time) and larger chunks. Every size comes from the fixture files.
#include "io/weights.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "support/test_support.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

constexpr const char* kCase = "wan21_vae";

// The case's component folder (where config.json is) and io.safetensors, from the manifest.
struct WanVaeCaseFiles {
  std::string folder, io;
};
WanVaeCaseFiles case_files() {
  WanVaeCaseFiles f;
  const nlohmann::json c = test::fixture_case(kCase);  // bound first: a temporary's .at() would dangle
  for (const auto& file : c.at("files")) {
    const std::string path = test::fixtures_dir() + "/" + file.get<std::string>();
    if (path.ends_with("config.json")) f.folder = std::filesystem::path(path).parent_path().string();
    else if (path.ends_with("io.safetensors")) f.io = path;
  }
  return f;
}

void expect_output(const at::Tensor& got, io::WeightReader& io, const std::string& name, const std::string& how) {
  test::expect_close(got, io.load(name, at::kFloat), test::fixture_tolerance(kCase, name),
                     std::string(kCase) + " " + name + how);
}

TEST(WanVAEParity, EncodeAndDecode) {
  GENVIS_REQUIRE_FIXTURES();
  const WanVaeCaseFiles f = case_files();
  auto vae = load_autoencoder_kl_wan(f.folder, at::kFloat);
  const auto io = io::open_weights(f.io);
  const at::Tensor video = io->load("video", at::kFloat), z = io->load("z", at::kFloat);

  const auto posterior = vae->encode(video);
  expect_output(posterior.mean, *io, "latent_mean", "");
  expect_output(posterior.logvar, *io, "latent_logvar", "");
  expect_output(vae->decode(z), *io, "decoded", "");
  expect_output(vae->decode_unclamped(z), *io, "decoded_unclamped", "");
}

// Everything after frame 0 in one chunk: the same numbers within the same tolerance.
TEST(WanVAEParity, LargerChunks) {
  GENVIS_REQUIRE_FIXTURES();
  const WanVaeCaseFiles f = case_files();
  auto vae = load_autoencoder_kl_wan(f.folder, at::kFloat);
  const auto io = io::open_weights(f.io);
  const at::Tensor video = io->load("video", at::kFloat), z = io->load("z", at::kFloat);
  const WanVAEChunking whole = WanVAEChunking::whole_clip(video.size(2));
  const auto posterior = vae->encode(video, whole);
  expect_output(posterior.mean, *io, "latent_mean", " (one chunk after frame 0)");
  expect_output(posterior.logvar, *io, "latent_logvar", " (one chunk after frame 0)");
  expect_output(vae->decode_unclamped(z, whole), *io, "decoded_unclamped", " (one chunk after frame 0)");
}

}  // namespace
}  // namespace genvis::models
