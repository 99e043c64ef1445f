#include "data/emoji_video.h"

#include "core/error.h"
#include "data/splitmix.h"

#include <algorithm>
#include <cmath>

namespace genvis::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

// One frame's placement of the glyph square, in units of the frame side.
struct Placement {
  double cx = 0.5, cy = 0.5, side = 0.5, degrees = 0;  // degrees counterclockwise
  bool partner = false;                                // blink: the other emoji shows
};

double sample(const io::Image& src, double x, double y, int c, double background) {
  // Bilinear at continuous pixel coordinates (pixel centres at +0.5); outside: background.
  const double fx = x - 0.5, fy = y - 0.5;
  const int x0 = static_cast<int>(std::floor(fx)), y0 = static_cast<int>(std::floor(fy));
  const double ax = fx - x0, ay = fy - y0;
  double v = 0;
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx) {
      const int sx = x0 + dx, sy = y0 + dy;
      const double w = (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay);
      const bool inside = sx >= 0 && sy >= 0 && sx < src.width && sy < src.height;
      v += w * (inside ? src.at(sx, sy, c) : background);
    }
  return v;
}

// The glyph image `src` (a square on the background) placed on a resolution^2 frame.
io::Image place_glyph(const io::Image& src, const Placement& p, int resolution, const std::array<uint8_t, 3>& bg) {
  io::Image out = io::Image::blank(resolution, resolution, 3);
  const double r = resolution, side = p.side * r, cx = p.cx * r, cy = p.cy * r;
  const double a = p.degrees * kPi / 180, ca = std::cos(a), sa = std::sin(a);
  const double to_src = src.width / side;
  constexpr int kSub = 3;
  for (int y = 0; y < resolution; ++y)
    for (int x = 0; x < resolution; ++x) {
      double acc[3] = {0, 0, 0};
      for (int sy = 0; sy < kSub; ++sy)
        for (int sx = 0; sx < kSub; ++sx) {
          // Frame point relative to the centre, rotated back (y points down: counterclockwise
          // on screen is a negative angle in these coordinates), into source pixels.
          const double px = x + (sx + 0.5) / kSub - cx, py = y + (sy + 0.5) / kSub - cy;
          const double u = ca * px - sa * py, v = sa * px + ca * py;
          const double qx = u * to_src + src.width / 2.0, qy = v * to_src + src.height / 2.0;
          for (int c = 0; c < 3; ++c) acc[c] += sample(src, qx, qy, c, bg[c]);
        }
      for (int c = 0; c < 3; ++c)
        out.at(x, y, c) = static_cast<uint16_t>(std::clamp(std::lround(acc[c] / (kSub * kSub)), 0L, 255L));
    }
  return out;
}

}  // namespace

EmojiVideo::EmojiVideo(EmojiVideoOptions options) : options_(std::move(options)) {
  if (options_.resolution < 16 || options_.resolution > 512)
    throw UsageError("emoji video: resolution must be 16..512, got " + std::to_string(options_.resolution));
  if (options_.num_frames < 1 || options_.num_frames > 256)
    throw UsageError("emoji video: num_frames must be 1..256, got " + std::to_string(options_.num_frames));
  if (options_.size == 0) throw UsageError("emoji video: size must be >= 1");
  if (options_.split != Split::Train && options_.split != Split::HeldOut && options_.split != Split::All)
    throw UsageError("emoji video: invalid split");
  EmojiOptions glyphs;
  glyphs.resolution = std::max(8, static_cast<int>(std::ceil(0.8 * options_.resolution)));
  glyphs.background = options_.background;
  glyphs.split = Split::Train;
  glyphs.font_path = options_.font_path;
  glyphs.test_file_path = options_.test_file_path;
  glyphs_ = std::make_unique<EmojiDataset>(glyphs);
  const size_t n = glyphs_->size();
  partner_.resize(n);
  held_out_.resize(n);
  for (size_t k = 0; k < n; ++k) {
    const EmojiEntry& e = glyphs_->entry(k);
    // The nearest entry (in file order) of the same subgroup with another base name.
    for (size_t d = 1; d < n && !partner_[k]; ++d)
      for (const long j : {static_cast<long>(k) + static_cast<long>(d), static_cast<long>(k) - static_cast<long>(d)}) {
        if (j < 0 || j >= static_cast<long>(n)) continue;
        const EmojiEntry& o = glyphs_->entry(static_cast<size_t>(j));
        if (o.subgroup == e.subgroup && o.base_name != e.base_name) {
          partner_[k] = static_cast<size_t>(j);
          break;
        }
      }
    std::string motion = kEmojiMotions[k % kEmojiMotions.size()];
    if (motion == "blink" && !partner_[k]) motion = kEmojiMotions[(k + 1) % kEmojiMotions.size()];
    held_out_[k] = motion;
  }
}

