// `--quant int8` on whole pipelines: the built-in image model quantised at load (UNet and text
// encoder, first/last convolutions and time embedders kept), every int8 copy used during
// generation, images close to the unquantised ones (PSNR) but not identical; a family without an
// int8 path and an unknown mode are refused.
#include "api/test_family.h"
#include "nn/quantize.h"
#include "pipelines/registry.h"
#include "pipelines/stable_diffusion_pipeline.h"
#include "support/test_support.h"

#include <cmath>
#include <filesystem>
#include <gtest/gtest.h>

namespace genvis::pipelines {
namespace {

std::string source_path(const std::string& rel) { return (std::filesystem::path(GENVIS_SOURCE_DIR) / rel).string(); }

Result generate_with(const std::string& quant, std::unique_ptr<Pipeline>* keep = nullptr) {
  ModelSource s;
  s.model = source_path("models/genvis-emoji-32");
  s.dtype = at::kBFloat16;
  s.quant = quant;
  std::unique_ptr<Pipeline> p = load_pipeline(s);
  Request r;
  r.prompt = "grinning face";
  r.seed = 3;
  r.batch = 2;
  r.steps = 8;
  Result out = p->generate(r);
  if (keep) *keep = std::move(p);
  return out;
}

TEST(QuantizeInt8, BuiltInModelRunsEveryInt8LayerCloseToBf16) {
  std::unique_ptr<Pipeline> p;
  const Result q = generate_with("int8", &p);
  const Result f = generate_with("");
  EXPECT_EQ(p->info().quant, "int8");
  auto& sd = dynamic_cast<StableDiffusionPipeline&>(*p).model();
  const auto unet_layers = nn::int8_layers(*sd.unet);
  const auto text_layers = nn::int8_layers(*sd.text_encoder);
  EXPECT_GT(unet_layers.size(), 10u);
  EXPECT_GT(text_layers.size(), 4u);
  for (const auto& [name, layer] : unet_layers) {
    EXPECT_GT(layer->calls.load(), 0) << "unet." << name << " has an int8 copy that generation never used";
    EXPECT_TRUE(name != "conv_in" && name != "conv_out" && name.find("time_embedding") == std::string::npos) << name;
  }
  for (const auto& [name, layer] : text_layers) EXPECT_GT(layer->calls.load(), 0) << "text_encoder." << name;
  ASSERT_EQ(q.samples.sizes(), f.samples.sizes());
  const double mse = (q.samples - f.samples).pow(2).mean().item<double>();
  ASSERT_GT(mse, 0.0) << "int8 images identical to bf16: the int8 path did not run";
  const double psnr = 10.0 * std::log10(1.0 / mse);
  EXPECT_GT(psnr, 28.0) << "int8 strays too far from bf16";
}

TEST(QuantizeInt8, FamiliesWithoutAnInt8PathAndUnknownModesAreRefused) {
  test::register_test_family();
  test::TempDir dir;
  test::write_test_family_model(dir.path());
  ModelSource s;
  s.model = dir.path();
  s.quant = "int8";
  try {
    load_pipeline(s);
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("no int8 path"), std::string::npos) << e.what();
  }
  s.model = source_path("models/genvis-emoji-32");
  s.quant = "int4";
  EXPECT_THROW(load_pipeline(s), UsageError);
}

}  // namespace
}  // namespace genvis::pipelines
