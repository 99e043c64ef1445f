// One registration line adds a family: the test-only family generates through `genvis generate`
// (in-process) and through the public C++ and C APIs, and what it cannot do is refused naming the
// request field (API) or the flag (CLI).
#include "api/test_family.h"
#include "cli.h"
#include "genvis/genvis.h"
#include "genvis/genvis.hpp"
#include "io/image.h"
#include "io/infotext.h"
#include "pipelines/registry.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

namespace genvis {
namespace {

int run_cli(std::vector<std::string> args) {
  args.insert(args.begin(), "genvis");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return cli::run(static_cast<int>(argv.size()), argv.data());
}

std::string infotext_of(const std::string& png) {
  for (const auto& [key, text] : io::read_png_text(png))
    if (key == io::kInfotextKey) return text;
  return "";
}

TEST(PipelineRegistry, BuiltinFamiliesAreListedByClassName) {
  const auto classes = api::pipeline_classes();
  for (const char* c : {"StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusionInpaintPipeline"})
    EXPECT_NE(std::find(classes.begin(), classes.end(), c), classes.end()) << c;
  test::register_test_family();
  EXPECT_NE(pipelines::find_pipeline(test::kTestFamilyClass), nullptr);
  EXPECT_THROW(pipelines::register_pipeline({test::kTestFamilyClass, "again", [](const pipelines::ModelSource&) {
                                               return std::unique_ptr<pipelines::Pipeline>();
                                             }}),
               UsageError);
}

TEST(PipelineRegistry, UnknownClassIsRefusedNamingTheKnownOnes) {
  test::TempDir dir;
  test::write_bytes(dir.file("model_index.json"), R"({"_class_name": "FluxPipeline"})");
  try {
    pipelines::load_pipeline({.model = dir.path()});
    FAIL() << "loaded an unknown class";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("FluxPipeline"), std::string::npos) << m;
    EXPECT_NE(m.find("StableDiffusionPipeline"), std::string::npos) << m;
  }
  test::write_bytes(dir.file("model_index.json"), R"({"unet": ["diffusers", "UNet2DConditionModel"]})");
  EXPECT_THROW(pipelines::load_pipeline({.model = dir.path()}), LoadError);  // no _class_name
}

TEST(PipelineRegistry, TestFamilyGeneratesThroughTheCliAndTheApis) {
  test::register_test_family();
  test::TempDir dir;
  const std::string model = dir.file("gradient-16");
  test::write_test_family_model(model, 16);

  // CLI, in-process: the family's native size, its parameters in the PNG.
  const std::string cli_png = dir.file("cli.png");
  ASSERT_EQ(run_cli({"-q", "generate", "--model", model, "-p", "a red square", "--seed", "7", "-o", cli_png}), 0);
  const io::Image from_cli = io::read_png(cli_png);
  EXPECT_EQ(from_cli.width, 16);
  EXPECT_EQ(from_cli.height, 16);
  const io::GenerationParameters p = io::parse_infotext(infotext_of(cli_png));
  EXPECT_EQ(p.prompt, "a red square");
  EXPECT_EQ(p.seed, 7u);
  EXPECT_EQ(p.model, "gradient-16");

  // C++ API: the same image, pixel for pixel; another seed differs.
  api::Pipeline pipeline = api::Pipeline::load({.model = model});
  EXPECT_EQ(pipeline.info().class_name, test::kTestFamilyClass);
  EXPECT_EQ(pipeline.info().native_width, 16);
  api::GenerateRequest request;
  request.prompt = "a red square";
  request.seed = 7;
  const api::GenerateResult r = pipeline.generate(request);
  ASSERT_EQ(r.images.size(), 1u);
  ASSERT_EQ(r.images[0].rgb.size(), from_cli.pixels.size());
  EXPECT_TRUE(std::equal(r.images[0].rgb.begin(), r.images[0].rgb.end(), from_cli.pixels.begin()));
  EXPECT_EQ(r.images[0].parameters, infotext_of(cli_png));
  request.seed = 8;
  EXPECT_NE(pipeline.generate(request).images[0].rgb, r.images[0].rgb);

  // C API: a batch of 2 at 8x12, image i with seed + i.
  genvis_load_options lo;
  genvis_load_options_init(&lo);
  lo.model = model.c_str();
  genvis_pipeline* c = nullptr;
  ASSERT_EQ(genvis_pipeline_load(&lo, &c), GENVIS_OK) << genvis_last_error();
  genvis_request cr;
  genvis_request_init(&cr);
  cr.prompt = "a red square";
  cr.seed = 7;
  cr.batch = 2;
  cr.width = 8;
  cr.height = 12;
  genvis_image* images = nullptr;
  int count = 0;
  ASSERT_EQ(genvis_generate(c, &cr, &images, &count), GENVIS_OK) << genvis_last_error();
  ASSERT_EQ(count, 2);
  EXPECT_EQ(images[0].width, 8);
  EXPECT_EQ(images[1].height, 12);
  EXPECT_NE(std::string(images[1].parameters).find("Seed: 8"), std::string::npos) << images[1].parameters;
  genvis_images_free(images, count);
  genvis_pipeline_free(c);
}

TEST(PipelineRegistry, RequestsTheFamilyCannotServeAreRefusedByName) {
  test::register_test_family();
  test::TempDir dir;
  const std::string model = dir.file("gradient");
  test::write_test_family_model(model, 16);
  api::Pipeline pipeline = api::Pipeline::load({.model = model});
  const auto refused = [&](api::GenerateRequest request, const std::string& field) {
    try {
      pipeline.generate(request);
      ADD_FAILURE() << "not refused: " << field;
    } catch (const api::Error& e) {
      EXPECT_EQ(e.code(), api::ErrorCode::Usage);
      EXPECT_NE(std::string(e.what()).find("'" + field + "'"), std::string::npos) << e.what();
    }
  };
  api::GenerateRequest base;
  base.prompt = "x";
  api::GenerateRequest r = base;
  r.steps = 10;
  refused(r, "steps");
  r = base;
  r.guidance = 3;
  refused(r, "guidance");
  r = base;
  r.negative_prompt = "blurry";
  refused(r, "negative_prompt");
  r = base;
  r.init_image = api::Image{16, 16, std::vector<uint8_t>(16 * 16 * 3, 128), ""};
  refused(r, "init_image");
  r = base;
  r.width = 10;  // not a multiple of 4
  refused(r, "width/height");
  r = base;
  r.extras_json = R"({"clip_skip": 2})";
  refused(r, "extras.clip_skip");

  // The CLI names its flags instead (one line, exit 2).
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_cli({"generate", "--model", model, "-p", "x", "--steps", "5", "-o", dir.file("x.png")}), 2);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("--steps"), std::string::npos) << err;
  EXPECT_EQ(err.find("'steps'"), std::string::npos) << err;
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_cli({"generate", "--model", model, "-p", "x", "--cfg-scale", "2", "-o", dir.file("x.png")}), 2);
  err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("--cfg-scale"), std::string::npos) << err;
}

