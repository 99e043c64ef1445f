// The shapes scorer: colour segmentation of a generated image and shape classification by the
// renderer's own templates, checked against the caption's scene (colour, shape, size, position,
// relations).
#include "core/error.h"
#include "data/shapes.h"
#include "data/shapes_geometry.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

namespace genvis::data {

namespace {

using namespace shapes_geometry;

// Per-shape constants measured on a fine grid: area and centroid (unit radius, v up).
struct TemplateStats {
  std::array<double, kNumShapeKinds> area{}, cu{}, cv{};
};

const TemplateStats& template_stats() {
  static const TemplateStats stats = [] {
    TemplateStats s;
    const int n = 480;
    const double step = 2.4 / n;
    for (int k = 0; k < kNumShapeKinds; ++k) {
      double area = 0, su = 0, sv = 0;
      for (int j = 0; j < n; ++j) {
        for (int i = 0; i < n; ++i) {
          double u = -1.2 + (i + 0.5) * step, v = -1.2 + (j + 0.5) * step;
          if (!inside_unit(static_cast<ShapeKind>(k), u, v)) continue;
          area += step * step, su += u * step * step, sv += v * step * step;
        }
      }
      s.area[k] = area, s.cu[k] = su / area, s.cv[k] = sv / area;
    }
    return s;
  }();
  return stats;
}

struct Blob {
  int colour;
  std::vector<int> pixels;  // y * width + x
  double cx = 0, cy = 0;    // centroid of pixel centres
  PixelBox box{};
};

struct Fit {
  ShapeKind kind = ShapeKind::Circle;
  double iou = 0, x = 0, y = 0, radius = 0;
};

Rgb pixel_rgb(const io::Image& img, int x, int y) {
  return {double(img.at(x, y, 0)), double(img.at(x, y, 1)), double(img.at(x, y, 2))};
}

// Coverage of `fg` over `bg` explaining `p`; 0 for colours far off the bg-fg segment.
double alpha_between(const Rgb& p, const Rgb& bg, const Rgb& fg) {
  double dd = 0, dot = 0;
  for (int c = 0; c < 3; ++c)
    dd += (fg[c] - bg[c]) * (fg[c] - bg[c]), dot += (p[c] - bg[c]) * (fg[c] - bg[c]);
  if (dd < 1) return 0;
  double a = std::clamp(dot / dd, 0.0, 1.0);
  double off = 0;
  for (int c = 0; c < 3; ++c) {
    double e = p[c] - (bg[c] + a * (fg[c] - bg[c]));
    off += e * e;
  }
  return off > 0.35 * 0.35 * dd ? 0.0 : a;
}

// `rotation`: the scene's rotation of the object in degrees, counter-clockwise (0 for images; a
// rotating clip's frames turn the templates with the object).
Fit fit_shape(const io::Image& img, const Blob& blob, const std::vector<int>& owner, int blob_id,
              const Rgb& bg, double rotation) {
  const int w = img.width, h = img.height;
  // 1. Object colour: mean of pixels whose 8 neighbours are all in the blob.
  Rgb fg = rgb_of(blob.colour), sum{0, 0, 0};
  int interior = 0;
  for (int p : blob.pixels) {
    int x = p % w, y = p / w;
    bool inner = x > 0 && y > 0 && x < w - 1 && y < h - 1;
    for (int dy = -1; dy <= 1 && inner; ++dy)
      for (int dx = -1; dx <= 1 && inner; ++dx) inner = owner[(y + dy) * w + x + dx] == blob_id;
    if (!inner) continue;
    Rgb c = pixel_rgb(img, x, y);
    for (int k = 0; k < 3; ++k) sum[k] += c[k];
    ++interior;
  }
  if (interior > 0)
    for (int k = 0; k < 3; ++k) fg[k] = sum[k] / interior;

  // 2. Soft mask over the blob and its 1-pixel rim.
  PixelBox win{std::max(0, blob.box.x0 - 2), std::max(0, blob.box.y0 - 2),
               std::min(w, blob.box.x1 + 2), std::min(h, blob.box.y1 + 2)};
  const int ww = win.x1 - win.x0, wh = win.y1 - win.y0;
  std::vector<double> mask(static_cast<size_t>(ww * wh), 0.0);
  double mass = 0, mx = 0, my = 0;
  for (int y = win.y0; y < win.y1; ++y) {
    for (int x = win.x0; x < win.x1; ++x) {
      bool near = false;
      for (int dy = -1; dy <= 1 && !near; ++dy)
        for (int dx = -1; dx <= 1 && !near; ++dx) {
          int xx = x + dx, yy = y + dy;
          near = xx >= 0 && yy >= 0 && xx < w && yy < h && owner[yy * w + xx] == blob_id;
        }
      if (!near) continue;
      double a = alpha_between(pixel_rgb(img, x, y), bg, fg);
      mask[static_cast<size_t>((y - win.y0) * ww + (x - win.x0))] = a;
      mass += a, mx += a * (x + 0.5), my += a * (y + 0.5);
    }
  }
  Fit best;
  if (mass <= 0) return best;
  mx /= mass, my /= mass;

  // 3. Every template at the blob's centroid and area; best soft IoU wins.
  const TemplateStats& st = template_stats();
  best.iou = -1;
  for (int k = 0; k < kNumShapeKinds; ++k) {
    double r = std::sqrt(mass / st.area[k]);
    // The template's centroid (cu, cv), turned with it, on the blob's centroid.
    const double t = rotation * std::numbers::pi / 180, c = std::cos(t), sn = std::sin(t);
    const double uc = st.cu[k] * c - st.cv[k] * sn, vc = st.cu[k] * sn + st.cv[k] * c;
    Placed s{static_cast<ShapeKind>(k), mx - uc * r, my + vc * r, r, c, sn};
    PixelBox tb = box_of(s, w, h);
    PixelBox u{std::min(tb.x0, win.x0), std::min(tb.y0, win.y0), std::max(tb.x1, win.x1),
               std::max(tb.y1, win.y1)};
    double inter = 0, uni = 0;
    for (int y = u.y0; y < u.y1; ++y) {
      for (int x = u.x0; x < u.x1; ++x) {
        double m = (x >= win.x0 && x < win.x1 && y >= win.y0 && y < win.y1)
                       ? mask[static_cast<size_t>((y - win.y0) * ww + (x - win.x0))]
                       : 0.0;
        double t = (x >= tb.x0 && x < tb.x1 && y >= tb.y0 && y < tb.y1) ? coverage(s, x, y) : 0.0;
        inter += std::min(m, t), uni += std::max(m, t);
      }
    }
    double iou = uni > 0 ? inter / uni : 0;
    if (iou > best.iou) best = {s.kind, iou, s.cx, s.cy, r};
  }
  return best;
}

bool area_holds(const std::string& area, double x, double y) {  // fractions of the side
  if (area == "left") return x < 0.4;
  if (area == "right") return x > 0.6;
  if (area == "top") return y < 0.4;
  if (area == "bottom") return y > 0.6;
  return std::abs(x - 0.5) < 0.15 && std::abs(y - 0.5) < 0.15;
}

bool relation_holds(const std::string& rel, const ShapesObjectScore& a,
                    const ShapesObjectScore& b) {
  if (!a.found || !b.found) return false;
  double dx = b.x - a.x, dy = b.y - a.y;  // from subject to object
  if (rel == "left of") return dx > 0 && std::abs(dx) > std::abs(dy);
  if (rel == "right of") return dx < 0 && std::abs(dx) > std::abs(dy);
  if (rel == "above") return dy > 0 && std::abs(dy) > std::abs(dx);
  if (rel == "below") return dy < 0 && std::abs(dy) > std::abs(dx);
  if (rel == "left to right") return dx > 0;
  throw UsageError("shapes scorer: unknown relation '" + rel + "'");
}

}  // namespace

bool ShapesScore::all_correct() const {
  if (background_in_caption && !background) return false;
  for (const ShapesObjectScore& o : objects)
    if (!o.colour || !o.shape || !o.area || (o.size_in_caption && !o.size)) return false;
  for (bool r : relations)
    if (!r) return false;
  return true;
}

nlohmann::json ShapesScore::to_json() const {
  nlohmann::json objs = nlohmann::json::array();
  for (const ShapesObjectScore& o : objects)
    objs.push_back({{"found", o.found},
                    {"colour", o.colour},
                    {"shape", o.shape},
                    {"size", o.size},
                    {"position", o.position},
                    {"area", o.area},
                    {"detected_shape", o.detected_shape},
                    {"iou", o.iou},
                    {"x", o.x},
                    {"y", o.y},
                    {"radius", o.radius}});
  return {{"background", background},
          {"objects", objs},
          {"relations", relations},
          {"all_correct", all_correct()}};
}

ShapesScore score_shapes(const io::Image& image_in, const nlohmann::json& scene) {
  if (image_in.empty() || image_in.width < 4 || image_in.height < 4)
    throw UsageError("shapes scorer: empty image");
  if (!scene.is_object() || !scene.contains("objects") || !scene["objects"].is_array() ||
      !scene.contains("resolution"))
    throw UsageError("shapes scorer: scene JSON needs 'resolution' and 'objects'");
  const io::Image img = image_in.to_8bit().with_channels(3);
  const int w = img.width, h = img.height;
  const double res = scene["resolution"].get<double>();
  const double sx = w / res, sy = h / res, sr = std::sqrt(sx * sy);

  // 1. Nearest named colour per pixel; background = majority on the border.
  std::vector<int> label(static_cast<size_t>(w * h));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      label[static_cast<size_t>(y * w + x)] = nearest_colour(pixel_rgb(img, x, y));
  std::array<int, kShapeColours.size()> votes{};
  std::array<Rgb, kShapeColours.size()> vote_rgb{};
  auto vote = [&](int x, int y) {
    int l = label[static_cast<size_t>(y * w + x)];
    ++votes[static_cast<size_t>(l)];
    Rgb c = pixel_rgb(img, x, y);
    for (int k = 0; k < 3; ++k) vote_rgb[static_cast<size_t>(l)][k] += c[k];
  };
  for (int x = 0; x < w; ++x) vote(x, 0), vote(x, h - 1);
  for (int y = 1; y < h - 1; ++y) vote(0, y), vote(w - 1, y);
  int bg_label = static_cast<int>(std::max_element(votes.begin(), votes.end()) - votes.begin());
  Rgb bg = vote_rgb[static_cast<size_t>(bg_label)];
  for (double& c : bg) c /= votes[static_cast<size_t>(bg_label)];

  ShapesScore score;
  if (scene.contains("background")) {
    score.background = scene["background"].value("colour", "") ==
                       kShapeColours[static_cast<size_t>(bg_label)].name;
    score.background_in_caption = scene["background"].value("in_caption", false);
  } else {
    score.background = true;
  }

  // 2. 8-connected blobs of each non-background colour.
  std::vector<int> owner(static_cast<size_t>(w * h), -1);
  std::vector<Blob> blobs;
  std::vector<int> stack;
  for (int start = 0; start < w * h; ++start) {
    if (owner[static_cast<size_t>(start)] >= 0 || label[static_cast<size_t>(start)] == bg_label)
      continue;
    const int id = static_cast<int>(blobs.size());
    Blob b;
    b.colour = label[static_cast<size_t>(start)];
    b.box = {w, h, 0, 0};
    owner[static_cast<size_t>(start)] = id;
    stack = {start};
    while (!stack.empty()) {
      int p = stack.back();
      stack.pop_back();
      int x = p % w, y = p / w;
      b.pixels.push_back(p);
      b.cx += x + 0.5, b.cy += y + 0.5;
      b.box = {std::min(b.box.x0, x), std::min(b.box.y0, y), std::max(b.box.x1, x + 1),
               std::max(b.box.y1, y + 1)};
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          int xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
          size_t q = static_cast<size_t>(yy * w + xx);
          if (owner[q] >= 0 || label[q] != b.colour) continue;
          owner[q] = id;
          stack.push_back(static_cast<int>(q));
        }
    }
    b.cx /= static_cast<double>(b.pixels.size());
    b.cy /= static_cast<double>(b.pixels.size());
    blobs.push_back(std::move(b));
  }

