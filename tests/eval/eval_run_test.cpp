// eval::run_evaluation, the library half of `genvis eval`: settings are refused by field name, a
// split renders at the dataset's native size when nothing else sets it, and the report carries
// what the CLI writes (result.json's fields, result.md's columns, samples.png).
#include "core/error.h"
#include "data/emoji.h"
#include "data/registry.h"
#include "eval/eval_run.h"
#include "support/test_support.h"

#include <filesystem>

namespace genvis::eval {
namespace {

namespace fs = std::filesystem;

std::string usage_error(const EvalRun& run) {
  try {
    run_evaluation(run);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(EvalRun, BadSettingsNameTheirFields) {
  EvalRun none;
  EXPECT_NE(usage_error(none).find("give 'model'"), std::string::npos) << usage_error(none);
  EvalRun two;
  two.model = "m";
  two.images = "i";
  EXPECT_NE(usage_error(two).find("exclude each other"), std::string::npos);
  EvalRun bad;
  bad.images_from_dataset = true;
  bad.batch = 0;
  EXPECT_NE(usage_error(bad).find("'batch'"), std::string::npos) << usage_error(bad);
  bad.batch = 4;
  bad.size = 12;
  EXPECT_NE(usage_error(bad).find("'size'"), std::string::npos) << usage_error(bad);
  bad.size = 0;
  bad.split = "all";
  EXPECT_NE(usage_error(bad).find("'split'"), std::string::npos) << usage_error(bad);
  bad.split = "train";
  bad.width = 48;  // a non-square size is for clips
  EXPECT_NE(usage_error(bad).find("'width' and 'height' are for video datasets"), std::string::npos) << usage_error(bad);
  bad.width = 0;
  EvalRun clip;
  clip.images_from_dataset = true;
  clip.dataset = "shapes-video";
  clip.height = 20;
  EXPECT_NE(usage_error(clip).find("'width' and 'height' must be multiples of 8"), std::string::npos) << usage_error(clip);
  bad.dataset = "folder";  // no shipped judge, no pixel scorer
  bad.path = "photos";
  EXPECT_NE(usage_error(bad).find("no judge for dataset 'folder'"), std::string::npos) << usage_error(bad);
}

TEST(EvalRun, ExtrasReachTheFamilyAndTheReport) {
  const fs::path model = fs::path(GENVIS_SOURCE_DIR) / "models" / "genvis-shapes-32";
  if (!fs::exists(model / "model_index.json")) GTEST_SKIP() << "models/genvis-shapes-32 is absent";
  EvalRun run;
  run.model = model.string();
  run.dataset = "shapes";
  run.num = 2;
  run.steps = 2;
  run.no_cache = true;
  run.extras = {{"colour", 1}};  // unknown to the family: refused by its name
  EXPECT_NE(usage_error(run).find("extras.colour"), std::string::npos) << usage_error(run);
  run.extras = {{"clip_skip", 1}};
  const EvalReport report = run_evaluation(run);
  EXPECT_EQ(report.result["generation"]["extras"]["clip_skip"], 1);
  EXPECT_EQ(report.set.images.size(0), 2);
}

TEST(EvalRun, ShapesAreJudgedByThePixelScorerAlone) {
  EvalRun run;
  run.images_from_dataset = true;
  run.dataset = "shapes";
  run.split = "heldout";
  run.num = 8;
  run.resolution = 32;
  run.no_cache = true;
  const EvalReport report = run_evaluation(run);
  const auto& m = report.result["metrics"];
  // The dataset's own renders: the scorer finds what the captions say.
  ASSERT_TRUE(m.contains("shapes_colour_shape_accuracy")) << m.dump();
  EXPECT_GT(m["shapes_colour_shape_accuracy"].get<double>(), 0.9) << m.dump();
  // Against another caption's scene the same renders rarely show the asked-for colours.
  EXPECT_LT(m["shapes_colour_chance"].get<double>(), 0.5) << m.dump();
  for (const auto& [key, value] : m.items()) EXPECT_EQ(key.rfind("shapes_", 0), 0u) << key << ": no feature judge was given";
  EXPECT_TRUE(report.result["extractors"].empty());
}

TEST(EvalRun, DatasetImagesRenderAtTheNativeSizeAndReportEverything) {
  const fs::path encoder = fs::path(GENVIS_SOURCE_DIR) / "models" / "genvis-contrastive-emoji" / "model.safetensors";
  if (!fs::exists(encoder) || !fs::exists(data::kDefaultEmojiFont))
    GTEST_SKIP() << "the shipped genvis-contrastive-emoji or fonts-noto-color-emoji is absent";
  test::TempDir dir;
  EvalRun run;
  run.images_from_dataset = true;
  run.dataset = "emoji";
  run.split = "heldout";
  run.num = 6;
  run.reference_num = 12;
  run.k = 4;
  run.no_cache = true;
  const EvalReport report = run_evaluation(run);
  EXPECT_EQ(report.set.images.size(0), 6);
  EXPECT_EQ(report.set.images.size(3), data::native_resolution("emoji"));
  EXPECT_EQ(report.set.captions.size(), 6u);
  const auto& r = report.result;
  EXPECT_EQ(r["name"], "emoji heldout images");
  EXPECT_EQ(r["split"], "heldout");
  EXPECT_EQ(r["reference_split"], "heldout");
  EXPECT_EQ(r["num"], 6);
  EXPECT_EQ(r["source"]["images"], "dataset");
  EXPECT_TRUE(r["generation"].is_null());
  ASSERT_TRUE(r["metrics"].contains("r_precision[genvis-contrastive-emoji]")) << r.dump();
  const double rp = r["metrics"]["r_precision[genvis-contrastive-emoji]"].get<double>();
  EXPECT_GE(rp, 0.0);
  EXPECT_LE(rp, 1.0);
  ASSERT_GE(report.columns.size(), 5u);
  EXPECT_EQ(report.columns[0], "name");
  for (size_t i = 4; i < report.columns.size(); ++i) EXPECT_TRUE(r["metrics"].contains(report.columns[i]));

  run.name = "real emoji";
  run.resolution = 32;
  const EvalReport named = run_evaluation(run);
  EXPECT_EQ(named.result["name"], "real emoji");
  EXPECT_EQ(named.set.images.size(3), 32);
  EXPECT_EQ(default_evaluation_folder(named), "eval/real emoji");
  write_evaluation(named, dir.file("out"));
  for (const char* f : {"result.json", "result.md", "samples.png"}) EXPECT_TRUE(fs::exists(dir.file("out/") + f)) << f;
}

}  // namespace
}  // namespace genvis::eval
