#include "data/shapes.h"
#include "data/splitmix.h"
#include "data/shapes_geometry.h"

#include "core/error.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <utility>

namespace genvis::data {

const std::array<NamedColour, 12> kShapeColours = {{
    {"red", {220, 30, 30}},
    {"green", {30, 170, 50}},
    {"blue", {30, 70, 220}},
    {"yellow", {245, 220, 30}},
    {"orange", {245, 140, 20}},
    {"purple", {130, 40, 170}},
    {"pink", {245, 130, 190}},
    {"white", {245, 245, 245}},
    {"black", {20, 20, 20}},
    {"gray", {128, 128, 128}},
    {"brown", {120, 70, 30}},
    {"cyan", {30, 200, 220}},
}};

const std::array<HeldOutPair, 8> kHeldOutPairs = {{
    {"green", ShapeKind::Heart},
    {"purple", ShapeKind::Triangle},
    {"blue", ShapeKind::Ring},
    {"yellow", ShapeKind::Cross},
    {"orange", ShapeKind::Star},
    {"pink", ShapeKind::Square},
    {"cyan", ShapeKind::Circle},
    {"brown", ShapeKind::Diamond},
}};

namespace {

using namespace shapes_geometry;

constexpr std::array<const char*, kNumShapeKinds> kShapeNames = {
    "circle", "square", "triangle", "star", "heart", "ring", "cross", "diamond", "hexagon"};
constexpr std::array<int, 5> kBackgrounds = {7, 8, 9, 2, 3};  // white black gray blue yellow

uint64_t split_tag(Split split) { return static_cast<uint64_t>(split) + 1; }

void check_resolution(int resolution) {
  if (resolution < 16 || resolution > 1024)
    throw UsageError("shapes: resolution must be 16..1024, got " + std::to_string(resolution));
}

// Renders objects with explicit colours (the video blends colours between names).
io::Image render(const Rgb& background, const std::vector<std::pair<ShapeObject, Rgb>>& objects,
                 int resolution) {
  check_resolution(resolution);
  const size_t n = static_cast<size_t>(resolution) * static_cast<size_t>(resolution);
  std::vector<double> buf(n * 3);
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) buf[i * 3 + c] = background[c];
  for (const auto& [object, rgb] : objects) {
    Placed s = place(object, resolution);
    PixelBox b = box_of(s, resolution, resolution);
    for (int y = b.y0; y < b.y1; ++y) {
      for (int x = b.x0; x < b.x1; ++x) {
        double a = coverage(s, x, y);
        if (a <= 0) continue;
        double* p = &buf[(static_cast<size_t>(y) * resolution + x) * 3];
        for (int c = 0; c < 3; ++c) p[c] = p[c] * (1 - a) + rgb[c] * a;
      }
    }
  }
  io::Image image = io::Image::blank(resolution, resolution, 3);
  for (size_t i = 0; i < n * 3; ++i)
    image.pixels[i] = static_cast<uint16_t>(std::clamp(std::lround(buf[i]), 0L, 255L));
  return image;
}

nlohmann::json rgb_json(const Rgb& rgb) {
  return nlohmann::json::array({std::lround(rgb[0]), std::lround(rgb[1]), std::lround(rgb[2])});
}

// ---- captions -----------------------------------------------------------------------------------

std::string with_article(const std::string& phrase) {
  bool vowel = !phrase.empty() && std::string("aeiou").find(phrase[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + phrase;
}

std::string object_phrase(const ShapeObject& o) {
  std::string p;
  if (o.size_in_caption) p += o.large ? "large " : "small ";
  p += kShapeColours[static_cast<size_t>(o.colour)].name;
  p += " ";
  p += shape_name(o.shape);
  return with_article(p);
}

std::string place_phrase(const std::string& area) {
  if (area == "left") return "on the left";
  if (area == "right") return "on the right";
  if (area == "top") return "at the top";
  if (area == "bottom") return "at the bottom";
  return "in the center";
}

std::string relation_phrase(const std::string& relation, SplitMix& rng) {
  static const std::array<const char*, 3> left = {"to the left of", "left of", "on the left of"};
  static const std::array<const char*, 3> right = {"to the right of", "right of",
                                                   "on the right of"};
  static const std::array<const char*, 2> above = {"above", "over"};
  static const std::array<const char*, 3> below = {"below", "under", "beneath"};
  if (relation == "left of") return rng.pick(left);
  if (relation == "right of") return rng.pick(right);
  if (relation == "above") return rng.pick(above);
  return rng.pick(below);
}

std::string make_caption(const ShapesScene& scene, bool left_to_right, SplitMix& rng,
                         bool& background_in_caption) {
  const std::string bg = kShapeColours[static_cast<size_t>(scene.background)].name;
  const auto& objs = scene.objects;
  std::vector<std::string> with_bg, without_bg;  // templates; "{bg}" marks the background
  std::string a = object_phrase(objs[0]);
  if (objs.size() == 1) {
    if (objs[0].area) {
      std::string p = place_phrase(*objs[0].area);
      without_bg = {a + " " + p};
      with_bg = {a + " " + p + " of a " + bg + " background",
                 "a " + bg + " background with " + a + " " + p};
    } else {
      without_bg = {a, "a picture of " + a};
      with_bg = {a + " on a " + bg + " background", "a " + bg + " background with " + a,
                 a + " against a " + bg + " background"};
    }
  } else if (objs.size() == 2) {
    std::string b = object_phrase(objs[1]);
    if (!scene.relations.empty()) {
      std::string rel = relation_phrase(scene.relations[0].relation, rng);
      without_bg = {a + " " + rel + " " + b, a + " is " + rel + " " + b};
      with_bg = {a + " " + rel + " " + b + " on a " + bg + " background",
                 "a " + bg + " background with " + a + " " + rel + " " + b};
    } else {
      without_bg = {"two shapes: " + a + " and " + b, a + " and " + b};
      with_bg = {a + " and " + b + " on a " + bg + " background",
                 "two shapes on a " + bg + " background: " + a + " and " + b};
    }
  } else {
    std::string list = a + ", " + object_phrase(objs[1]) + " and " + object_phrase(objs[2]);
    if (left_to_right) {
      without_bg = {"from left to right: " + list, list + ", from left to right"};
      with_bg = {"from left to right on a " + bg + " background: " + list};
    } else {
      without_bg = {"three shapes: " + list, list};
      with_bg = {list + " on a " + bg + " background",
                 "three shapes on a " + bg + " background: " + list};
    }
  }
  background_in_caption = rng.chance(0.5);
  const auto& pool = background_in_caption ? with_bg : without_bg;
  return pool[static_cast<size_t>(rng.below(static_cast<int>(pool.size())))];
}

// ---- scene sampling -----------------------------------------------------------------------------

// Colour and shape of one object under the split's rule; `forced` draws a held-out pair.
void draw_attributes(ShapeObject& o, int background, Split split, bool forced, SplitMix& rng) {
  for (;;) {
    if (forced) {
      const HeldOutPair& p = rng.pick(kHeldOutPairs);
      o.colour = parse_colour(p.colour);
      o.shape = p.shape;
    } else {
      o.colour = rng.below(static_cast<int>(kShapeColours.size()));
      o.shape = static_cast<ShapeKind>(rng.below(kNumShapeKinds));
    }
    if (o.colour == background) continue;
    if (split == Split::Train && is_held_out(o.colour, o.shape)) continue;
    return;
  }
}

void draw_size(ShapeObject& o, SplitMix& rng) {
  o.large = rng.chance(0.5);
  o.radius = (o.large ? kLargeRadius : kSmallRadius) + rng.range(-0.01, 0.01);
}

// Places objects anywhere without overlap (gap >= 0.05 of the side between extents).
bool place_free(std::vector<ShapeObject>& objs, SplitMix& rng) {
  for (size_t i = 0; i < objs.size(); ++i) {
    bool ok = false;
    for (int attempt = 0; attempt < 200 && !ok; ++attempt) {
      double b = kExtent * objs[i].radius + 0.02;
      objs[i].cx = rng.range(b, 1 - b);
      objs[i].cy = rng.range(b, 1 - b);
      ok = true;
      for (size_t j = 0; j < i; ++j) {
        double d = std::hypot(objs[i].cx - objs[j].cx, objs[i].cy - objs[j].cy);
        if (d < kExtent * (objs[i].radius + objs[j].radius) + 0.05) ok = false;
      }
    }
    if (!ok) return false;
  }
  return true;
}

struct Generated {
  ShapesScene scene;
  std::string caption;
  bool background_in_caption = false;
};

Generated generate(const ShapesOptions& opt, size_t index) {
  SplitMix rng(opt.seed, split_tag(opt.split), index);
  Generated g;
  ShapesScene& s = g.scene;
  s.background = rng.pick(kBackgrounds);
  double u = rng.uniform();
  int n = u < 0.4 ? 1 : (u < 0.8 ? 2 : 3);
  int forced = opt.split == Split::HeldOut ? rng.below(n) : -1;
  s.objects.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    ShapeObject& o = s.objects[static_cast<size_t>(i)];
    draw_attributes(o, s.background, opt.split, i == forced, rng);
    draw_size(o, rng);
    o.size_in_caption = rng.chance(0.6);
  }
  bool left_to_right = false;
  if (n == 1) {
    static const std::array<const char*, 5> areas = {"left", "right", "top", "bottom", "center"};
    std::string area = rng.pick(areas);
    double along = rng.range(0.22, 0.32), across = rng.range(0.4, 0.6);
    ShapeObject& o = s.objects[0];
    if (area == "left") o.cx = along, o.cy = across;
    if (area == "right") o.cx = 1 - along, o.cy = across;
    if (area == "top") o.cx = across, o.cy = along;
    if (area == "bottom") o.cx = across, o.cy = 1 - along;
    if (area == "center") o.cx = rng.range(0.45, 0.55), o.cy = rng.range(0.45, 0.55);
    if (rng.chance(0.6)) o.area = area;
  } else if (n == 2 && rng.chance(0.75)) {
    static const std::array<const char*, 4> relations = {"left of", "right of", "above", "below"};
    std::string rel = rng.pick(relations);
    bool horizontal = rel == "left of" || rel == "right of";
    bool subject_first = rel == "left of" || rel == "above";  // subject at the smaller coordinate
    double first = rng.range(0.2, 0.28), second = rng.range(0.72, 0.8);
    double base = rng.range(0.38, 0.62);
    double a_across = base + rng.range(-0.07, 0.07), b_across = base + rng.range(-0.07, 0.07);
    double a_along = subject_first ? first : second, b_along = subject_first ? second : first;
    ShapeObject& a = s.objects[0];
    ShapeObject& b = s.objects[1];
    if (horizontal)
      a.cx = a_along, a.cy = a_across, b.cx = b_along, b.cy = b_across;
    else
      a.cy = a_along, a.cx = a_across, b.cy = b_along, b.cx = b_across;
    s.relations.push_back({0, 1, rel});
  } else {
    if (!place_free(s.objects, rng)) {  // fallback: a row of small objects
      for (int i = 0; i < n; ++i) {
        ShapeObject& o = s.objects[static_cast<size_t>(i)];
        o.large = false;
        o.radius = kSmallRadius;
        o.cx = (2 * i + 1.0) / (2 * n);
        o.cy = 0.5;
      }
    }
    if (n == 3) {
      std::sort(s.objects.begin(), s.objects.end(),
                [](const ShapeObject& x, const ShapeObject& y) { return x.cx < y.cx; });
      bool separated =
          s.objects[1].cx - s.objects[0].cx >= 0.2 && s.objects[2].cx - s.objects[1].cx >= 0.2;
      if (separated && rng.chance(0.5)) {
        left_to_right = true;
        s.relations.push_back({0, 1, "left to right"});
        s.relations.push_back({1, 2, "left to right"});
      }
    }
  }
  g.caption = make_caption(s, left_to_right, rng, g.background_in_caption);
  return g;
}

nlohmann::json scene_json(const ShapesScene& scene, int resolution,
                          const std::vector<Rgb>* rgb_override = nullptr) {
  nlohmann::json objects = nlohmann::json::array();
  for (size_t i = 0; i < scene.objects.size(); ++i) {
    const ShapeObject& o = scene.objects[i];
    Rgb rgb = rgb_override ? (*rgb_override)[i] : rgb_of(o.colour);
    int colour = rgb_override ? nearest_colour(rgb) : o.colour;
    objects.push_back({
        {"shape", shape_name(o.shape)},
        {"colour", kShapeColours[static_cast<size_t>(colour)].name},
        {"rgb", rgb_json(rgb)},
        {"size", o.large ? "large" : "small"},
        {"size_in_caption", o.size_in_caption},
        {"x", o.cx * resolution},
        {"y", o.cy * resolution},
        {"radius", o.radius * resolution},
        {"rotation", o.rotation},
        {"area", o.area ? nlohmann::json(*o.area) : nlohmann::json(nullptr)},
        {"heldout", is_held_out(colour, o.shape)},
    });
  }
  nlohmann::json relations = nlohmann::json::array();
  for (const ShapeRelation& r : scene.relations)
    relations.push_back({{"subject", r.subject}, {"object", r.object}, {"relation", r.relation}});
  return {
      {"resolution", resolution},
      {"background",
       {{"colour", kShapeColours[static_cast<size_t>(scene.background)].name},
        {"rgb", rgb_json(rgb_of(scene.background))},
        {"in_caption", false}}},
      {"objects", objects},
      {"relations", relations},
  };
}

bool mentions_left_or_right(const std::string& caption) {
  for (const char* word : {"left", "right"}) {
    for (size_t pos = caption.find(word); pos != std::string::npos;
         pos = caption.find(word, pos + 1)) {
      size_t end = pos + std::string(word).size();
      bool start_ok = pos == 0 || !std::isalpha(static_cast<unsigned char>(caption[pos - 1]));
      bool end_ok =
          end == caption.size() || !std::isalpha(static_cast<unsigned char>(caption[end]));
      if (start_ok && end_ok) return true;
    }
  }
  return false;
}

}  // namespace

// ---- public: names ------------------------------------------------------------------------------

const char* shape_name(ShapeKind kind) {
  int i = static_cast<int>(kind);
  if (i < 0 || i >= kNumShapeKinds) throw UsageError("shapes: invalid shape kind");
  return kShapeNames[static_cast<size_t>(i)];
}

ShapeKind parse_shape(const std::string& name) {
  for (int i = 0; i < kNumShapeKinds; ++i)
    if (name == kShapeNames[static_cast<size_t>(i)]) return static_cast<ShapeKind>(i);
  throw UsageError("shapes: unknown shape '" + name + "'");
}

int parse_colour(const std::string& name) {
  for (size_t i = 0; i < kShapeColours.size(); ++i)
    if (name == kShapeColours[i].name) return static_cast<int>(i);
  throw UsageError("shapes: unknown colour '" + name + "'");
}

const std::array<HeldOutMotion, 9> kHeldOutMotions = {{
    {ShapeKind::Circle, "move left"},
    {ShapeKind::Square, "rotate clockwise"},
    {ShapeKind::Triangle, "move up"},
    {ShapeKind::Star, "grow"},
    {ShapeKind::Heart, "move right"},
    {ShapeKind::Ring, "shrink"},
    {ShapeKind::Cross, "rotate counterclockwise"},
    {ShapeKind::Diamond, "move down"},
    {ShapeKind::Hexagon, "colour"},
}};

bool is_held_out_motion(ShapeKind shape, const std::string& motion_label) {
  for (const HeldOutMotion& p : kHeldOutMotions)
    if (p.shape == shape && motion_label == p.motion) return true;
  return false;
}

bool is_held_out(int colour, ShapeKind shape) {
  for (const HeldOutPair& p : kHeldOutPairs)
    if (p.shape == shape &&
        kShapeColours.at(static_cast<size_t>(colour)).name == std::string(p.colour))
      return true;
  return false;
}

io::Image render_shapes(const ShapesScene& scene, int resolution) {
  std::vector<std::pair<ShapeObject, Rgb>> objects;
  for (const ShapeObject& o : scene.objects) objects.emplace_back(o, rgb_of(o.colour));
  return render(rgb_of(scene.background), objects, resolution);
}

nlohmann::json scene_to_json(const ShapesScene& scene, int resolution) {
  return scene_json(scene, resolution);
}

// ---- public: dataset ----------------------------------------------------------------------------

ShapesDataset::ShapesDataset(ShapesOptions options) : options_(options) {
  check_resolution(options_.resolution);
  if (options_.size == 0) throw UsageError("shapes: size must be >= 1");
  if (options_.split != Split::Train && options_.split != Split::HeldOut &&
      options_.split != Split::All)
    throw UsageError("shapes: invalid split");
}

ShapesScene ShapesDataset::scene(size_t index) const {
  if (index >= options_.size)
    throw UsageError("shapes: index " + std::to_string(index) + " out of range (size " +
                     std::to_string(options_.size) + ")");
  return generate(options_, index).scene;
}

std::string ShapesDataset::caption(size_t index) const {
  if (index >= options_.size)
    throw UsageError("shapes: index " + std::to_string(index) + " out of range (size " +
                     std::to_string(options_.size) + ")");
  return generate(options_, index).caption;
}

Sample ShapesDataset::get(size_t index) const {
  if (index >= options_.size)
    throw UsageError("shapes: index " + std::to_string(index) + " out of range (size " +
                     std::to_string(options_.size) + ")");
  Generated g = generate(options_, index);
  Sample sample;
  sample.image = render_shapes(g.scene, options_.resolution);
  sample.caption = g.caption;
  sample.meta = scene_json(g.scene, options_.resolution);
  sample.meta["background"]["in_caption"] = g.background_in_caption;
  sample.meta["dataset"] = "shapes";
  sample.meta["index"] = index;
  sample.meta["split"] = split_name(options_.split);
  return sample;
}

bool ShapesDataset::flip_allowed(const Sample& sample) const {
  return !mentions_left_or_right(sample.caption);
}

// ---- public: video ------------------------------------------------------------------------------

ShapesVideo::ShapesVideo(ShapesVideoOptions options) : options_(options) {
  check_resolution(options_.resolution);
  if (options_.num_frames < 1 || options_.num_frames > 256)
    throw UsageError("shapes video: num_frames must be 1..256, got " +
                     std::to_string(options_.num_frames));
  if (options_.size == 0) throw UsageError("shapes video: size must be >= 1");
}

ShapesClip ShapesVideo::get(size_t index) const {
  if (index >= options_.size)
    throw UsageError("shapes video: index " + std::to_string(index) + " out of range (size " +
                     std::to_string(options_.size) + ")");
  SplitMix rng(options_.seed, split_tag(options_.split) + 0x100, index);
  const Split split = options_.split;
  ShapesScene scene;
  scene.background = rng.pick(kBackgrounds);
  // Motion first (a held-out clip starts from its shape x motion pair), then the object.
  std::string kind, direction;
  ShapeObject o;
  if (split == Split::HeldOut) {
    const HeldOutMotion& pair = rng.pick(kHeldOutMotions);
    const std::string label = pair.motion;
    const auto space = label.find(' ');
    kind = label.substr(0, space);
    if (space != std::string::npos) direction = label.substr(space + 1);
    do draw_attributes(o, scene.background, Split::Train, false, rng);
    while (o.shape != pair.shape);
  } else {
    static const std::array<const char*, 5> kinds = {"move", "rotate", "colour", "grow", "shrink"};
    static const std::array<const char*, 4> dirs = {"left", "right", "up", "down"};
    kind = rng.pick(kinds);
    if (kind == "move") direction = rng.pick(dirs);
    if (kind == "rotate") direction = rng.chance(0.5) ? "clockwise" : "counterclockwise";
    const std::string label = direction.empty() ? kind : kind + " " + direction;
    for (;;) {
      draw_attributes(o, scene.background, split, false, rng);
      if (kind == "rotate" && (o.shape == ShapeKind::Circle || o.shape == ShapeKind::Ring)) continue;
      if (split == Split::Train && is_held_out_motion(o.shape, label)) continue;
      break;
    }
  }
  draw_size(o, rng);
  o.cx = rng.range(0.4, 0.6);
  o.cy = rng.range(0.4, 0.6);
  int to_colour = o.colour;
  if (kind == "colour") {
    // No blended frame may look like the background, nor (in Train) show a held-out pair.
    auto leaks = [&](int to) {
      // Checked along the whole blend (256 points), not only at this clip's frames, so that the
      // caption of index i is the same whatever the frame count.
      for (int t = 0; t <= 256; ++t) {
        double f = t / 256.0;
        Rgb a = rgb_of(o.colour), b = rgb_of(to), mid;
        for (int c = 0; c < 3; ++c) mid[c] = a[c] + (b[c] - a[c]) * f;
        int named = nearest_colour(mid);
        if (named == scene.background) return true;
        if (split == Split::Train && is_held_out(named, o.shape)) return true;
      }
      return false;
    };
    do {
      to_colour = rng.below(static_cast<int>(kShapeColours.size()));
    } while (to_colour == o.colour || to_colour == scene.background || leaks(to_colour));
  }
  if (kind == "grow" || kind == "shrink") o.radius = kind == "grow" ? kSmallRadius : kLargeRadius;

  // 1. Motion parameters and caption.
  const std::string colour = kShapeColours[static_cast<size_t>(o.colour)].name;
  const std::string shape = shape_name(o.shape);
  const std::string a = with_article(colour + " " + shape);
  const std::string label = direction.empty() ? kind : kind + " " + direction;
  nlohmann::json motion = {{"type", kind}, {"label", label}, {"heldout", is_held_out_motion(o.shape, label)}};
  std::string caption;
  double dx = 0, dy = 0, degrees = 0, r0 = o.radius, r1 = o.radius;
  if (kind == "move") {
    const std::string& dir = direction;
    double start = rng.range(0.28, 0.32), across = rng.range(0.4, 0.6);
    o.radius = std::min(o.radius, 0.15);
    if (dir == "left" || dir == "right") {
      o.cx = dir == "right" ? start : 1 - start, o.cy = across;
      dx = dir == "right" ? 0.4 : -0.4;
    } else {
      o.cy = dir == "down" ? start : 1 - start, o.cx = across;
      dy = dir == "down" ? 0.4 : -0.4;
    }
    r0 = r1 = o.radius;
    motion["direction"] = dir;
    std::string verb = rng.chance(0.5) ? " moving " : " sliding ";
    caption = a + verb + (dir == "left" || dir == "right" ? "to the " + dir : dir);
  } else if (kind == "rotate") {
    const bool clockwise = direction == "clockwise";
    degrees = clockwise ? -72 : 72;
    motion["direction"] = clockwise ? "clockwise" : "counterclockwise";
    motion["degrees"] = degrees;
    caption = a + (rng.chance(0.5) ? " rotating " : " spinning ") +
              (clockwise ? "clockwise" : "counterclockwise");
  } else if (kind == "colour") {
    std::string to = kShapeColours[static_cast<size_t>(to_colour)].name;
    motion["from"] = colour;
    motion["to"] = to;
    caption = with_article(shape) + (rng.chance(0.5) ? " changing from " : " turning from ") +
              colour + " to " + to;
  } else {
    r1 = kind == "grow" ? kLargeRadius : kSmallRadius;
    motion["from_radius"] = r0 * options_.resolution;
    motion["to_radius"] = r1 * options_.resolution;
    caption = a + (kind == "grow" ? (rng.chance(0.5) ? " growing" : " getting bigger")
                                  : (rng.chance(0.5) ? " shrinking" : " getting smaller"));
  }
  bool bg_in_caption = rng.chance(0.5);
  if (bg_in_caption)
    caption += std::string(" on a ") + kShapeColours[static_cast<size_t>(scene.background)].name +
               " background";

  // 2. Frames.
  ShapesClip clip;
  clip.caption = caption;
  clip.meta = {{"dataset", "shapes_video"},         {"index", index},
               {"split", split_name(split)},        {"resolution", options_.resolution},
               {"num_frames", options_.num_frames}, {"motion", motion},
               {"frames", nlohmann::json::array()}};
  const Rgb from_rgb = rgb_of(o.colour), to_rgb = rgb_of(to_colour);
  const double x0 = o.cx, y0 = o.cy;
  for (int t = 0; t < options_.num_frames; ++t) {
    double f = options_.num_frames > 1 ? static_cast<double>(t) / (options_.num_frames - 1) : 0.0;
    ShapeObject frame_object = o;
    frame_object.cx = x0 + dx * f;
    frame_object.cy = y0 + dy * f;
    frame_object.rotation = degrees * f;
    frame_object.radius = r0 + (r1 - r0) * f;
    frame_object.large = frame_object.radius > (kSmallRadius + kLargeRadius) / 2;
    Rgb rgb;
    for (int c = 0; c < 3; ++c) rgb[c] = from_rgb[c] + (to_rgb[c] - from_rgb[c]) * f;
    ShapesScene frame_scene = scene;
    frame_scene.objects = {frame_object};
    clip.frames.push_back(
        render(rgb_of(scene.background), {{frame_object, rgb}}, options_.resolution));
    std::vector<Rgb> rgbs = {rgb};
    nlohmann::json frame = scene_json(frame_scene, options_.resolution, &rgbs);
    frame["background"]["in_caption"] = bg_in_caption;
    clip.meta["frames"].push_back(frame);
  }
  clip.meta["background"] = clip.meta["frames"][0]["background"];
  return clip;
}

}  // namespace genvis::data