  // 3. Each object: nearest blob of its colour, then shape, size and place.
  const double min_area =
      std::max(3.0, 0.2 * template_stats().area[0] * std::pow(kSmallRadius * w, 2));
  std::vector<bool> used(blobs.size(), false);
  for (const nlohmann::json& obj : scene["objects"]) {
    ShapesObjectScore os;
    const int colour = parse_colour(obj.at("colour").get<std::string>());
    const ShapeKind shape = parse_shape(obj.at("shape").get<std::string>());
    const double ex = obj.at("x").get<double>() * sx, ey = obj.at("y").get<double>() * sy;
    os.size_in_caption = obj.value("size_in_caption", false);
    int pick = -1;
    double pick_d = 1e300;
    for (size_t i = 0; i < blobs.size(); ++i) {
      if (used[i] || blobs[i].colour != colour || blobs[i].pixels.size() < min_area) continue;
      double d = std::hypot(blobs[i].cx - ex, blobs[i].cy - ey);
      if (d < pick_d) pick_d = d, pick = static_cast<int>(i);
    }
    if (pick >= 0) {
      used[static_cast<size_t>(pick)] = true;
      Fit fit = fit_shape(img, blobs[static_cast<size_t>(pick)], owner, pick, bg, obj.value("rotation", 0.0));
      os.found = os.colour = true;
      os.detected_shape = shape_name(fit.kind);
      os.shape = fit.kind == shape;
      os.iou = fit.iou;
      os.x = fit.x, os.y = fit.y, os.radius = fit.radius;
      bool large = fit.radius / sr / res > (kSmallRadius + kLargeRadius) / 2;
      os.size = large == (obj.value("size", "small") == "large");
      os.position = std::hypot(os.x - ex, os.y - ey) <= kPositionTolerance * std::min(w, h);
      os.area = !(obj.contains("area") && obj["area"].is_string()) ||
                area_holds(obj["area"].get<std::string>(), os.x / w, os.y / h);
    }
    score.objects.push_back(os);
  }
  if (scene.contains("relations")) {
    for (const nlohmann::json& r : scene["relations"]) {
      size_t a = r.at("subject").get<size_t>(), b = r.at("object").get<size_t>();
      if (a >= score.objects.size() || b >= score.objects.size())
        throw UsageError("shapes scorer: relation names a missing object");
      score.relations.push_back(
          relation_holds(r.at("relation").get<std::string>(), score.objects[a], score.objects[b]));
    }
  }
  return score;
}

}  // namespace genvis::data
