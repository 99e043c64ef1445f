// The video writers built into pipelines' output: .mp4, .webp and frame folders from
// io/video.h and .png frame strips, with batches numbered like images.
#include "core/error.h"
#include "io/image.h"
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

// .png: one frame strip per clip, the frames left to right 1 px apart, with the parameters chunk.
TEST(VideoOutput, PngWritesAFrameStrip) {
  test::TempDir dir;
  const Result r = video_batch(2);
  const auto files = write_result(r, {.path = dir.file("strip.png"), .fps = 8});
  ASSERT_EQ(files.size(), 2u);
  const int64_t frames = r.samples.size(2), h = r.samples.size(3), w = r.samples.size(4);
  for (size_t i = 0; i < 2; ++i) {
    const io::Image strip = io::read_png(files[i]).to_8bit().with_channels(3);
    EXPECT_EQ(strip.width, static_cast<int>(frames * w + frames + 1)) << files[i];
    EXPECT_EQ(strip.height, static_cast<int>(h + 2)) << files[i];
    // Frame t's top-left pixel sits at (1 + t * (w + 1), 1).
    for (int64_t t = 0; t < frames; ++t) {
      const at::Tensor frame = r.samples[static_cast<int64_t>(i)].select(1, t);
      for (int c = 0; c < 3; ++c) {
        const double expected = frame[c][0][0].item<double>() * 255;
        const double got = strip.at(static_cast<int>(1 + t * (w + 1)), 1, c);
        EXPECT_NEAR(got, expected, 1.0) << "clip " << i << " frame " << t << " channel " << c;
      }
    }
    const auto text = io::read_png_text(files[i]);
    ASSERT_EQ(text.size(), 1u) << files[i];
    EXPECT_NE(text[0].second.find("clip " + std::to_string(i)), std::string::npos) << text[0].second;
    EXPECT_NE(text[0].second.find("Seed: " + std::to_string(100 + i)), std::string::npos) << text[0].second;
  }
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
