// Every sampler and schedule runs through the pipeline on the tiny fixture models; seeds
// reproduce; batches use seed + i.
#include "core/error.h"
#include "pipelines/stable_diffusion.h"
#include "schedulers/registry.h"
#include "support/test_support.h"
#include "support/tiny_models.h"

namespace genvis::pipelines {
namespace {

StableDiffusion tiny_model() { return test::tiny_sd1_model(); }

GenerateOptions small(const std::string& sampler) {
  GenerateOptions o;
  o.prompt = "a (red:1.2) apple";
  o.negative_prompt = "blurry";
  o.sampler = sampler;
  o.steps = 3;
  o.width = 32;
  o.height = 24;
  o.seed = 7;
  return o;
}

TEST(Generate, EverySdSamplerRunsAndSeedsReproduce) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = tiny_model();
  for (const auto& info : schedulers::samplers()) {
    if (info.space == schedulers::SamplerSpace::Flow) {
      EXPECT_THROW(generate(model, small(info.name)), UsageError) << info.name;
      continue;
    }
    int64_t steps_seen = 0;
    GenerateOptions o = small(info.name);
    o.on_step = [&](int64_t i, int64_t total) {
      steps_seen = i;
      EXPECT_EQ(total, 3) << info.name;
    };
    const GenerateResult a = generate(model, o);
    EXPECT_EQ(steps_seen, 3) << info.name;
    EXPECT_EQ(a.images.sizes(), (std::vector<int64_t>{1, 3, 24, 32})) << info.name;
    EXPECT_TRUE(a.images.isfinite().all().item<bool>()) << info.name;
    EXPECT_GE(a.images.min().item<float>(), 0.f);
    EXPECT_LE(a.images.max().item<float>(), 1.f);
    const GenerateResult b = generate(model, small(info.name));
    EXPECT_TRUE(at::equal(a.latents, b.latents)) << info.name << ": same seed, different result";
  }
}

TEST(Generate, BatchImageIIsSeedPlusI) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = tiny_model();
  GenerateOptions o = small("euler");
  o.batch = 2;
  const GenerateResult batch = generate(model, o);
  o.batch = 1;
  o.seed = 8;
  const GenerateResult second = generate(model, o);
  EXPECT_LE((batch.latents[1] - second.latents[0]).abs().max().item<float>(), 1e-4);
  EXPECT_GT((batch.latents[0] - batch.latents[1]).abs().max().item<float>(), 1e-3);
}

TEST(Generate, OnePromptPerBatchImageMatchesSeparateRuns) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = tiny_model();
  const auto alone = [&](const std::string& prompt, uint64_t seed) {
    GenerateOptions one = small("euler");
    one.prompt = prompt;
    one.seed = seed;
    return generate(model, one).latents[0];
  };
  GenerateOptions o = small("euler");
  o.prompts = {"a green pear", "a blue cat"};
  o.batch = 2;
  const GenerateResult batch = generate(model, o);
  for (int64_t i = 0; i < 2; ++i)
    EXPECT_LE((batch.latents[i] - alone(o.prompts[static_cast<size_t>(i)], o.seed + static_cast<uint64_t>(i)))
                  .abs().max().item<float>(), 1e-4) << "image " << i;
  // The prompts really condition: image 1 differs from image 1's seed with image 0's prompt.
  EXPECT_GT((batch.latents[1] - alone("a green pear", o.seed + 1)).abs().max().item<float>(), 1e-3);

  // A prompt longer than one 77-token chunk pads every row to two chunks (A1111 chunking); the
  // long prompt's own image is what it is alone (alone, its uncond is padded to two chunks too).
  std::string long_prompt = "a blue cat";
  for (int i = 0; i < 40; ++i) long_prompt += " and a dog";
  o.prompts = {"a green pear", long_prompt};
  const GenerateResult mixed = generate(model, o);
  EXPECT_LE((mixed.latents[1] - alone(long_prompt, o.seed + 1)).abs().max().item<float>(), 1e-4);
  EXPECT_TRUE(mixed.latents.isfinite().all().item<bool>());

  o.batch = 3;
  EXPECT_THROW(generate(model, o), UsageError);
}

// generate_each: prompt i gets seed + i whatever the batch size, so an evaluation's images do
// not depend on --batch; the result is f32 on the CPU, one image per prompt.
TEST(Generate, EachPromptGetsItsSeedAtAnyBatchSize) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = tiny_model();
  const std::vector<std::string> prompts = {"a green pear", "a blue cat", "a red apple"};
  GenerateOptions o = small("euler");
  const at::Tensor by_one = generate_each(model, prompts, o, 1, "test");
  const at::Tensor by_two = generate_each(model, prompts, o, 2, "test");
  ASSERT_EQ(by_one.sizes(), (std::vector<int64_t>{3, 3, 24, 32}));
  EXPECT_EQ(by_one.scalar_type(), at::kFloat);
  EXPECT_LE((by_one - by_two).abs().max().item<float>(), 1e-4);
  GenerateOptions third = small("euler");
  third.prompt = prompts[2];
  third.seed = o.seed + 2;
  EXPECT_LE((by_two[2] - generate(model, third).images[0]).abs().max().item<float>(), 1e-4);
  EXPECT_GT((by_two[1] - by_two[2]).abs().max().item<float>(), 1e-3);
  EXPECT_THROW(generate_each(model, prompts, o, 0, "test"), UsageError);
}

TEST(Generate, VaeTilingDecodesInTilesOnlyWhenLarger) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = tiny_model();
  GenerateOptions o = small("euler");
  o.width = 128;
  o.height = 96;
  const GenerateResult plain = generate(model, o);
  o.vae_tiling = true;
  o.vae_tile_size = 128;  // one tile covers the image: the plain decode
  EXPECT_TRUE(at::equal(generate(model, o).images, plain.images));
  o.vae_tile_size = 64;  // 2x3 tiles with blended seams
  const GenerateResult tiled = generate(model, o);
  EXPECT_TRUE(at::equal(tiled.latents, plain.latents));  // only the decode changes
  EXPECT_EQ(tiled.images.sizes(), plain.images.sizes());
  const double diff = (tiled.images - plain.images).abs().mean().item<double>();
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(diff, 0.1);  // per-tile GroupNorm statistics differ; the picture does not
  o.vae_tile_size = 60;
  EXPECT_THROW(generate(model, o), UsageError);
}

TEST(Generate, KarrasScheduleAndBadCombinations) {
  GENVIS_REQUIRE_FIXTURES();
  StableDiffusion model = tiny_model();
  GenerateOptions o = small("dpmpp_2m");
  o.schedule = "karras";
  EXPECT_TRUE(generate(model, o).images.isfinite().all().item<bool>());
  o = small("ddim");
  o.schedule = "karras";
  EXPECT_THROW(generate(model, o), UsageError);
  o = small("ddim");
  o.init_image = at::zeros({1, 3, 24, 32});
  EXPECT_THROW(generate(model, o), UsageError);
  o = small("euler");
  o.init_image = at::zeros({1, 3, 16, 16});  // size differs from width/height
  EXPECT_THROW(generate(model, o), UsageError);
}

TEST(Generate, MissingComponentsAreNamed) {
  ModelSource source;
  source.unet = "/nonexistent/unet";
  try {
    load_stable_diffusion(source);
    FAIL() << "loaded nothing";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--text-encoder"), std::string::npos) << what;
    EXPECT_NE(what.find("--vae"), std::string::npos) << what;
    EXPECT_NE(what.find("--vocab"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace genvis::pipelines
