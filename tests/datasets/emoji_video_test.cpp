// The emoji-video dataset: held-out subject x motion pairs, motions visible in the pixels (the
// glyph's centroid travels, its area grows or shrinks, a quarter turn is a 90-degree rotation of
// the first frame), blinking between two related emoji, determinism.
#include "data/emoji_video.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

namespace genvis::data {
namespace {

#define REQUIRE_EMOJI_VIDEO_PACKAGES()                                                                        \
  if (!std::filesystem::exists(kDefaultEmojiTestFile) || !std::filesystem::exists(kDefaultEmojiFont)) \
  GTEST_SKIP() << "needs the Debian packages unicode-data and fonts-noto-color-emoji"

// Pixels that differ from the white background by more than a faint edge.
struct Blob {
  double x = 0, y = 0, area = 0;
};
Blob blob(const io::Image& f) {
  Blob b;
  for (int y = 0; y < f.height; ++y)
    for (int x = 0; x < f.width; ++x) {
      int d = 0;
      for (int c = 0; c < 3; ++c) d += 255 - f.at(x, y, c);
      if (d < 60) continue;
      b.x += x + 0.5, b.y += y + 0.5, b.area += 1;
    }
  if (b.area > 0) b.x /= b.area, b.y /= b.area;
  return b;
}

TEST(EmojiVideo, BadOptionsAreUsageErrors) {
  EXPECT_THROW(EmojiVideo({.resolution = 8}), UsageError);
  EXPECT_THROW(EmojiVideo({.num_frames = 0}), UsageError);
  EXPECT_THROW(EmojiVideo({.num_frames = 257}), UsageError);
  EXPECT_THROW(EmojiVideo({.size = 0}), UsageError);
}

TEST(EmojiVideo, HeldOutSubjectMotionPairsStayOutOfTraining) {
  REQUIRE_EMOJI_VIDEO_PACKAGES();
  const size_t n = 600;
  EmojiVideo train({.resolution = 16, .num_frames = 2, .size = n});
  EmojiVideo held({.resolution = 16, .num_frames = 2, .split = Split::HeldOut, .size = n});
  // Every subject's held-out motion is a motion it can do; partners share the subgroup.
  std::map<std::string, size_t> held_per_motion;
  for (size_t k = 0; k < train.num_subjects(); ++k) {
    const std::string& m = train.held_out_motion(k);
    ++held_per_motion[m];
    if (const auto p = train.blink_partner(k)) {
      EXPECT_EQ(train.subject(*p).subgroup, train.subject(k).subgroup);
      EXPECT_NE(train.subject(*p).base_name, train.subject(k).base_name);
    } else {
      EXPECT_NE(m, "blink") << train.subject(k).name;
    }
    EXPECT_FALSE(train.subject(k).held_out);  // the image split's held-out emoji are never subjects
  }
  EXPECT_EQ(held_per_motion.size(), kEmojiMotions.size());
  std::set<std::string> train_motions, held_motions;
  std::set<std::string> train_subjects;
  for (size_t i = 0; i < n; ++i) {
    const VideoSample t = train.get(i);
    EXPECT_FALSE(t.meta["motion"]["heldout"].get<bool>()) << t.caption;
    train_motions.insert(t.meta["motion"]["label"].get<std::string>());
    train_subjects.insert(t.meta["name"].get<std::string>());
    EXPECT_EQ(t.caption.rfind(t.meta["name"].get<std::string>(), 0), 0u) << t.caption;  // starts with the name
    const VideoSample h = held.get(i);
    EXPECT_TRUE(h.meta["motion"]["heldout"].get<bool>()) << h.caption;
    held_motions.insert(h.meta["motion"]["label"].get<std::string>());
  }
  EXPECT_EQ(train_motions.size(), kEmojiMotions.size());
  EXPECT_EQ(held_motions.size(), kEmojiMotions.size());
  EXPECT_GT(train_subjects.size(), n / 2);  // subjects drawn over the whole catalogue
}

TEST(EmojiVideo, MotionsAreVisibleInThePixels) {
  REQUIRE_EMOJI_VIDEO_PACKAGES();
  const int res = 48, frames = 5;
  EmojiVideo clips({.resolution = res, .num_frames = frames, .split = Split::All, .size = 300, .seed = 2});
  std::set<std::string> seen;
  for (size_t i = 0; i < 300 && seen.size() < kEmojiMotions.size(); ++i) {
    const VideoSample c = clips.get(i);
    ASSERT_EQ(c.frames.size(), static_cast<size_t>(frames));
    for (const auto& f : c.frames) ASSERT_EQ(f.width, res);
    const std::string label = c.meta["motion"]["label"], type = c.meta["motion"]["type"];
    const Blob first = blob(c.frames.front()), last = blob(c.frames.back());
    if (first.area < 60) continue;  // a faint glyph (e.g. a white one) says little
    seen.insert(label);
    if (type == "move") {
      const std::string dir = c.meta["motion"]["direction"];
      EXPECT_NE(c.caption.find(dir), std::string::npos) << c.caption;
      const double dx = last.x - first.x, dy = last.y - first.y;
      const double along = dir == "right" ? dx : dir == "left" ? -dx : dir == "down" ? dy : -dy;
      const double across = dir == "right" || dir == "left" ? dy : dx;
      EXPECT_NEAR(along, 0.4 * res, 2.0) << c.caption;
      EXPECT_NEAR(across, 0, 2.0) << c.caption;
    } else if (type == "zoom") {
      const double ratio = last.area / first.area;
      if (label == "zoom in") EXPECT_GT(ratio, 3.0) << c.caption;
      else EXPECT_LT(ratio, 1 / 3.0) << c.caption;
      EXPECT_NEAR(last.x, first.x, 2.0) << c.caption;
    } else if (type == "rotate") {
      // A quarter turn about the frame's centre: the last frame is the first rotated by 90
      // degrees (counterclockwise on screen: (x, y) -> (y, W-1-x)).
      const bool ccw = label == "rotate counterclockwise";
      double diff = 0;
      for (int y = 0; y < res; ++y)
        for (int x = 0; x < res; ++x)
          for (int ch = 0; ch < 3; ++ch) {
            const int sx = ccw ? res - 1 - y : y, sy = ccw ? x : res - 1 - x;
            diff += std::abs(c.frames.back().at(x, y, ch) - c.frames.front().at(sx, sy, ch));
          }
      EXPECT_LT(diff / (res * res * 3), 0.5) << c.caption;
    } else {
      ASSERT_EQ(type, "blink");
      EXPECT_NE(c.caption.find(" alternating with " + c.meta["motion"]["partner"].get<std::string>()),
                std::string::npos);
      // frames / 4 = 1 frame per showing: A B A B A.
      EXPECT_EQ(c.frames[0].pixels, c.frames[2].pixels) << c.caption;
      EXPECT_EQ(c.frames[1].pixels, c.frames[3].pixels) << c.caption;
      EXPECT_NE(c.frames[0].pixels, c.frames[1].pixels) << c.caption;
      EXPECT_EQ(c.meta["frames"][1]["showing"], c.meta["motion"]["partner"]);
    }
  }
  EXPECT_EQ(seen.size(), kEmojiMotions.size());
  // Deterministic, and independent of other calls.
  EXPECT_EQ(clips.get(7).frames[3].pixels, EmojiVideo({.resolution = res, .num_frames = frames, .split = Split::All,
                                                       .size = 300, .seed = 2})
                                               .get(7)
                                               .frames[3]
                                               .pixels);
  EXPECT_THROW(clips.get(300), UsageError);
}

}  // namespace
}  // namespace genvis::data
