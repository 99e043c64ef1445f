// `genvis info` on video files and frame folders, and --fps checks, through the binary.
#include "io/infotext.h"
#include "io/video.h"
#include "support/test_support.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace genvis {
namespace {

using test::run_command;
using test::shell_quote;

io::GenerationParameters parameters() {
  io::GenerationParameters p;
  p.prompt = "a fox in snow";
  p.steps = 30;
  p.sampler = "UniPC";
  p.seed = 7;
  p.width = 48;
  p.height = 32;
  return p;
}

TEST(VideoInfoCli, ShowsSizeFramesFpsCodecAndParameters) {
  test::TempDir dir;
  const at::Tensor video = at::rand({3, 8, 32, 48});
  for (const auto& [name, codec] : std::vector<std::pair<std::string, std::string>>{
           {"clip.mp4", "h264 (mp4)"}, {"clip.webp", "vp8l (webp)"}, {"frames/", "png (frames)"}}) {
    io::write_video(dir.file(name), video, 16, parameters());
    auto r = test::run_genvis("info " + shell_quote(dir.file(name)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("video: 48x32, 8 frame(s), 16 fps, " + codec), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("prompt: a fox in snow"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("seed: 7"), std::string::npos) << r.out;

    r = test::run_genvis("info --json " + shell_quote(dir.file(name)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["kind"], "video");
    EXPECT_EQ(j["frame_count"], 8);
    EXPECT_EQ(j["fps"], 16.0);
    EXPECT_EQ(j["parameters"]["sampler"], "UniPC");
    EXPECT_EQ(j["parameters_text"], io::format_infotext(parameters()));
  }
}

TEST(VideoInfoCli, BadVideosAndFpsAreOneLineErrors) {
  test::TempDir dir;
  test::write_bytes(dir.file("cut.webp"), std::string("RIFF\x40\0\0\0WEBPVP8X", 16));
  auto r = test::run_genvis("info " + shell_quote(dir.file("cut.webp")));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("cut.webp"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  // Checked before any model is loaded.
  for (const char* fps : {"0", "-3", "nan", "2000"}) {
    r = test::run_genvis(std::string("generate -p x --fps ") + fps);
    EXPECT_EQ(r.exit_code, 2) << fps << ": " << r.err;
    EXPECT_NE(r.err.find("--fps"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace genvis
