#include "eval/video_metrics.h"

#include "core/error.h"
#include "data/shapes.h"
#include "eval/frechet_distance.h"
#include "models/video_classifier/video_classifier.h"
#include "io/image_tensor.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace genvis::eval {
namespace {

constexpr double kPi = 3.14159265358979323846;

// The object's pixels: farther than a quarter of the range from the border's median colour.
struct Silhouette {
  int width = 0, height = 0;
  std::vector<uint8_t> mask;
  double cx = 0, cy = 0, area = 0;  // pixel centres, y down
  bool inside(int x, int y) const {
    return x >= 0 && y >= 0 && x < width && y < height && mask[static_cast<size_t>(y * width + x)] != 0;
  }
};

Silhouette silhouette(const io::Image& image_in) {
  const io::Image img = image_in.to_8bit().with_channels(3);
  Silhouette s;
  s.width = img.width, s.height = img.height;
  s.mask.assign(static_cast<size_t>(img.width * img.height), 0);
  std::array<int, 3> bg{};
  for (int c = 0; c < 3; ++c) {
    std::vector<int> border;
    for (int x = 0; x < img.width; ++x) border.push_back(img.at(x, 0, c)), border.push_back(img.at(x, img.height - 1, c));
    for (int y = 1; y + 1 < img.height; ++y) border.push_back(img.at(0, y, c)), border.push_back(img.at(img.width - 1, y, c));
    std::nth_element(border.begin(), border.begin() + static_cast<std::ptrdiff_t>(border.size() / 2), border.end());
    bg[static_cast<size_t>(c)] = border[border.size() / 2];
  }
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      int d = 0;
      for (int c = 0; c < 3; ++c) d = std::max(d, std::abs(img.at(x, y, c) - bg[static_cast<size_t>(c)]));
      if (d * 4 > 255) {
        s.mask[static_cast<size_t>(y * img.width + x)] = 1;
        s.cx += x + 0.5, s.cy += y + 0.5, s.area += 1;
      }
    }
  if (s.area > 0) s.cx /= s.area, s.cy /= s.area;
  return s;
}

}  // namespace

nlohmann::json ShapesClipScore::to_json() const {
  return {{"motion_type", motion_type}, {"heldout", heldout},  {"colour_shape", colour_shape},
          {"first_colour_shape", first_colour_shape}, {"motion", motion}, {"dx", dx}, {"dy", dy},
          {"degrees", degrees}, {"radius_ratio", radius_ratio}};
}

namespace {

// The angle in [from, to] (1 degree apart) whose rotation of a's object about its centroid best
// overlaps b's object; ties go to the angle nearest the middle of the range.
double best_rotation(const Silhouette& a, const Silhouette& b, int from, int to) {
  if (a.area < 1 || b.area < 1) return 0;
  const int mid = (from + to) / 2, half = std::max(mid - from, to - mid);
  double best_iou = -1, best = mid;
  for (int k = 0; k <= 2 * half; ++k) {
    const int deg = mid + (k % 2 == 1 ? 1 : -1) * ((k + 1) / 2);
    if (deg < from || deg > to) continue;
    const double t = deg * kPi / 180, c = std::cos(t), s = std::sin(t);
    double overlap = 0;
    for (int y = 0; y < b.height; ++y)
      for (int x = 0; x < b.width; ++x) {
        if (!b.inside(x, y)) continue;
        // b's pixel back through the rotation (counterclockwise on screen by t) into a.
        const double u = x + 0.5 - b.cx, v = y + 0.5 - b.cy;
        const double ua = u * c - v * s, va = u * s + v * c;
        if (a.inside(static_cast<int>(std::floor(a.cx + ua)), static_cast<int>(std::floor(a.cy + va)))) overlap += 1;
      }
    const double iou = overlap / (a.area + b.area - overlap);
    if (iou > best_iou + 1e-12) best_iou = iou, best = deg;
  }
  return best;
}

}  // namespace

double silhouette_rotation(const io::Image& a, const io::Image& b, int max_degrees) {
  return best_rotation(silhouette(a), silhouette(b), -max_degrees, max_degrees);
}

