// The shapes-video motion scorer against the dataset's own clips: real clips score (nearly)
// perfectly, the same clips played backwards or frozen do not, and bad input is refused.
#include "core/error.h"
#include "data/registry.h"
#include "eval/video_metrics.h"
#include "io/image_tensor.h"

#include <gtest/gtest.h>

namespace genvis::eval {
namespace {

using json = nlohmann::json;

struct Clips {
  at::Tensor videos;  // [N,3,T,H,W] in [0,1]
  std::vector<json> metas;
};

Clips real_clips(size_t n, int frames, int resolution, data::Split split = data::Split::All) {
  const auto ds = data::make_video_dataset(
      {.name = "shapes-video", .resolution = resolution, .num_frames = frames, .split = split, .seed = 11, .size = n});
  Clips c;
  std::vector<at::Tensor> videos;
  for (size_t i = 0; i < n; ++i) {
    const data::VideoSample s = ds->get(i);
    std::vector<at::Tensor> f;
    for (const auto& frame : s.frames) f.push_back((io::image_to_tensor(frame) + 1) / 2);  // [1,3,H,W]
    videos.push_back(at::stack(f, 2));                                                      // [1,3,T,H,W]
    c.metas.push_back(s.meta);
  }
  c.videos = at::cat(videos);
  return c;
}

TEST(ShapesVideoMetrics, RealClipsScoreAlmostPerfectly) {
  for (const int frames : {5, 9, 17}) {
    const Clips c = real_clips(60, frames, 32);
    const auto m = shapes_video_metrics(c.videos, c.metas);
    EXPECT_EQ(m["clips"].get<size_t>(), 60u);
    EXPECT_GE(m["shapes_video_motion_accuracy"].get<double>(), 0.95) << frames << ": " << m.dump();
    EXPECT_GE(m["shapes_video_colour_shape_accuracy"].get<double>(), 0.9) << frames << ": " << m.dump();
    for (const char* type : {"move", "rotate", "colour", "grow", "shrink"})
      EXPECT_TRUE(m.contains(std::string("shapes_video_motion_accuracy_") + type)) << type << " missing: " << m.dump();
  }
}

TEST(ShapesVideoMetrics, BackwardsAndFrozenClipsFail) {
  const Clips c = real_clips(60, 9, 32);
  const auto backwards = shapes_video_metrics(c.videos.flip({2}), c.metas);
  EXPECT_LE(backwards["shapes_video_motion_accuracy"].get<double>(), 0.05) << backwards.dump();
  const at::Tensor frozen = c.videos.narrow(2, 0, 1).expand_as(c.videos).contiguous();
  const auto still = shapes_video_metrics(frozen, c.metas);
  EXPECT_LE(still["shapes_video_motion_accuracy"].get<double>(), 0.05) << still.dump();
  EXPECT_DOUBLE_EQ(mean_frame_change(frozen), 0.0);
  EXPECT_GT(mean_frame_change(c.videos), 0.0);
}

TEST(ShapesVideoMetrics, NonSquareClipsAreScoredInTheirSquareScene) {
  // The loader's 32x48 bucket: rendered at 48, the centred 32 rows kept. Put back into the
  // square (background around it), the real clips still score as motion and colour+shape.
  const Clips c = real_clips(60, 9, 48);
  const at::Tensor wide = centre_crop(c.videos, 32, 48);
  ASSERT_EQ(wide.sizes(), (std::vector<int64_t>{60, 3, 9, 32, 48}));
  EXPECT_TRUE(wide.equal(c.videos.narrow(3, 8, 32)));
  const at::Tensor square = pad_to_square(wide);
  ASSERT_EQ(square.sizes(), c.videos.sizes());
  EXPECT_TRUE(square.narrow(3, 8, 32).equal(wide));
  // Outside the window: one colour per frame and channel, the frame's background.
  const at::Tensor top = square.narrow(3, 0, 8);
  EXPECT_TRUE(top.amax({3, 4}).equal(top.amin({3, 4})));
  const auto m = shapes_video_metrics(square, c.metas);
  EXPECT_GE(m["shapes_video_motion_accuracy"].get<double>(), 0.8) << m.dump();
  EXPECT_GE(m["shapes_video_colour_shape_accuracy"].get<double>(), 0.8) << m.dump();
  // Tall clips too, and a square clip is its own square.
  EXPECT_EQ(pad_to_square(centre_crop(c.videos, 48, 16)).sizes(), c.videos.sizes());
  EXPECT_TRUE(pad_to_square(c.videos).equal(c.videos));
  EXPECT_THROW(centre_crop(c.videos, 56, 48), UsageError);
  EXPECT_THROW(pad_to_square(c.videos[0]), UsageError);
}

TEST(ShapesVideoMetrics, RotationSenseIsMeasured) {
  const Clips c = real_clips(80, 9, 32);
  int seen = 0;
  for (size_t i = 0; i < c.metas.size(); ++i) {
    const json& motion = c.metas[i]["motion"];
    if (motion["type"] != "rotate") continue;
    const ShapesClipScore s = score_shapes_clip(clip_frames(c.videos, static_cast<int64_t>(i)), c.metas[i]);
    const double expected = motion["degrees"].get<double>();  // +-72, counterclockwise positive
    EXPECT_GT(s.degrees * expected, 0) << motion.dump() << " measured " << s.degrees;
    EXPECT_NEAR(s.degrees, expected, 30) << motion.dump();
    ++seen;
  }
  EXPECT_GT(seen, 3);
}

TEST(ShapesVideoMetrics, BadInputIsRefused) {
  const Clips c = real_clips(2, 5, 32);
  EXPECT_THROW(score_shapes_clip(clip_frames(c.videos, 0), json::object()), UsageError);
  auto frames = clip_frames(c.videos, 0);
  frames.pop_back();
  EXPECT_THROW(score_shapes_clip(frames, c.metas[0]), UsageError);
  EXPECT_THROW(shapes_video_metrics(c.videos, {c.metas[0]}), UsageError);
  EXPECT_THROW(shapes_video_metrics(c.videos[0], c.metas), UsageError);
}

}  // namespace
}  // namespace genvis::eval