TEST(PublicApi, BuiltinModelGeneratesAndCancels) {
  api::Pipeline pipeline = api::Pipeline::load({});
  const api::PipelineInfo info = pipeline.info();
  EXPECT_EQ(info.class_name, "StableDiffusionPipeline");
  EXPECT_GT(info.native_width, 0);
  api::GenerateRequest request;
  request.prompt = "grinning face";
  request.steps = 2;
  int calls = 0;
  const auto r = pipeline.generate(request, {.progress = [&](int step, int total) {
    ++calls;
    EXPECT_EQ(total, 2);
    EXPECT_EQ(step, calls);
  }});
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(r.images.size(), 1u);
  EXPECT_EQ(r.images[0].width, info.native_width);
  EXPECT_NE(r.images[0].parameters.find("Steps: 2"), std::string::npos) << r.images[0].parameters;

  // Cancelling from the progress callback of the C API stops after the first step.
  genvis_load_options lo;
  genvis_load_options_init(&lo);
  genvis_pipeline* c = nullptr;
  ASSERT_EQ(genvis_pipeline_load(&lo, &c), GENVIS_OK) << genvis_last_error();
  genvis_request cr;
  genvis_request_init(&cr);
  cr.prompt = "grinning face";
  cr.steps = 4;
  int seen = 0;
  cr.user_data = &seen;
  cr.progress = [](int step, int, void* user) {
    *static_cast<int*>(user) = step;
    return 1;
  };
  genvis_image* images = nullptr;
  int count = 0;
  EXPECT_EQ(genvis_generate(c, &cr, &images, &count), GENVIS_ERROR_CANCELLED);
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(images, nullptr);
  EXPECT_STREQ(genvis_last_error(), "cancelled");
  genvis_pipeline_free(c);
}

TEST(PublicApi, ErrorsAreCodesWithOneLine) {
  genvis_load_options lo;
  genvis_load_options_init(&lo);
  lo.model = "/nonexistent/model";
  genvis_pipeline* c = nullptr;
  EXPECT_EQ(genvis_pipeline_load(&lo, &c), GENVIS_ERROR_LOAD);
  EXPECT_EQ(c, nullptr);
  EXPECT_NE(std::string(genvis_last_error()).find("/nonexistent/model"), std::string::npos) << genvis_last_error();
  EXPECT_EQ(genvis_pipeline_load(nullptr, &c), GENVIS_ERROR_USAGE);
  EXPECT_EQ(genvis_generate(nullptr, nullptr, nullptr, nullptr), GENVIS_ERROR_USAGE);
  try {
    api::Pipeline::load({.model = "/nonexistent/model"});
    FAIL();
  } catch (const api::Error& e) {
    EXPECT_EQ(e.code(), api::ErrorCode::Load);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
  EXPECT_THROW(api::train({.recipe = "sideways", .config = "x.json", .out_dir = "y"}), api::Error);
}

}  // namespace
}  // namespace genvis