double tracked_rotation(const std::vector<io::Image>& frames, int max_step) {
  if (frames.empty()) return 0;
  const Silhouette first = silhouette(frames.front());
  double angle = 0;
  for (size_t t = 1; t < frames.size(); ++t) {
    const int at = static_cast<int>(std::lround(angle));
    angle = best_rotation(first, silhouette(frames[t]), at - max_step, at + max_step);
  }
  return angle;
}

ShapesClipScore score_shapes_clip(const std::vector<io::Image>& frames, const nlohmann::json& meta) {
  if (!meta.is_object() || !meta.contains("motion") || !meta.contains("frames") || !meta["frames"].is_array())
    throw UsageError("shapes clip scorer: the meta needs 'motion' and 'frames' (a shapes-video clip's)");
  if (frames.size() != meta["frames"].size() || frames.size() < 2)
    throw UsageError("shapes clip scorer: " + std::to_string(frames.size()) + " frames for a clip of " +
                     std::to_string(meta["frames"].size()));
  const nlohmann::json& motion = meta["motion"];
  ShapesClipScore score;
  score.motion_type = motion.value("type", "");
  score.heldout = motion.value("heldout", false);
  std::vector<data::ShapesScore> per_frame;
  double good = 0;
  for (size_t t = 0; t < frames.size(); ++t) {
    per_frame.push_back(data::score_shapes(frames[t], meta["frames"][t]));
    const auto& objects = per_frame.back().objects;
    const bool ok = !objects.empty() && objects[0].colour && objects[0].shape;
    good += ok ? 1 : 0;
    if (t == 0) score.first_colour_shape = ok;
  }
  score.colour_shape = good / static_cast<double>(frames.size());

  const Silhouette first = silhouette(frames.front()), last = silhouette(frames.back());
  if (first.area < 1 || last.area < 1) return score;  // no object to follow
  const double side = std::sqrt(static_cast<double>(first.width) * first.height);
  score.dx = (last.cx - first.cx) / side;
  score.dy = (last.cy - first.cy) / side;
  score.radius_ratio = std::sqrt(last.area / first.area);
  const std::string type = score.motion_type;
  if (type == "move") {
    const std::string dir = motion.value("direction", "");
    const double along = dir == "right" ? score.dx : dir == "left" ? -score.dx : dir == "down" ? score.dy : -score.dy;
    const double across = dir == "right" || dir == "left" ? score.dy : score.dx;
    score.motion = along >= 0.15 && along > std::abs(across);
  } else if (type == "rotate") {
    score.degrees = tracked_rotation(frames);
    const bool ccw = motion.value("direction", "") == "counterclockwise";
    score.motion = (ccw ? score.degrees : -score.degrees) >= 20;
  } else if (type == "colour") {
    const auto& a = per_frame.front().objects, & b = per_frame.back().objects;
    score.motion = !a.empty() && !b.empty() && a[0].colour && b[0].colour;
  } else if (type == "grow") {
    score.motion = score.radius_ratio > 1.15;
  } else if (type == "shrink") {
    score.motion = score.radius_ratio < 1 / 1.15;
  }
  return score;
}

std::vector<io::Image> clip_frames(const at::Tensor& videos, int64_t i) {
  std::vector<io::Image> frames;
  const at::Tensor clip = videos[i].to(at::kFloat);
  for (int64_t t = 0; t < clip.size(1); ++t) frames.push_back(io::tensor_to_image(clip.select(1, t) * 2 - 1));
  return frames;
}

nlohmann::ordered_json shapes_video_metrics(const at::Tensor& videos, const std::vector<nlohmann::json>& metas) {
  if (videos.dim() != 5 || videos.size(1) != 3) throw UsageError("shapes video metrics: clips must be [N,3,T,H,W]");
  if (static_cast<size_t>(videos.size(0)) != metas.size() || metas.empty())
    throw UsageError("shapes video metrics: " + std::to_string(videos.size(0)) + " clips for " +
                     std::to_string(metas.size()) + " metas");
  double motion = 0, colour_shape = 0, first = 0;
  std::map<std::string, std::pair<double, double>> by_type;  // correct, count
  for (size_t i = 0; i < metas.size(); ++i) {
    const ShapesClipScore s = score_shapes_clip(clip_frames(videos, static_cast<int64_t>(i)), metas[i]);
    motion += s.motion, colour_shape += s.colour_shape, first += s.first_colour_shape;
    auto& t = by_type[s.motion_type];
    t.first += s.motion, t.second += 1;
  }
  const double n = static_cast<double>(metas.size());
  nlohmann::ordered_json out = {{"clips", metas.size()},
                                {"shapes_video_motion_accuracy", motion / n},
                                {"shapes_video_colour_shape_accuracy", colour_shape / n},
                                {"shapes_video_first_frame_colour_shape_accuracy", first / n}};
  for (const auto& [type, v] : by_type) out["shapes_video_motion_accuracy_" + type] = v.first / v.second;
  return out;
}

