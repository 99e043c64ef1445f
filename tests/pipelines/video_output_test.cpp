// The video writers built into pipelines' output: .mp4, .webp and frame folders from
// io/video.h, with batches numbered like images.
#include "core/error.h"
#include "io/video.h"
#include "pipelines/common/output.h"
#include "support/test_support.h"

#include <filesystem>

namespace genvis::pipelines {
namespace {

namespace fs = std::filesystem;

Result video_batch(int64_t n) {
  Result r;
  r.samples = at::rand({n, 3, 5, 16, 24});
  for (int64_t i = 0; i < n; ++i) {
    io::GenerationParameters p;
    p.prompt = "clip " + std::to_string(i);
    p.steps = 4;
    p.sampler = "UniPC";
    p.seed = static_cast<uint64_t>(100 + i);
    r.parameters.push_back(p);
  }
  return r;
}

TEST(VideoOutput, BuiltInWritersCarryEachSamplesParameters) {
  test::TempDir dir;
  const Result r = video_batch(2);
  for (const std::string name : {"clip.mp4", "clip.WEBP", "clips/", "clipdir"}) {
    const auto files = write_result(r, {.path = dir.file(name), .fps = 8});
    ASSERT_EQ(files.size(), 2u) << name;
    for (size_t i = 0; i < 2; ++i) {
      const io::Video v = io::read_video(files[i]);
      EXPECT_EQ(v.frames.sizes(), (std::vector<int64_t>{3, 5, 16, 24})) << files[i];
      EXPECT_DOUBLE_EQ(v.fps, 8) << files[i];
      const auto p = io::read_video_parameters(files[i]);
      ASSERT_TRUE(p) << files[i];
      EXPECT_EQ(p->seed, 100 + i) << files[i];
    }
  }
  EXPECT_TRUE(fs::is_directory(dir.file("clips-0")));
  EXPECT_TRUE(fs::is_directory(dir.file("clips-1")));
  EXPECT_TRUE(fs::exists(dir.file("clipdir-1/frame-0004.png")));
  EXPECT_TRUE(fs::exists(dir.file("clip-1.WEBP")));
}

TEST(VideoOutput, UnknownExtensionsAndBadFpsAreUsageErrors) {
  test::TempDir dir;
  try {
    write_result(video_batch(1), {.path = dir.file("clip.avi")});
    ADD_FAILURE() << "no error for .avi";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(".mp4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("a folder"), std::string::npos) << e.what();
  }
  EXPECT_THROW(write_result(video_batch(1), {.path = dir.file("clip.mp4"), .fps = 0}), UsageError);
  EXPECT_FALSE(fs::exists(dir.file("clip.mp4")));
}

}  // namespace
}  // namespace genvis::pipelines
