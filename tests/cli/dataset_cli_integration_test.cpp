// `genvis dataset preview|info` as a user runs them.
#include "io/grid.h"
#include "io/image.h"
#include "io/video.h"
#include "support/test_support.h"

#include <nlohmann/json.hpp>

namespace genvis {
namespace {

TEST(DatasetCli, PreviewWritesAContactSheetOfTheRequestedSamples) {
  if (!std::filesystem::exists(io::kDefaultFontPath))
    GTEST_SKIP() << io::kDefaultFontPath << " (Debian package fonts-dejavu-core) is not installed";
  test::TempDir dir;
  auto r = test::run_genvis("dataset preview shapes --resolution 32 --count 6 --columns 3 -o " + dir.file("s.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Image sheet = io::read_png(dir.file("s.png"));
  EXPECT_EQ(sheet.width, 8 + 3 * (32 + 8));  // 3 columns of 32 px cells with 8 px padding
  EXPECT_GT(sheet.height, 2 * 32);
  r = test::run_genvis("dataset preview shapes --resolution 32 --count 6 --columns 3 --shuffle --augment --seed 4 -o " +
             dir.file("a.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(io::read_png(dir.file("a.png")).pixels, sheet.pixels);
}

TEST(DatasetCli, VideoDatasetsPreviewAsFrameStripsInfoAndExport) {
  if (!std::filesystem::exists(io::kDefaultFontPath))
    GTEST_SKIP() << io::kDefaultFontPath << " (Debian package fonts-dejavu-core) is not installed";
  test::TempDir dir;
  auto r = test::run_genvis("dataset preview shapes-video --resolution 16 --frames 5 --count 3 -o " + dir.file("v.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Image sheet = io::read_png(dir.file("v.png"));
  // One column of strips: 5 frames of 16 px with 1 px gaps and borders, inside 8 px padding.
  EXPECT_EQ(sheet.width, 8 + (1 + 5 * (16 + 1)) + 8);
  EXPECT_GT(sheet.height, 3 * 16);
  r = test::run_genvis("dataset info shapes-video --resolution 16 --frames 3 --split heldout");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["name"], "shapes-video");
  EXPECT_EQ(j["frames"], 3);
  EXPECT_TRUE(j["first_meta"]["motion"]["heldout"].get<bool>());
  r = test::run_genvis("dataset export shapes-video --resolution 16 --frames 4 --count 2 --out " + dir.file("clips"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Video v = io::read_video(dir.file("clips/0001.webp"));
  EXPECT_EQ(v.frames.size(1), 4);
  EXPECT_EQ(v.frames.size(3), 16);
  EXPECT_TRUE(std::filesystem::exists(dir.file("clips/0001.txt")));
  r = test::run_genvis("dataset preview shapes-video --shuffle");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("image datasets only"), std::string::npos) << r.err;
  r = test::run_genvis("dataset preview shapes --frames 4");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("video datasets only"), std::string::npos) << r.err;
}

TEST(DatasetCli, InfoAndErrors) {
  auto r = test::run_genvis("dataset info shapes --resolution 32 --split heldout");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["name"], "shapes");
  EXPECT_EQ(j["split"], "heldout");
  EXPECT_EQ(j["resolution"][0], 32);
  EXPECT_FALSE(j["first_caption"].get<std::string>().empty());
  r = test::run_genvis("dataset preview nope");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("known: emoji, shapes"), std::string::npos) << r.err;
  r = test::run_genvis("dataset preview folder");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--path"), std::string::npos) << r.err;
  r = test::run_genvis("dataset preview shapes --split sideways");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("sideways"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace genvis
