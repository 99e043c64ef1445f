// The family-neutral parts: requests checked and completed against PipelineInfo, seeded noise of
// any rank, guidance, the diffusion loop's callbacks, the output writer, and Stable Diffusion
// through the registry giving exactly what its own generate() gives.
#include "core/error.h"
#include "core/rng.h"
#include "io/image.h"
#include "io/infotext.h"
#include "pipelines/common/diffusion_loop.h"
#include "pipelines/common/guidance.h"
#include "pipelines/common/noise.h"
#include "pipelines/common/output.h"
#include "pipelines/registry.h"
#include "pipelines/stable_diffusion_pipeline.h"
#include "support/test_support.h"
#include "support/tiny_models.h"

namespace genvis::pipelines {
namespace {

PipelineInfo image_only_info() {
  PipelineInfo i;
  i.class_name = "TestPipeline";
  i.native_width = 64;
  i.native_height = 48;
  i.size_multiple = 16;
  i.supports.steps = true;
  i.defaults.steps = 25;
  return i;
}

TEST(Request, DefaultsComeFromTheFamily) {
  Request r;
  r.prompt = "x";
  const Request c = complete_request(image_only_info(), r);
  EXPECT_EQ(*c.width, 64);
  EXPECT_EQ(*c.height, 48);
  EXPECT_EQ(*c.steps, 25);
  EXPECT_FALSE(c.guidance.has_value());  // the family has no guidance
  r.width = 32;                          // one size given alone makes a square
  const Request square = complete_request(image_only_info(), r);
  EXPECT_EQ(*square.height, 32);
}

TEST(Request, InitImageSizeMustMatchUnlessTheFamilyResizes) {
  PipelineInfo info = image_only_info();
  info.supports.image_to_image = true;
  Request r;
  r.prompt = "x";
  r.init_image = at::zeros({1, 3, 64, 96});
  EXPECT_EQ(*complete_request(info, r).width, 96);  // the size comes from the image
  r.width = 32, r.height = 48;
  try {
    complete_request(info, r);
    FAIL() << "a 96x64 init image accepted for 32x48";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("the init image is 96x64 but the size asked for is 32x48"), std::string::npos)
        << e.what();
  }
  info.resizes_init_image = true;  // e.g. Wan image-to-video: the first frame is resized
  const Request c = complete_request(info, r);
  EXPECT_EQ(*c.width, 32);
  EXPECT_EQ(*c.height, 48);
}

TEST(Request, EveryProblemIsNamedByItsFieldAtOnce) {
  Request r;
  r.prompt = "x";
  r.guidance = 5;
  r.mask = at::zeros({1, 1, 48, 64});
  r.num_frames = 16;
  r.batch = 0;
  r.width = 40;  // not a multiple of 16
  r.extras = {{"tile", true}};
  try {
    complete_request(image_only_info(), r);
    FAIL() << "accepted";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    for (const char* field : {"'guidance'", "'mask'", "'num_frames'", "'batch'", "'width/height'", "'extras.tile'"})
      EXPECT_NE(m.find(field), std::string::npos) << field << " not in: " << m;
  }
}

TEST(Request, PrecheckCatchesValuesBeforeAnyModelLoads) {
  Request r;
  r.prompt = "x";
  r.steps = 0;
  EXPECT_THROW(precheck_request(r), UsageError);
  r.steps = 10;
  r.sampler = "warp";
  EXPECT_THROW(precheck_request(r), UsageError);
  r.sampler = "euler";
  r.extras = {{"anything", 1}};  // family-specific: checked after loading
  EXPECT_NO_THROW(precheck_request(r));
  // Step caching: the values are checked now, whether the family has it after loading.
  r.cache_interval = 3;
  r.cache_threshold = 0.1;
  EXPECT_NO_THROW(precheck_request(r));
  r.cache_interval = 0;
  const std::string m = test::usage_error([&] { precheck_request(r); });
  EXPECT_NE(m.find("'cache_interval': must be 1..100"), std::string::npos) << m;
  EXPECT_EQ(m.find("does not support"), std::string::npos) << m;
}

TEST(SeededNoise, SampleIIsSeedPlusIAtAnyRank) {
  const at::Tensor video = seeded_noise(5, 3, {4, 2, 6, 8}, {});
  EXPECT_EQ(video.sizes(), (std::vector<int64_t>{3, 4, 2, 6, 8}));
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_TRUE(at::equal(video[i], Rng(5 + static_cast<uint64_t>(i)).randn({1, 4, 2, 6, 8})[0])) << i;
  // A sample does not depend on the batch it was drawn in.
  EXPECT_TRUE(at::equal(seeded_noise(7, 1, {16}, {})[0], seeded_noise(5, 3, {16}, {})[2]));
  EXPECT_FALSE(at::equal(seeded_noise(5, 1, {16}, {}), seeded_noise(6, 1, {16}, {})));
}

TEST(Guidance, OneBatchedCallCombinedAsUncondPlusScaleTimesDifference) {
  const at::Tensor x = at::randn({2, 3});
  int calls = 0;
  const at::Tensor out = classifier_free_guidance(x, 4.0, [&](const at::Tensor& doubled) {
    ++calls;
    EXPECT_EQ(doubled.size(0), 4);
    return at::cat({doubled.narrow(0, 0, 2) * 0, doubled.narrow(0, 2, 2) * 1});  // uncond 0, cond x
  });
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(at::allclose(out, x * 4.0));
}

TEST(DiffusionLoop, ProgressPreviewAndCancel) {
  const schedulers::NoiseScheduleConfig config;
  const DiffusionPlan plan = plan_diffusion(config, "euler", "default", 6);
  EXPECT_EQ(plan.total(), 6);
  const schedulers::Network zero_eps = [](const at::Tensor& x, double) { return at::zeros_like(x); };
  std::vector<int64_t> steps, previews;
  Callbacks c;
  c.on_step = [&](int64_t i, int64_t total) {
    steps.push_back(i);
    EXPECT_EQ(total, 6);
  };
  c.preview_every = 2;
  c.on_preview = [&](int64_t i, const at::Tensor& samples) {
    previews.push_back(i);
    EXPECT_EQ(samples.size(1), 3);
  };
  DiffusionLoopOptions options;
  options.preview = [](const at::Tensor& denoised) { return denoised.narrow(1, 0, 3); };
  const at::Tensor x = at::randn({1, 4, 8, 8}) * plan.init_noise_sigma();
  run_diffusion(plan, config, zero_eps, x, {}, c, options);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(previews, (std::vector<int64_t>{2, 4, 6}));

  steps.clear();
  c.cancelled = [&] { return steps.size() >= 2; };
  EXPECT_THROW(run_diffusion(plan, config, zero_eps, x, {}, c, options), Cancelled);
  EXPECT_EQ(steps.size(), 2u);
  // A timestep sampler cannot start from an image; a flow sampler needs a flow model.
  DiffusionPlan ddim = plan_diffusion(config, "ddim", "default", 4);
  EXPECT_THROW(ddim.skip_for_strength(0.5), UsageError);
  EXPECT_THROW(plan_diffusion(config, "flow_euler", "default", 4), UsageError);
}

TEST(OutputWriter, BatchesAreNumberedAndCarryTheirParameters) {
  test::TempDir dir;
  Result r;
  r.samples = at::rand({2, 3, 8, 12});
  for (uint64_t seed : {3u, 4u}) {
    io::GenerationParameters p;
    p.prompt = "a cat";
    p.steps = 20;
    p.sampler = "Euler";
    p.seed = seed;
    r.parameters.push_back(p);
  }
  const auto files = write_result(r, {.path = dir.file("out.png")});
  ASSERT_EQ(files, (std::vector<std::string>{dir.file("out-0.png"), dir.file("out-1.png")}));
  EXPECT_EQ(io::read_png(files[1]).width, 12);
  const auto text = io::read_png_text(files[1]);
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(io::parse_infotext(text[0].second).seed, 4u);

  Result video;
  video.samples = at::rand({1, 3, 5, 8, 8});
  EXPECT_THROW(write_result(video, {.path = dir.file("clip.testvid")}), UsageError);  // no writer
  int64_t frames = 0;
  register_video_writer(".testvid", [&](const std::string&, const at::Tensor& v, double, const io::GenerationParameters&) {
    frames = v.size(1);
  });
  write_result(video, {.path = dir.file("clip.testvid")});
  EXPECT_EQ(frames, 5);
}

// The registry path (load_pipeline + Request) gives exactly what Stable Diffusion's own
// generate() gives for the same settings: txt2img with a deterministic and a stochastic sampler,
// a timestep sampler, and img2img.
TEST(StableDiffusionPipeline, BitIdenticalToDirectGenerate) {
  GENVIS_REQUIRE_FIXTURES();
  const ModelSource source = test::tiny_sd1_source();
  std::unique_ptr<Pipeline> pipeline = load_pipeline(source);
  EXPECT_EQ(pipeline->info().class_name, "StableDiffusionPipeline");
  StableDiffusion direct = load_stable_diffusion(source);
  const at::Tensor init = at::rand({1, 3, 24, 32}) * 2 - 1;
  for (const std::string sampler : {"euler", "euler_a", "ddim", "dpmpp_2m_sde"}) {
    for (const bool img2img : {false, true}) {
      if (img2img && sampler == "ddim") continue;
      Request r;
      r.prompt = "a (red:1.2) apple";
      r.negative_prompt = "blurry";
      r.sampler = sampler;
      r.steps = 3;
      r.guidance = 6.5;
      r.width = 32;
      r.height = 24;
      r.seed = 11;
      r.batch = 2;
      GenerateOptions o;
      o.prompt = r.prompt;
      o.negative_prompt = r.negative_prompt;
      o.sampler = sampler;
      o.steps = 3;
      o.cfg_scale = 6.5;
      o.width = 32;
      o.height = 24;
      o.seed = 11;
      o.batch = 2;
      if (img2img) {
        r.init_image = o.init_image = init;
        r.strength = o.strength = 0.6;
      }
      const Result via_registry = pipeline->generate(r);
      const GenerateResult own = generate(direct, o);
      EXPECT_TRUE(at::equal(via_registry.latents, own.latents)) << sampler << (img2img ? " img2img" : "");
      EXPECT_TRUE(at::equal(via_registry.samples, own.images)) << sampler;
      ASSERT_EQ(via_registry.parameters.size(), 2u);
      EXPECT_EQ(via_registry.parameters[1].seed, 12u);
      EXPECT_EQ(via_registry.parameters[0].steps, 3);
    }
  }
}

TEST(StableDiffusionPipeline, RefusesWhatItCannotDoByField) {
  GENVIS_REQUIRE_FIXTURES();
  std::unique_ptr<Pipeline> pipeline = load_pipeline(test::tiny_sd1_source());
  Request r;
  r.prompt = "x";
  r.num_frames = 8;
  EXPECT_THROW(pipeline->generate(r), UsageError);
  r.num_frames.reset();
  r.extras = {{"clip_skip", "two"}};
  try {
    pipeline->generate(r);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'extras.clip_skip'"), std::string::npos) << e.what();
  }
}

// DeepCache through a request: interval 1 is the plain run, a larger interval runs and stays near
// it (the fixture UNet has two levels: the cached pass skips half its blocks), is written into
// the parameters, and a threshold (the transformers' cache) is refused by name.
TEST(StableDiffusionPipeline, DeepCacheInterval) {
  GENVIS_REQUIRE_FIXTURES();
  std::unique_ptr<Pipeline> pipeline = load_pipeline(test::tiny_sd1_source());
  EXPECT_TRUE(pipeline->info().supports.cache_interval);
  EXPECT_FALSE(pipeline->info().supports.cache_threshold);
  Request r;
  r.prompt = "a red apple";
  r.steps = 8;
  r.width = 32;
  r.height = 24;
  r.seed = 5;
  const Result plain = pipeline->generate(r);
  r.cache_interval = 1;
  EXPECT_TRUE(at::equal(pipeline->generate(r).samples, plain.samples));
  r.cache_interval = 3;
  const Result cached = pipeline->generate(r);
  EXPECT_FALSE(at::equal(cached.samples, plain.samples));
  const double mse = (cached.samples - plain.samples).pow(2).mean().item<double>();
  EXPECT_GT(10 * std::log10(1.0 / mse), 15.0) << "PSNR of DeepCache interval 3 against the plain run";
  bool written = false;
  for (const auto& [k, v] : cached.parameters[0].extra) written |= k == "DeepCache interval" && v == "3";
  EXPECT_TRUE(written);
  r.cache_interval = 0;
  test::expect_contains(test::usage_error([&] { pipeline->generate(r); }), {"'cache_interval'", "1..100"});
  r.cache_interval = 1;
  r.cache_threshold = 0.1;
  test::expect_contains(test::usage_error([&] { pipeline->generate(r); }), {"'cache_threshold'", "does not support"});
}

}  // namespace
}  // namespace genvis::pipelines
