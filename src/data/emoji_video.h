// `emoji-video`: one Noto Color Emoji glyph in motion over T frames, captioned from its CLDR name.
//
//   genvis::data::EmojiVideo clips({.resolution = 32, .num_frames = 9});
//   genvis::data::VideoSample c = clips.get(0);   // "grinning face sliding to the left"
//   c.meta["motion"]["label"];                    // "move left"
//
// Subjects: the emoji of the image dataset's training split (its held-out skin-tone variants are
// never used), so every glyph is one the image model may know.
// Motions (labels): "move left|right|up|down" (the glyph, half the frame wide, travels 0.4 of
// the side), "zoom in|out" (0.35 <-> 0.8 of the side, centred), "rotate clockwise|
// counterclockwise" (90 degrees, half the frame wide), "blink" (alternating with a related emoji:
// the nearest entry of the same CLDR subgroup with another base name, switching every
// max(1, T / 4) frames; emoji whose subgroup has no other base cannot blink).
// Captions: "<name> moving|sliding to the left", "<name> moving up", "<name> zooming in|growing",
// "<name> zooming out|shrinking", "<name> rotating|spinning clockwise", "<name> alternating with
// <other name>".
// Held-out subject x motion pairs: the k-th subject (training-split order) holds out motion
// kEmojiMotions[k % 9] (the next one when it cannot blink). Split::Train never yields a subject
// with its held-out motion, Split::HeldOut only that; every subject and every motion is in
// Train. Split::All draws freely.
// Rendering: the glyph is rendered once per clip (EmojiDataset, on the background, at 0.8 of the
// side) and each frame places it by an exact similarity transform (scale, rotation about its
// centre, translation), 3x3 supersampled with bilinear taps; uncovered pixels are background.
// Meta: {"dataset": "emoji_video", "index", "split", "resolution", "num_frames", "emoji", "name",
//        "subgroup", "motion": {"type", "label", "direction"?, "partner"?, "heldout"},
//        "frames": [{"x", "y" (centre, pixels), "scale" (side, pixels), "rotation" (degrees
//        counterclockwise), "showing" (name)}]}
#pragma once
#include "data/emoji.h"
#include "data/video_dataset.h"

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace genvis::data {

inline constexpr std::array<const char*, 9> kEmojiMotions = {
    "move left", "move right", "move up", "move down", "zoom in", "zoom out", "rotate clockwise",
    "rotate counterclockwise", "blink"};

struct EmojiVideoOptions {
  int resolution = 64;  // 16..512
  int num_frames = 8;   // 1..256 (1: the clip's first frame, an image)
  Split split = Split::Train;
  size_t size = 10000;  // >= 1
  uint64_t seed = 0;
  std::array<uint8_t, 3> background = {255, 255, 255};  // sRGB
  std::string font_path = kDefaultEmojiFont;
  std::string test_file_path = kDefaultEmojiTestFile;
};

class EmojiVideo : public VideoDataset {
public:
  explicit EmojiVideo(EmojiVideoOptions options = {});  // UsageError for bad options; LoadError without the packages
  ~EmojiVideo() override;
  std::string name() const override { return "emoji-video"; }
  size_t size() const override { return options_.size; }
  int num_frames() const override { return options_.num_frames; }
  VideoSample get(size_t index) const override;
  const EmojiVideoOptions& options() const { return options_; }

  // Subjects (the image training split's entries), each one's held-out motion and blink partner.
  size_t num_subjects() const;
  const EmojiEntry& subject(size_t k) const;
  const std::string& held_out_motion(size_t k) const;
  std::optional<size_t> blink_partner(size_t k) const;

private:
  EmojiVideoOptions options_;
  std::unique_ptr<EmojiDataset> glyphs_;  // Split::Train at 0.8 of the resolution
  std::vector<std::string> held_out_;
  std::vector<std::optional<size_t>> partner_;
};

}  // namespace genvis::data
