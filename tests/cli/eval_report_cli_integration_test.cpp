// `genvis eval` reports as a user runs them: the default model generating from emoji captions,
// the split's own images, a folder of PNGs with captions, the combined table, and clear errors.
// Judges: the shipped contrastive encoder (models/genvis-contrastive-emoji).
#include "data/emoji.h"
#include "data/registry.h"
#include "io/image.h"
#include "support/test_support.h"

#include <filesystem>
#include <nlohmann/json.hpp>

namespace genvis {
namespace {

namespace fs = std::filesystem;

bool have_shipped_models() {
  const fs::path m = fs::path(GENVIS_SOURCE_DIR) / "models";
  return fs::exists(m / "genvis-contrastive-emoji" / "model.safetensors") &&
         fs::exists(m / "genvis-emoji-32" / "model_index.json") && fs::exists(data::kDefaultEmojiFont);
}

nlohmann::json read_result(const std::string& file) { return nlohmann::json::parse(test::read_bytes(file)); }

TEST(EvalReportCli, DefaultModelDatasetImagesFolderAndTable) {
  if (!have_shipped_models()) GTEST_SKIP() << "shipped models or fonts-noto-color-emoji absent";
  test::TempDir dir;
  const std::string common = " --reference-num 60 --k 10 --cache-dir " + dir.file("cache");

  // 1. The split's own images: the real-data row.
  auto r = test::run_genvis("-q eval --images-from-dataset --dataset emoji --num 24 --resolution 32 --out " + dir.file("real") + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto real = read_result(dir.file("real/result.json"));
  const auto& m = real["metrics"];
  for (const char* key : {"FID[genvis-contrastive-emoji]", "KID[genvis-contrastive-emoji]",
                          "precision[genvis-contrastive-emoji]", "recall[genvis-contrastive-emoji]",
                          "clip_score[genvis-contrastive-emoji]", "r_precision[genvis-contrastive-emoji]"})
    EXPECT_TRUE(m.contains(key)) << key << " in " << real.dump();
  EXPECT_GE(m["r_precision[genvis-contrastive-emoji]"].get<double>(), 0.9);  // ground truth, k = 10
  EXPECT_EQ(real["num"], 24);
  EXPECT_TRUE(real["extractors"]["genvis-contrastive-emoji"]["cached"] == false);
  EXPECT_TRUE(fs::exists(dir.file("real/result.md")));
  EXPECT_TRUE(fs::exists(dir.file("real/samples.png")));
  // Run again: the reference features come from the cache and the numbers are identical.
  r = test::run_genvis("-q eval --images-from-dataset --dataset emoji --num 24 --resolution 32 --out " + dir.file("real2") + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto again = read_result(dir.file("real2/result.json"));
  EXPECT_TRUE(again["extractors"]["genvis-contrastive-emoji"]["cached"] == true);
  EXPECT_EQ(again["metrics"], real["metrics"]);

  // 2. The built-in model, batched generation from the same captions.
  r = test::run_genvis("-q eval --model default --dataset emoji --num 12 --batch 5 --steps 4 --out " + dir.file("gen") + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto gen = read_result(dir.file("gen/result.json"));
  EXPECT_EQ(gen["name"], "genvis-emoji-32");
  EXPECT_EQ(gen["generation"]["steps"], 4);
  EXPECT_EQ(gen["generation"]["size"], 32);
  EXPECT_GT(gen["source"]["parameters"].get<int64_t>(), 1000000);
  // Generated images are further from the data than the data itself.
  EXPECT_GT(gen["metrics"]["FID[genvis-contrastive-emoji]"].get<double>(),
            m["FID[genvis-contrastive-emoji]"].get<double>());

  // 3. A folder of PNGs with .txt captions, scored against the same reference.
  data::DatasetSpec spec;
  spec.name = "emoji";
  spec.resolution = 32;
  const auto emoji = data::make_dataset(spec);
  fs::create_directories(dir.file("pngs"));
  for (size_t i = 0; i < 6; ++i) {
    const auto s = emoji->get(i * 7);
    io::write_png(dir.file("pngs/" + std::to_string(i) + ".png"), s.image);
    test::write_bytes(dir.file("pngs/" + std::to_string(i) + ".txt"), s.caption);
  }
  r = test::run_genvis("-q eval --images " + dir.file("pngs") + " --reference emoji --out " + dir.file("folder") + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto folder = read_result(dir.file("folder/result.json"));
  EXPECT_EQ(folder["num"], 6);
  EXPECT_EQ(folder["name"], "pngs");
  EXPECT_TRUE(folder["metrics"].contains("clip_score[genvis-contrastive-emoji]"));

  // 4. One table of all three.
  r = test::run_genvis("eval table " + dir.file("real/result.json") + " " + dir.file("gen/result.json") + " " +
             dir.file("folder/result.json") + " -o " + dir.file("table.md"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string table = test::read_bytes(dir.file("table.md"));
  EXPECT_NE(table.find("| name | dataset | split | num | FID[genvis-contrastive-emoji] |"), std::string::npos) << table;
  EXPECT_NE(table.find("| genvis-emoji-32 | emoji | train | 12 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| pngs |"), std::string::npos) << table;
}

TEST(EvalReportCli, ClearErrors) {
  test::TempDir dir;
  auto r = test::run_genvis("eval");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--model"), std::string::npos) << r.err;
  r = test::run_genvis("eval --model a --images b");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("exclude"), std::string::npos) << r.err;
  // A dataset with neither a shipped judge nor a pixel scorer.
  fs::create_directories(dir.file("photos"));
  r = test::run_genvis("eval --images-from-dataset --dataset folder --path " + dir.file("photos") + " --num 4");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no judge for dataset 'folder'"), std::string::npos) << r.err;
  // shapes needs none: its pixel scorer judges, and no feature metric is invented.
  r = test::run_genvis("-q eval --images-from-dataset --dataset shapes --num 4 --resolution 32 --no-cache --out " +
             dir.file("shapes"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto shapes = read_result(dir.file("shapes/result.json"));
  EXPECT_GT(shapes["metrics"]["shapes_colour_accuracy"].get<double>(), 0.9) << shapes.dump();
  EXPECT_FALSE(shapes["metrics"].contains("FID[genvis-contrastive-emoji]")) << shapes.dump();
  r = test::run_genvis("eval --images-from-dataset --dataset emoji --batch 0");
  EXPECT_EQ(r.exit_code, 2);
  r = test::run_genvis("eval --images-from-dataset --dataset shapes --inception " + dir.file("missing.pth"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("pt_inception-2015-12-05"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // one line
  test::write_bytes(dir.file("bad.json"), "{}");
  r = test::run_genvis("eval table " + dir.file("bad.json"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("not a genvis eval result"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace genvis
