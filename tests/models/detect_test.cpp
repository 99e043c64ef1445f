#include "io/weights.h"
#include "models/detect.h"
#include "support/test_support.h"

namespace genvis::models {
namespace {

LayoutGuess detect_file(const std::string& relative) {
  auto r = io::open_weights(test::fixtures_dir() + "/" + relative);
  return detect_layout(r->tensors(), r->metadata());
}

bool has_detail(const LayoutGuess& g, const std::string& text) {
  for (const auto& d : g.details)
    if (d == text) return true;
  return false;
}

TEST(DetectFixtures, SingleFileSD1) {
  GENVIS_REQUIRE_FIXTURES();
  const LayoutGuess g = detect_file("single_file/sd1_tiny_ldm.safetensors");
  EXPECT_EQ(g.layout, "sd-single-file");
  EXPECT_EQ(g.family, "sd1");
  EXPECT_EQ(g.components.at("unet"), 302u);
  EXPECT_EQ(g.components.at("vae"), 240u);
  EXPECT_EQ(g.components.at("text_encoder (CLIP, HF layout)"), 52u);
  EXPECT_TRUE(has_detail(g, "cross-attention dim 16"));
}

TEST(DetectFixtures, DiffusersComponents) {
  GENVIS_REQUIRE_FIXTURES();
  auto g = detect_file("unet_sd1/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(g.layout, "diffusers-unet");
  EXPECT_EQ(g.class_name, "UNet2DConditionModel");
  EXPECT_EQ(g.family, "sd1");
  EXPECT_TRUE(has_detail(g, "conv projection"));
  g = detect_file("unet_sd2/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(g.family, "sd2");
  EXPECT_TRUE(has_detail(g, "linear projection"));
  g = detect_file("unet_sdxl/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(g.family, "sdxl");
  EXPECT_TRUE(has_detail(g, "cross-attention dim 32"));
  g = detect_file("vae/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(g.layout, "diffusers-vae");
  EXPECT_EQ(g.class_name, "AutoencoderKL");
  EXPECT_TRUE(has_detail(g, "latent channels 4"));
  g = detect_file("clip_l/model.safetensors");
  EXPECT_EQ(g.layout, "transformers-clip-text");
  EXPECT_EQ(g.class_name, "CLIPTextModel");
  EXPECT_TRUE(has_detail(g, "vocab 49408, hidden 16, 3 layers"));
  g = detect_file("clip_g/model.safetensors");
  EXPECT_EQ(g.class_name, "CLIPTextModelWithProjection");
  g = detect_file("wan/transformer/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(g.layout, "diffusers-wan-transformer");
  EXPECT_EQ(g.family, "wan2.1");
  EXPECT_TRUE(has_detail(g, "2 blocks, hidden 24"));
  g = detect_file("wan/vae/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(g.layout, "diffusers-wan-vae");
}

TEST(DetectFixtures, Adapters) {
  GENVIS_REQUIRE_FIXTURES();
  auto g = detect_file("adapters/lora_kohya_sd1.safetensors");
  EXPECT_EQ(g.layout, "kohya-lora");
  EXPECT_EQ(g.family, "sd1");
  EXPECT_TRUE(has_detail(g, "rank 4"));
  g = detect_file("adapters/lora_peft_sd1.safetensors");
  EXPECT_EQ(g.layout, "diffusers-lora");
  g = detect_file("adapters/genvis-style.safetensors");
  EXPECT_EQ(g.layout, "a1111-embedding");
  EXPECT_TRUE(has_detail(g, "2 vector(s) of 16"));
  g = detect_file("adapters/learned_embeds.safetensors");
  EXPECT_EQ(g.layout, "diffusers-embedding");
}

TEST(DetectFixtures, TestDataIsUnknown) {
  GENVIS_REQUIRE_FIXTURES();
  EXPECT_EQ(detect_file("unet_sd1/io.safetensors").layout, "unknown");
  EXPECT_EQ(detect_file("schedulers/euler.safetensors").layout, "unknown");
}

TEST(Detect, SyntheticFamiliesOfSingleFiles) {
  auto info = [](std::string name, std::vector<int64_t> shape) {
    io::TensorInfo t;
    t.name = std::move(name);
    t.shape = std::move(shape);
    return t;
  };
  std::vector<io::TensorInfo> sdxl = {info("model.diffusion_model.input_blocks.0.0.weight", {320, 4, 3, 3}),
                                      info("model.diffusion_model.label_emb.0.0.weight", {1280, 2816}),
                                      info("conditioner.embedders.1.model.text_projection", {1280, 1280})};
  EXPECT_EQ(detect_layout(sdxl).family, "sdxl");
  sdxl.pop_back();
  EXPECT_EQ(detect_layout(sdxl).family, "sdxl-refiner");
  const std::vector<io::TensorInfo> sd2_inpaint = {
      info("model.diffusion_model.input_blocks.0.0.weight", {320, 9, 3, 3}),
      info("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", {3072, 1024})};
  const LayoutGuess g = detect_layout(sd2_inpaint);
  EXPECT_EQ(g.family, "sd2");
  EXPECT_TRUE(has_detail(g, "inpainting (9 input channels)"));
  EXPECT_EQ(detect_layout({info("foo", {1})}).layout, "unknown");
  EXPECT_EQ(detect_layout({}).layout, "unknown");
}

}  // namespace
}  // namespace genvis::models