EmojiVideo::~EmojiVideo() = default;

size_t EmojiVideo::num_subjects() const { return glyphs_->size(); }
const EmojiEntry& EmojiVideo::subject(size_t k) const { return glyphs_->entry(k); }
const std::string& EmojiVideo::held_out_motion(size_t k) const { return held_out_.at(k); }
std::optional<size_t> EmojiVideo::blink_partner(size_t k) const { return partner_.at(k); }

VideoSample EmojiVideo::get(size_t index) const {
  if (index >= options_.size)
    throw UsageError("emoji video: index " + std::to_string(index) + " out of range (size " +
                     std::to_string(options_.size) + ")");
  const Split split = options_.split;
  SplitMix rng(options_.seed, static_cast<uint64_t>(split) + 0x200, index);
  const int n = static_cast<int>(glyphs_->size());
  size_t k = 0;
  std::string label;
  for (;;) {
    k = static_cast<size_t>(rng.below(n));
    label = split == Split::HeldOut ? held_out_[k] : kEmojiMotions[static_cast<size_t>(rng.below(9))];
    if (label == "blink" && !partner_[k]) continue;
    if (split == Split::Train && label == held_out_[k]) continue;
    break;
  }
  const EmojiEntry& e = glyphs_->entry(k);
  const auto space = label.find(' ');
  const std::string type = label.substr(0, space), direction = space == std::string::npos ? "" : label.substr(space + 1);

  // Motion and caption.
  nlohmann::json motion = {{"type", type}, {"label", label}, {"heldout", label == held_out_[k]}};
  if (!direction.empty()) motion["direction"] = direction;
  std::string caption = e.name;
  Placement from, to;
  if (type == "move") {
    const bool horizontal = direction == "left" || direction == "right";
    const double start = rng.range(0.28, 0.32), across = rng.range(0.45, 0.55);
    const double a = direction == "right" || direction == "down" ? start : 1 - start;
    const double b = direction == "right" || direction == "down" ? a + 0.4 : a - 0.4;
    from.cx = horizontal ? a : across, from.cy = horizontal ? across : a;
    to.cx = horizontal ? b : across, to.cy = horizontal ? across : b;
    caption += std::string(rng.chance(0.5) ? " moving " : " sliding ") + (horizontal ? "to the " + direction : direction);
  } else if (type == "zoom") {
    from.side = direction == "in" ? 0.35 : 0.8;
    to.side = direction == "in" ? 0.8 : 0.35;
    caption += rng.chance(0.5) ? " zooming " + direction : (direction == "in" ? " growing" : " shrinking");
  } else if (type == "rotate") {
    to.degrees = direction == "clockwise" ? -90 : 90;
    caption += std::string(rng.chance(0.5) ? " rotating " : " spinning ") + direction;
  } else {  // blink
    const EmojiEntry& other = glyphs_->entry(*partner_[k]);
    motion["partner"] = other.name;
    caption += " alternating with " + other.name;
  }

  // Frames.
  const Sample glyph = glyphs_->get(k);
  std::optional<Sample> other;
  if (type == "blink") other = glyphs_->get(*partner_[k]);
  const int T = options_.num_frames, period = std::max(1, T / 4);
  VideoSample clip;
  clip.caption = caption;
  clip.meta = {{"dataset", "emoji_video"}, {"index", index},      {"split", split_name(split)},
               {"resolution", options_.resolution}, {"num_frames", T}, {"emoji", e.emoji},
               {"name", e.name},         {"subgroup", e.subgroup}, {"motion", motion},
               {"frames", nlohmann::json::array()}};
  for (int t = 0; t < T; ++t) {
    const double f = T > 1 ? static_cast<double>(t) / (T - 1) : 0.0;  // 1 frame: the clip's first (an image)
    Placement p;
    p.cx = from.cx + (to.cx - from.cx) * f;
    p.cy = from.cy + (to.cy - from.cy) * f;
    p.side = from.side + (to.side - from.side) * f;
    p.degrees = from.degrees + (to.degrees - from.degrees) * f;
    p.partner = other && (t / period) % 2 == 1;
    clip.frames.push_back(place_glyph(p.partner ? other->image : glyph.image, p, options_.resolution, options_.background));
    const double r = options_.resolution;
    clip.meta["frames"].push_back({{"x", p.cx * r},
                                   {"y", p.cy * r},
                                   {"scale", p.side * r},
                                   {"rotation", p.degrees},
                                   {"showing", p.partner ? other->caption : e.name}});
  }
  return clip;
}

}  // namespace genvis::data