at::Tensor centre_crop(const at::Tensor& videos, int64_t height, int64_t width) {
  if (videos.dim() != 5 || videos.size(1) != 3) throw UsageError("centre_crop: clips must be [N,3,T,H,W]");
  const int64_t h = videos.size(3), w = videos.size(4);
  if (height < 1 || width < 1 || height > h || width > w)
    throw UsageError("centre_crop: a " + std::to_string(height) + "x" + std::to_string(width) + " window does not fit clips of " +
                     std::to_string(h) + "x" + std::to_string(w));
  return videos.narrow(3, (h - height) / 2, height).narrow(4, (w - width) / 2, width);
}

at::Tensor pad_to_square(const at::Tensor& videos) {
  if (videos.dim() != 5 || videos.size(1) != 3) throw UsageError("pad_to_square: clips must be [N,3,T,H,W]");
  const int64_t h = videos.size(3), w = videos.size(4), side = std::max(h, w);
  if (h == w) return videos;
  const at::Tensor border = at::cat({videos.select(3, 0), videos.select(3, h - 1), videos.select(4, 0), videos.select(4, w - 1)}, 3);
  const at::Tensor fill = std::get<0>(border.median(3));  // [N,3,T]
  at::Tensor out = fill.unsqueeze(-1).unsqueeze(-1).expand({videos.size(0), 3, videos.size(2), side, side}).contiguous();
  out.narrow(3, (side - h) / 2, h).narrow(4, (side - w) / 2, w).copy_(videos);
  return out;
}

double mean_frame_change(const at::Tensor& videos) {
  if (videos.dim() != 5 || videos.size(2) < 2) throw UsageError("mean_frame_change: clips must be [N,3,T,H,W], T >= 2");
  const at::Tensor v = videos.to(at::kFloat);
  return (v.narrow(2, 1, v.size(2) - 1) - v.narrow(2, 0, v.size(2) - 1)).abs().mean().item<double>();
}

nlohmann::ordered_json video_encoder_metrics(models::VideoClassifier& encoder, const std::string& name,
                                             const at::Tensor& videos, const std::vector<nlohmann::json>& metas,
                                             const at::Tensor& reference_features) {
  if (videos.dim() != 5 || static_cast<size_t>(videos.size(0)) != metas.size())
    throw UsageError("video_encoder_metrics: expected clips [N,3,T,H,W] with one meta each, got " + c10::str(videos.sizes()) +
                     " and " + std::to_string(metas.size()) + " metas");
  const auto out = encoder.run(videos);
  nlohmann::ordered_json m;
  m["FVD[" + name + "]"] = frechet_distance(gaussian_stats(reference_features), gaussian_stats(out.features));
  const auto& heads = encoder.config().heads;
  std::vector<std::vector<int64_t>> labels;  // per clip, per head
  for (const auto& meta : metas) labels.push_back(encoder.labels_of(meta));
  for (size_t h = 0; h < heads.size(); ++h) {
    const at::Tensor predicted = out.logits[h].argmax(1).contiguous();
    const int64_t* p = predicted.data_ptr<int64_t>();
    int64_t counted = 0, correct = 0;
    for (size_t i = 0; i < metas.size(); ++i) {
      const int64_t label = labels[i][h];
      if (label < 0) continue;
      ++counted;
      correct += p[i] == label;
    }
    if (counted) m[heads[h].name + "_accuracy[" + name + "]"] = static_cast<double>(correct) / static_cast<double>(counted);
  }
  return m;
}

}  // namespace genvis::eval
