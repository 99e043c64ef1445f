// genvis's own video model through the binary: `genvis train video` on a toy config, then the
// exported folder generates a clip (at the model's frame rate), an image-to-video clip from a PNG
// and a continuation of a video file, `genvis eval` scores clips of shapes-video, the shipped
// default video model answers a video request without --model, and without one a video request
// names the missing default video model in one line.
#include "io/image.h"
#include "io/video.h"
#include "support/test_support.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace genvis {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string genvis_binary() { return std::string(GENVIS_BINARY_DIR) + "/genvis"; }

constexpr const char* kTinyConfig = R"({
  "seed": 2, "fps": 6,
  "dataset": {"name": "shapes-video", "resolution": 16, "size": 24},
  "buckets": [{"frames": 5, "height": 16, "width": 16}],
  "tokenizer": {"vocab_size": 600},
  "vae": {"config": {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2, 2], "num_res_blocks": 1,
                     "temperal_downsample": [true, true]},
          "batch_size": 2, "train": {"steps": 4, "checkpoint_every": 1000, "log_every": 1000}},
  "transformer": {"config": {"num_attention_heads": 2, "attention_head_dim": 8, "ffn_dim": 32, "freq_dim": 16,
                             "num_layers": 1}},
  "text_encoder": {"config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                              "num_attention_heads": 2}},
  "dit": {"batch_size": 4, "train": {"steps": 4, "checkpoint_every": 1000, "log_every": 1000}}
})";

TEST(VideoModelCli, TrainGenerateContinueAndEvaluate) {
  if (!fs::exists(genvis_binary())) GTEST_SKIP() << "the genvis binary is not built";
  test::TempDir dir;
  std::ofstream(dir.file("tiny.json")) << kTinyConfig;
  const std::string q = " --quiet ";
  auto r = test::run_command(genvis_binary() + q + "train video --config " + dir.file("tiny.json") + " --out " + dir.file("run"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string model = dir.file("run/model");
  ASSERT_TRUE(fs::exists(model + "/model_index.json"));

  // Text to video: the model's default size and frame count, at its frame rate.
  r = test::run_command(genvis_binary() + q + "generate --model " + model + " -p 'a red square moving to the right' --steps 2 -o " +
                        dir.file("a.webp"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Video a = io::read_video(dir.file("a.webp"));
  EXPECT_EQ(a.frames.sizes(), at::IntArrayRef({3, 5, 16, 16}));
  EXPECT_NEAR(a.fps, 6.0, 0.01);  // WebP stores whole milliseconds per frame

  // Image to video from a PNG, and a continuation of the clip just made.
  io::write_png(dir.file("first.png"), io::Image::blank(16, 16, 3, 8, 200));
  r = test::run_command(genvis_binary() + q + "generate --model " + model + " -p 'a blue circle growing' --steps 2 --frames 9 " +
                        "--init-image " + dir.file("first.png") + " -o " + dir.file("b.webp"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(io::read_video(dir.file("b.webp")).frames.size(1), 9);
  r = test::run_command(genvis_binary() + q + "generate --model " + model + " -p 'a red square moving to the right' --steps 2 " +
                        "--frames 9 --init-video " + dir.file("a.webp") + " --extras '{\"keep_frames\": 5}' -o " +
                        dir.file("c.webp"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(io::read_video(dir.file("c.webp")).frames.size(1), 9);
  // keep_frames that is not whole latent frames: one line, usage exit code.
  r = test::run_command(genvis_binary() + q + "generate --model " + model + " -p x --steps 2 --frames 9 --init-video " +
                        dir.file("a.webp") + " --extras '{\"keep_frames\": 3}' -o " + dir.file("d.webp"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("keep_frames must be 1 + 4k"), std::string::npos) << r.err;

  // Evaluation on shapes-video (with the shipped video encoder: FVD against 40 real clips).
  r = test::run_command(genvis_binary() + q + "eval --model " + model +
                        " --dataset shapes-video --num 4 --steps 2 --batch 2 --reference-num 40 --out " + dir.file("eval"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json result = json::parse(std::ifstream(dir.file("eval/result.json")));
  EXPECT_EQ(result["num"], 4);
  EXPECT_EQ(result["frames"], 5);
  for (const char* key : {"shapes_video_motion_accuracy", "shapes_video_colour_shape_accuracy", "frame_change_ratio_to_real",
                          "FVD[genvis-shapes-video-encoder]", "motion_accuracy[genvis-shapes-video-encoder]"})
    EXPECT_TRUE(result["metrics"].contains(key)) << key << ": " << result.dump();
  EXPECT_GT(result["metrics"]["FVD[genvis-shapes-video-encoder]"].get<double>(), 0.0);
  EXPECT_EQ(result["reference"]["num"], 40);
  EXPECT_TRUE(fs::exists(dir.file("eval/samples.png")));
}

TEST(VideoModelCli, TheShippedVideoModelAnswersAVideoRequestWithoutModel) {
  if (!fs::exists(genvis_binary())) GTEST_SKIP() << "the genvis binary is not built";
  const fs::path shipped = fs::path(GENVIS_SOURCE_DIR) / "models" / "genvis-shapes-video";
  if (!fs::exists(shipped / "model_index.json")) GTEST_SKIP() << shipped << " holds no finished model";
  test::TempDir dir;
  // The README's command, with fewer steps: a frame strip of 9 frames from the built-in model.
  const auto r = test::run_command(genvis_binary() + " --quiet generate -p 'a red star moving to the left' --frames 9 "
                                   "--steps 4 --seed 1 -o " + dir.file("star.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Image strip = io::read_png(dir.file("star.png"));
  // Nine of the model's native 32 px frames side by side, a 1 px white line around each.
  EXPECT_EQ(strip.height, 32 + 2);
  EXPECT_EQ(strip.width, 9 * (32 + 1) + 1);
}

TEST(VideoModelCli, VideoRequestWithoutModelNamesTheDefaultVideoModel) {
  if (!fs::exists(genvis_binary())) GTEST_SKIP() << "the genvis binary is not built";
  test::TempDir dir;
  const auto r = test::run_command("GENVIS_DEFAULT_VIDEO_MODEL=" + dir.file("none") + " " + genvis_binary() +
                                   " --quiet generate -p 'a star' --frames 9 -o " + dir.file("x.webp"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("GENVIS_DEFAULT_VIDEO_MODEL"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("genvis-shapes-video"), std::string::npos) << r.err;
  std::string trimmed = r.err;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  EXPECT_EQ(trimmed.find('\n'), std::string::npos) << r.err;
}

}  // namespace
}  // namespace genvis
