// `shapes`: procedural scenes of 1-3 flat shapes with captions, ground truth and a pixel scorer.
//
//   genvis::data::ShapesDataset ds({.resolution = 64, .split = genvis::data::Split::Train,
//                                   .size = 10000, .seed = 0});
//   genvis::data::Sample s = ds.get(7);   // "a small blue star to the left of a large yellow
//   heart" genvis::data::ShapesScore score = genvis::data::score_shapes(s.image, s.meta);
//   score.all_correct();                   // true: the pixels show what the scene says
//
//   genvis::data::ShapesVideo video({.resolution = 64, .num_frames = 8});
//   genvis::data::ShapesClip clip = video.get(3);   // 8 frames, "a red square moving right"
//
// Every sample is a pure function of (options, index): a splitmix64 stream seeded from
// (seed, split, index), no global state, so get() is safe from several threads at once.
//
// Scene vocabulary
//   shapes   circle square triangle star heart ring cross diamond hexagon (upright, unrotated)
//   colours  red green blue yellow orange purple pink white black gray brown cyan (kShapeColours)
//   backgrounds  white black gray blue yellow (an object never has the background's colour)
//   sizes    small (radius 0.10 of the side), large (0.17), each +-0.01
//   areas    left right top bottom center (one-object scenes)
//   relations  "left of" "right of" "above" "below" (two objects; the dominant axis differs by
//            >= 0.3 of the side, the other by <= 0.15); "left to right" (three objects listed in
//            order of x, >= 0.2 of the side apart; only the x order is claimed)
//
// Held-out colour x shape pairs (kHeldOutPairs): never in Split::Train; every Split::HeldOut
// sample has at least one object with such a pair; Split::All draws freely.
//   green heart, purple triangle, blue ring, yellow cross, orange star, pink square,
//   cyan circle, brown diamond
//
// Meta (one JSON object per sample; pixel units at meta["resolution"], y pointing down):
//   {"dataset": "shapes", "index": 7, "split": "train", "resolution": 64,
//    "background": {"colour": "white", "rgb": [245,245,245], "in_caption": true},
//    "objects": [{"shape": "star", "colour": "blue", "rgb": [30,70,220], "size": "small",
//                 "size_in_caption": true, "x": 17.9, "y": 30.2, "radius": 6.1, "rotation": 0,
//                 "area": "left" | null, "heldout": false}, ...],
//    "relations": [{"subject": 0, "object": 1, "relation": "left of"}]}
#pragma once
#include "data/dataset.h"
#include "data/video_dataset.h"
#include "io/image.h"

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace genvis::data {

// Serialised by name; append-only.
enum class ShapeKind { Circle, Square, Triangle, Star, Heart, Ring, Cross, Diamond, Hexagon };
inline constexpr int kNumShapeKinds = 9;
const char* shape_name(ShapeKind kind);
ShapeKind parse_shape(const std::string& name);  // UsageError for unknown names

struct NamedColour {
  const char* name;
  std::array<uint8_t, 3> rgb;
};
// Index into this table is a scene's colour id. Chosen far apart in RGB (nearest-colour
// segmentation of clean renders is exact away from anti-aliased edges).
extern const std::array<NamedColour, 12> kShapeColours;
int parse_colour(const std::string& name);  // index into kShapeColours; UsageError otherwise

struct HeldOutPair {
  const char* colour;
  ShapeKind shape;
};
extern const std::array<HeldOutPair, 8> kHeldOutPairs;
bool is_held_out(int colour, ShapeKind shape);

// Size classes as radius / image side.
inline constexpr double kSmallRadius = 0.10;
inline constexpr double kLargeRadius = 0.17;

// One object. Coordinates are fractions of the image side (resolution independent), y down.
struct ShapeObject {
  ShapeKind shape = ShapeKind::Circle;
  int colour = 0;  // index into kShapeColours
  bool large = false;
  double cx = 0.5, cy = 0.5;  // centre
  double radius = kSmallRadius;
  double rotation = 0;              // degrees counter-clockwise (video only; datasets draw upright)
  std::optional<std::string> area;  // "left", ..., set when the caption names the place
  bool size_in_caption = false;
};

struct ShapeRelation {
  int subject = 0, object = 1;
  std::string relation;  // "left of", "right of", "above", "below", "left to right"
};

struct ShapesScene {
  int background = 0;  // index into kShapeColours
  std::vector<ShapeObject> objects;
  std::vector<ShapeRelation> relations;
};

// Anti-aliased render (4x4 supersampling per pixel, objects composited in order), 8-bit RGB.
io::Image render_shapes(const ShapesScene& scene, int resolution);
// The scene as meta JSON (format above) in pixel units of `resolution`.
nlohmann::json scene_to_json(const ShapesScene& scene, int resolution);

struct ShapesOptions {
  int resolution = 64;  // 16..1024
  Split split = Split::Train;
  size_t size = 10000;  // >= 1
  uint64_t seed = 0;
};

class ShapesDataset : public Dataset {
public:
  explicit ShapesDataset(ShapesOptions options);  // UsageError for bad options
  std::string name() const override { return "shapes"; }
  size_t size() const override { return options_.size; }
  Sample get(size_t index) const override;
  // False when the caption says "left" or "right".
  bool flip_allowed(const Sample& sample) const override;

  const ShapesOptions& options() const { return options_; }
  // The scene and caption behind get(index), without rendering.
  ShapesScene scene(size_t index) const;
  std::string caption(size_t index) const;

private:
  ShapesOptions options_;
};

// Video: one object over T frames.
// Motions (meta "motion": {"type", "direction" | "from"/"to" | "from_radius"/"to_radius", "label",
// "heldout"}; "label" names the motion as the held-out table does):
//   move (left/right/up/down, 0.4 of the side), rotate (clockwise/counterclockwise, 72 degrees;
//   never circle or ring), change colour (linear blend from one named colour to another),
//   grow / shrink (small <-> large radius).
// Captions: "a red square moving to the right", "a blue star rotating clockwise on a black
// background", "a circle changing from red to blue", "a green heart growing", ...
// Held-out shape x motion pairs (kHeldOutMotions; each shape and each motion once): never in
// Split::Train; every Split::HeldOut clip shows one of them (its colours drawn as in Train, so
// the motion on that shape is the only new thing); Split::All draws freely. Train also keeps the
// image dataset's held-out colour x shape pairs out of every frame.
//   circle moving left, square rotating clockwise, triangle moving up, star growing, heart moving
//   right, ring shrinking, cross rotating counterclockwise, diamond moving down, hexagon changing
//   colour
// Meta: {"dataset": "shapes_video", "motion": {...}, "frames": [scene meta per frame], ...}
struct ShapesVideoOptions {
  int resolution = 64;  // 16..1024
  int num_frames = 8;   // 1..256 (1: the clip's first frame, an image)
  Split split = Split::Train;
  size_t size = 10000;
  uint64_t seed = 0;
};

// The motion labels of the held-out table: "move left", "move right", "move up", "move down",
// "rotate clockwise", "rotate counterclockwise", "colour", "grow", "shrink".
struct HeldOutMotion {
  ShapeKind shape;
  const char* motion;
};
extern const std::array<HeldOutMotion, 9> kHeldOutMotions;
bool is_held_out_motion(ShapeKind shape, const std::string& motion_label);

using ShapesClip = VideoSample;

class ShapesVideo : public VideoDataset {
public:
  explicit ShapesVideo(ShapesVideoOptions options);  // UsageError for bad options
  std::string name() const override { return "shapes-video"; }
  size_t size() const override { return options_.size; }
  int num_frames() const override { return options_.num_frames; }
  ShapesClip get(size_t index) const override;  // UsageError for index >= size()
  const ShapesVideoOptions& options() const { return options_; }

private:
  ShapesVideoOptions options_;
};

// Scorer: checks from the pixels alone whether `image` shows `scene` (meta JSON as above, at any
// image size: coordinates are rescaled by width / scene["resolution"]).
//   background: the nearest named colour of the border pixels (their majority).
//   colour:     a connected blob of pixels whose nearest named colour is the object's exists
//               (the blob closest to the expected centre is taken; area >= 20% of a small one).
//   shape:      the blob's soft mask (coverage from the pixel colour between background and
//               object colour) is compared with every shape's template, placed at the blob's
//               centroid and scaled to its area; the best soft IoU names the shape.
//   size:       fitted radius above/below the midpoint of small and large.
//   position:   fitted centre within 0.15 of the side from the expected centre (strict; the
//               caption may not say where the object is).
//   area:       the fitted centre lies in the caption's area (left: x < 0.4, right: x > 0.6,
//               top: y < 0.4, bottom: y > 0.6, center: within 0.15 of the middle); true when the
//               caption names none.
//   relations:  the relation holds between the two fitted centres ("left of" etc.: sign on the
//               dominant axis; "left to right": x order only).
struct ShapesObjectScore {
  bool found = false;  // == colour
  bool colour = false;
  bool shape = false;
  bool size = false;
  bool position = false;
  bool area = false;
  bool size_in_caption = false;
  std::string detected_shape;       // best template ("" when not found)
  double iou = 0;                   // soft IoU of the best template
  double x = 0, y = 0, radius = 0;  // fitted, in pixels of the scored image
};

struct ShapesScore {
  bool background = false;
  bool background_in_caption = false;
  std::vector<ShapesObjectScore> objects;
  std::vector<bool> relations;  // one per scene relation

  // Everything the caption states holds: colours, shapes, areas and relations; size and
  // background only where the caption states them. Exact positions are not required.
  bool all_correct() const;
  nlohmann::json to_json() const;
};

ShapesScore score_shapes(const io::Image& image, const nlohmann::json& scene);

}  // namespace genvis::data
