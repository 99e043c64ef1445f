#include "data/shapes.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <thread>

namespace genvis::data {
namespace {

ShapesDataset make(Split split, int resolution = 64, size_t size = 1000, uint64_t seed = 0) {
  return ShapesDataset(
      ShapesOptions{.resolution = resolution, .split = split, .size = size, .seed = seed});
}

ShapeObject object(ShapeKind shape, const char* colour, double cx, double cy, double radius) {
  ShapeObject o;
  o.shape = shape;
  o.colour = parse_colour(colour);
  o.cx = cx, o.cy = cy, o.radius = radius;
  o.large = radius > (kSmallRadius + kLargeRadius) / 2;
  return o;
}

std::array<int, 3> rgb_at(const io::Image& img, int x, int y) {
  return {img.at(x, y, 0), img.at(x, y, 1), img.at(x, y, 2)};
}

TEST(Shapes, SameIndexSamePixelsDifferentSeedsDiffer) {
  ShapesDataset a = make(Split::Train, 64, 100, 1), b = make(Split::Train, 64, 100, 1);
  ShapesDataset c = make(Split::Train, 64, 100, 2);
  int differ = 0;
  for (size_t i = 0; i < 20; ++i) {
    Sample x = a.get(i), y = b.get(i), z = c.get(i);
    EXPECT_EQ(x.image.pixels, y.image.pixels);
    EXPECT_EQ(x.caption, y.caption);
    EXPECT_EQ(x.meta, y.meta);
    differ += x.image.pixels != z.image.pixels ? 1 : 0;
  }
  EXPECT_GE(differ, 19);
  EXPECT_NE(a.get(0).image.pixels, a.get(1).image.pixels);
}

TEST(Shapes, ThreadsSeeTheSameSamples) {
  ShapesDataset ds = make(Split::All, 64, 64);
  std::vector<std::string> serial(64), parallel(64);
  for (size_t i = 0; i < 64; ++i) serial[i] = ds.get(i).caption;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < 64; i += 4) parallel[i] = ds.get(i).caption;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(serial, parallel);
}

TEST(Shapes, HeldOutPairsNeverInTrainAlwaysInHeldOut) {
  ShapesDataset train = make(Split::Train, 32, 2000), held = make(Split::HeldOut, 32, 2000);
  int train_objects = 0;
  std::set<std::string> held_pairs_seen;
  for (size_t i = 0; i < 2000; ++i) {
    for (const ShapeObject& o : train.scene(i).objects) {
      ASSERT_FALSE(is_held_out(o.colour, o.shape)) << "train index " << i;
      ++train_objects;
    }
    bool any = false;
    for (const ShapeObject& o : held.scene(i).objects) {
      if (is_held_out(o.colour, o.shape)) {
        any = true;
        held_pairs_seen.insert(std::string(kShapeColours[o.colour].name) + " " +
                               shape_name(o.shape));
      }
    }
    ASSERT_TRUE(any) << "heldout index " << i;
  }
  EXPECT_GT(train_objects, 3000);
  EXPECT_EQ(held_pairs_seen.size(), kHeldOutPairs.size());
  // Meta agrees with the split.
  Sample s = held.get(3);
  bool flagged = false;
  for (const auto& o : s.meta["objects"]) flagged = flagged || o["heldout"].get<bool>();
  EXPECT_TRUE(flagged);
  EXPECT_EQ(s.meta["split"], "heldout");
}

TEST(Shapes, AttributesCoverTheVocabulary) {
  ShapesDataset ds = make(Split::All, 32, 3000);
  std::set<int> shapes, colours, backgrounds, counts;
  std::set<std::string> relations, areas;
  for (size_t i = 0; i < 3000; ++i) {
    ShapesScene s = ds.scene(i);
    counts.insert(static_cast<int>(s.objects.size()));
    backgrounds.insert(s.background);
    for (const ShapeObject& o : s.objects) {
      shapes.insert(static_cast<int>(o.shape));
      colours.insert(o.colour);
      if (o.area) areas.insert(*o.area);
      EXPECT_NE(o.colour, s.background);
    }
    for (const ShapeRelation& r : s.relations) relations.insert(r.relation);
  }
  EXPECT_EQ(shapes.size(), 9u);
  EXPECT_EQ(colours.size(), 12u);
  EXPECT_EQ(backgrounds.size(), 5u);
  EXPECT_EQ(counts, (std::set<int>{1, 2, 3}));
  EXPECT_EQ(relations,
            (std::set<std::string>{"left of", "right of", "above", "below", "left to right"}));
  EXPECT_EQ(areas.size(), 5u);
}

TEST(Shapes, CaptionNamesEveryObjectsColourAndShape) {
  ShapesDataset ds = make(Split::All, 32, 500);
  std::set<std::string> captions;
  for (size_t i = 0; i < 500; ++i) {
    Sample s = ds.get(i);
    captions.insert(s.caption);
    for (const auto& o : s.meta["objects"]) {
      std::string phrase = o["colour"].get<std::string>() + " " + o["shape"].get<std::string>();
      if (o["size_in_caption"].get<bool>()) phrase = o["size"].get<std::string>() + " " + phrase;
      EXPECT_NE(s.caption.find(phrase), std::string::npos) << s.caption << " / " << phrase;
    }
    if (s.meta["background"]["in_caption"].get<bool>()) {
      EXPECT_NE(s.caption.find(s.meta["background"]["colour"].get<std::string>() + " background"),
                std::string::npos)
          << s.caption;
    }
    if (s.meta["objects"].size() == 3 && s.meta["relations"].empty()) {
      EXPECT_EQ(s.caption.find("left"), std::string::npos) << s.caption;
    }
  }
  EXPECT_GT(captions.size(), 480u);  // varied templates and scenes
}

TEST(Shapes, FlipForbiddenExactlyWhenCaptionSaysLeftOrRight) {
  ShapesDataset ds = make(Split::All, 32, 400);
  int forbidden = 0, allowed = 0;
  for (size_t i = 0; i < 400; ++i) {
    Sample s = ds.get(i);
    bool lr =
        s.caption.find("left") != std::string::npos || s.caption.find("right") != std::string::npos;
    EXPECT_EQ(ds.flip_allowed(s), !lr) << s.caption;
    (lr ? forbidden : allowed) += 1;
  }
  EXPECT_GT(forbidden, 40);
  EXPECT_GT(allowed, 40);
}

TEST(Shapes, RelationsHoldInTheGeometry) {
  ShapesDataset ds = make(Split::All, 64, 600);
  int checked = 0;
  for (size_t i = 0; i < 600; ++i) {
    ShapesScene s = ds.scene(i);
    for (const ShapeRelation& r : s.relations) {
      const ShapeObject &a = s.objects[r.subject], &b = s.objects[r.object];
      double dx = b.cx - a.cx, dy = b.cy - a.cy;
      if (r.relation == "left of" || r.relation == "right of") {
        EXPECT_GT(r.relation == "left of" ? dx : -dx, 0.4);
        EXPECT_LE(std::abs(dy), 0.15);
      } else if (r.relation == "above" || r.relation == "below") {
        EXPECT_GT(r.relation == "above" ? dy : -dy, 0.4);
        EXPECT_LE(std::abs(dx), 0.15);
      } else {
        EXPECT_EQ(r.relation, "left to right");
        EXPECT_GE(dx, 0.2);
      }
      ++checked;
    }
    // Objects do not overlap and stay inside the image.
    for (size_t p = 0; p < s.objects.size(); ++p) {
      const ShapeObject& o = s.objects[p];
      EXPECT_GE(o.cx - o.radius, 0.0);
      EXPECT_LE(o.cy + o.radius, 1.0);
      for (size_t q = 0; q < p; ++q)
        EXPECT_GT(std::hypot(o.cx - s.objects[q].cx, o.cy - s.objects[q].cy),
                  1.07 * (o.radius + s.objects[q].radius));
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(Shapes, MetaCentreHasTheObjectsColour) {
  ShapesDataset ds = make(Split::All, 64, 300);
  int checked = 0;
  for (size_t i = 0; i < 300; ++i) {
    Sample s = ds.get(i);
    for (const auto& o : s.meta["objects"]) {
      if (o["shape"] == "ring") continue;  // the centre is the hole
      int x = static_cast<int>(o["x"].get<double>()), y = static_cast<int>(o["y"].get<double>());
      auto rgb = o["rgb"].get<std::array<int, 3>>();
      EXPECT_EQ(rgb_at(s.image, x, y), rgb) << s.caption << " at " << x << "," << y;
      ++checked;
    }
    // Corners are background.
    auto bg = s.meta["background"]["rgb"].get<std::array<int, 3>>();
    EXPECT_EQ(rgb_at(s.image, 0, 0), bg);
    EXPECT_EQ(rgb_at(s.image, 63, 63), bg);
  }
  EXPECT_GT(checked, 400);
}

TEST(Shapes, RingHasBackgroundHole) {
  ShapesScene scene;
  scene.background = parse_colour("white");
  scene.objects.push_back(object(ShapeKind::Ring, "blue", 0.5, 0.5, 0.3));
  io::Image img = render_shapes(scene, 64);
  EXPECT_EQ(rgb_at(img, 32, 32), (std::array<int, 3>{245, 245, 245}));
  EXPECT_EQ(rgb_at(img, 32 + 14, 32), (std::array<int, 3>{30, 70, 220}));  // 0.75 radius
}

TEST(Shapes, EdgesAreAntiAliased) {
  ShapesScene scene;
  scene.background = parse_colour("black");
  scene.objects.push_back(object(ShapeKind::Circle, "white", 0.5, 0.5, 0.3));
  io::Image img = render_shapes(scene, 64);
  std::set<int> levels;
  for (uint16_t v : img.pixels) levels.insert(v);
  EXPECT_TRUE(levels.count(20) && levels.count(245));
  int intermediate = 0;
  for (size_t i = 0; i < img.pixels.size(); i += 3)
    intermediate += img.pixels[i] > 25 && img.pixels[i] < 240 ? 1 : 0;
  // The rim of a radius 0.27 * 64 = 17.3 px circle: about its circumference, 109 px.
  EXPECT_GT(intermediate, 60);
  EXPECT_LT(intermediate, 200);
  EXPECT_GT(levels.size(), 8u);
}

TEST(Shapes, RendersAtAnyResolution) {
  for (int res : {32, 64, 128}) {
    ShapesDataset ds = make(Split::All, res, 50);
    Sample s = ds.get(5);
    EXPECT_EQ(s.image.width, res);
    EXPECT_EQ(s.image.height, res);
    EXPECT_EQ(s.image.channels, 3);
    EXPECT_EQ(s.image.bit_depth, 8);
    EXPECT_EQ(s.meta["resolution"], res);
    EXPECT_EQ(s.caption, make(Split::All, 64, 50).get(5).caption);  // same scene at any size
    EXPECT_NEAR(s.meta["objects"][0]["x"].get<double>() / res,
                make(Split::All, 64, 50).get(5).meta["objects"][0]["x"].get<double>() / 64, 1e-12);
  }
}

TEST(Shapes, BadOptionsAreRejected) {
  EXPECT_THROW(make(Split::Train, 8), UsageError);
  EXPECT_THROW(make(Split::Train, 4096), UsageError);
  EXPECT_THROW(make(Split::Train, 64, 0), UsageError);
  ShapesDataset ds = make(Split::Train, 64, 10);
  EXPECT_THROW(ds.get(10), UsageError);
  EXPECT_THROW(ds.scene(11), UsageError);
  EXPECT_THROW(parse_shape("blob"), UsageError);
  EXPECT_THROW(parse_colour("mauve"), UsageError);
  EXPECT_THROW(ShapesVideo(ShapesVideoOptions{.num_frames = 0}), UsageError);
  EXPECT_THROW(ShapesVideo(ShapesVideoOptions{.num_frames = 257}), UsageError);
  EXPECT_THROW(ShapesVideo(ShapesVideoOptions{.resolution = 10}), UsageError);
  EXPECT_THROW(score_shapes(ds.get(0).image, nlohmann::json::object()), UsageError);
}

struct Accuracy {
  int objects = 0, colour = 0, shape = 0, size = 0, position = 0, relations = 0, relations_ok = 0,
      background = 0, all = 0, samples = 0;
};

Accuracy score_many(const ShapesDataset& ds, size_t n, int offset) {
  Accuracy acc;
  for (size_t i = 0; i < n; ++i) {
    Sample s = ds.get(i);
    const nlohmann::json& scene = offset == 0 ? s.meta : ds.get((i + offset) % ds.size()).meta;
    ShapesScore score = score_shapes(s.image, scene);
    ++acc.samples;
    acc.background += score.background;
    acc.all += score.all_correct();
    for (const ShapesObjectScore& o : score.objects) {
      ++acc.objects;
      acc.colour += o.colour, acc.shape += o.shape, acc.size += o.size, acc.position += o.position;
    }
    for (bool r : score.relations) ++acc.relations, acc.relations_ok += r;
  }
  return acc;
}

TEST(ShapesScorer, CleanRendersScoreCorrectly) {
  ShapesDataset ds = make(Split::All, 64, 400, 7);
  Accuracy acc = score_many(ds, 400, 0);
  double n = acc.objects;
  std::printf(
      "64px: %d objects: colour %.3f shape %.3f size %.3f position %.3f relations %.3f "
      "background %.3f all %.3f\n",
      acc.objects, acc.colour / n, acc.shape / n, acc.size / n, acc.position / n,
      double(acc.relations_ok) / acc.relations, double(acc.background) / acc.samples,
      double(acc.all) / acc.samples);
  EXPECT_GT(acc.objects, 700);
  EXPECT_GE(acc.colour / n, 0.95);
  EXPECT_GE(acc.shape / n, 0.95);
  EXPECT_GE(acc.size / n, 0.95);
  EXPECT_GE(acc.position / n, 0.95);
  EXPECT_GE(double(acc.relations_ok) / acc.relations, 0.95);
  EXPECT_EQ(acc.background, acc.samples);
  EXPECT_GE(double(acc.all) / acc.samples, 0.9);
}

TEST(ShapesScorer, WorksAtOtherResolutions) {
  for (int res : {32, 128}) {
    ShapesDataset ds = make(Split::All, res, 100, 3);
    Accuracy acc = score_many(ds, 100, 0);
    double n = acc.objects;
    std::printf("%dpx: colour %.3f shape %.3f\n", res, acc.colour / n, acc.shape / n);
    EXPECT_GE(acc.colour / n, 0.9) << res;
    EXPECT_GE(acc.shape / n, 0.95) << res;
  }
}

TEST(ShapesScorer, ToleratesPixelNoise) {
  // Uniform noise of +-24 per channel (an imperfect generator), from a fixed LCG.
  ShapesDataset ds = make(Split::All, 64, 200, 13);
  uint64_t state = 12345;
  int objects = 0, colour = 0, shape = 0, all = 0;
  for (size_t i = 0; i < 200; ++i) {
    Sample s = ds.get(i);
    for (uint16_t& v : s.image.pixels) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      int noise = static_cast<int>((state >> 33) % 49) - 24;
      v = static_cast<uint16_t>(std::clamp(v + noise, 0, 255));
    }
    ShapesScore score = score_shapes(s.image, s.meta);
    all += score.all_correct();
    for (const ShapesObjectScore& o : score.objects)
      ++objects, colour += o.colour, shape += o.shape;
  }
  std::printf("noisy 64px: colour %.3f shape %.3f all %.3f\n", double(colour) / objects,
              double(shape) / objects, all / 200.0);
  EXPECT_GE(double(colour) / objects, 0.95);
  EXPECT_GE(double(shape) / objects, 0.95);
}

TEST(ShapesScorer, RescalesTheSceneToTheImageSize) {
  ShapesDataset small = make(Split::All, 64, 60, 17), big = make(Split::All, 128, 60, 17);
  int all = 0;
  for (size_t i = 0; i < 60; ++i) {
    ShapesScore score = score_shapes(big.get(i).image, small.get(i).meta);  // 128 px vs 64 px meta
    all += score.all_correct();
    for (const ShapesObjectScore& o : score.objects) EXPECT_TRUE(o.position && o.shape && o.size);
  }
  EXPECT_GE(all, 57);
}

TEST(ShapesScorer, RejectsOtherSamplesScenes) {
  ShapesDataset ds = make(Split::All, 64, 300, 11);
  Accuracy acc = score_many(ds, 300, 1);
  double n = acc.objects;
  std::printf("mismatched: colour %.3f shape %.3f all %.3f\n", acc.colour / n, acc.shape / n,
              double(acc.all) / acc.samples);
  EXPECT_LE(double(acc.all) / acc.samples, 0.05);
  EXPECT_LE(acc.shape / n, 0.4);
}

TEST(ShapesScorer, DetectsAWrongShapeColourAndRelation) {
  ShapesScene scene;
  scene.background = parse_colour("white");
  scene.objects.push_back(object(ShapeKind::Star, "red", 0.25, 0.5, 0.17));
  scene.objects.push_back(object(ShapeKind::Heart, "blue", 0.75, 0.5, 0.1));
  scene.relations.push_back({0, 1, "left of"});
  io::Image img = render_shapes(scene, 64);
  nlohmann::json truth = scene_to_json(scene, 64);
  EXPECT_TRUE(score_shapes(img, truth).all_correct());

  nlohmann::json wrong_shape = truth;
  wrong_shape["objects"][0]["shape"] = "hexagon";
  ShapesScore s1 = score_shapes(img, wrong_shape);
  EXPECT_FALSE(s1.objects[0].shape);
  EXPECT_EQ(s1.objects[0].detected_shape, "star");
  EXPECT_FALSE(s1.all_correct());

  nlohmann::json wrong_colour = truth;
  wrong_colour["objects"][1]["colour"] = "green";
  EXPECT_FALSE(score_shapes(img, wrong_colour).objects[1].colour);

  nlohmann::json wrong_relation = truth;
  wrong_relation["relations"][0]["relation"] = "right of";
  ShapesScore s3 = score_shapes(img, wrong_relation);
  EXPECT_FALSE(s3.relations[0]);
  EXPECT_FALSE(s3.all_correct());

  nlohmann::json wrong_size = truth;
  wrong_size["objects"][1]["size"] = "large";
  wrong_size["objects"][1]["size_in_caption"] = true;
  EXPECT_FALSE(score_shapes(img, wrong_size).objects[1].size);
  EXPECT_FALSE(score_shapes(img, wrong_size).all_correct());
}

TEST(ShapesVideo, FramesDifferAndMotionMatchesCaption) {
  ShapesVideo video(ShapesVideoOptions{.resolution = 64, .num_frames = 6, .size = 200, .seed = 5});
  std::set<std::string> kinds;
  for (size_t i = 0; i < 60; ++i) {
    ShapesClip clip = video.get(i);
    ASSERT_EQ(clip.frames.size(), 6u);
    ASSERT_EQ(clip.meta["frames"].size(), 6u);
    for (size_t t = 1; t < clip.frames.size(); ++t)
      EXPECT_NE(clip.frames[t].pixels, clip.frames[t - 1].pixels) << clip.caption;
    const auto& motion = clip.meta["motion"];
    const std::string kind = motion["type"];
    kinds.insert(kind);
    // Score every frame against its own scene; fitted geometry tracks the motion.
    std::vector<ShapesObjectScore> fits;
    for (size_t t = 0; t < clip.frames.size(); ++t) {
      ShapesScore score = score_shapes(clip.frames[t], clip.meta["frames"][t]);
      ASSERT_TRUE(score.objects[0].found) << clip.caption << " frame " << t;
      fits.push_back(score.objects[0]);
    }
    const ShapesObjectScore &first = fits.front(), &last = fits.back();
    if (kind == "move") {
      const std::string dir = motion["direction"];
      EXPECT_NE(clip.caption.find(dir), std::string::npos);
      double dx = last.x - first.x, dy = last.y - first.y;
      // 0.4 of 64 px = 25.6 px along the named direction, none across it.
      double along = dir == "right" ? dx : dir == "left" ? -dx : dir == "down" ? dy : -dy;
      double across = dir == "right" || dir == "left" ? dy : dx;
      EXPECT_NEAR(along, 25.6, 1.0) << clip.caption;
      EXPECT_NEAR(across, 0.0, 1.0) << clip.caption;
      for (size_t t = 1; t < fits.size(); ++t)
        EXPECT_GT(std::abs(fits[t].x - fits[t - 1].x) + std::abs(fits[t].y - fits[t - 1].y), 3.0);
    } else if (kind == "rotate") {
      EXPECT_NE(clip.caption.find(motion["direction"].get<std::string>()), std::string::npos);
      EXPECT_NEAR(last.x, first.x, 1.5) << clip.caption;
      EXPECT_NEAR(last.y, first.y, 1.5) << clip.caption;
      EXPECT_TRUE(first.shape) << clip.caption;  // upright at the start
    } else if (kind == "colour") {
      const std::string from = motion["from"], to = motion["to"];
      EXPECT_NE(clip.caption.find("from " + from + " to " + to), std::string::npos);
      EXPECT_EQ(clip.meta["frames"][0]["objects"][0]["colour"], from);
      EXPECT_EQ(clip.meta["frames"][5]["objects"][0]["colour"], to);
      EXPECT_TRUE(first.colour && last.colour);
      int x = static_cast<int>(clip.meta["frames"][5]["objects"][0]["x"].get<double>());
      int y = static_cast<int>(clip.meta["frames"][5]["objects"][0]["y"].get<double>());
      const NamedColour& c = kShapeColours[parse_colour(to)];
      if (clip.meta["frames"][5]["objects"][0]["shape"] != "ring") {
        EXPECT_EQ(rgb_at(clip.frames[5], x, y), (std::array<int, 3>{c.rgb[0], c.rgb[1], c.rgb[2]}));
      }
    } else {
      bool grow = kind == "grow";
      bool says = grow ? clip.caption.find("grow") != std::string::npos ||
                             clip.caption.find("bigger") != std::string::npos
                       : clip.caption.find("shrink") != std::string::npos ||
                             clip.caption.find("smaller") != std::string::npos;
      EXPECT_TRUE(says) << clip.caption;
      if (grow) {
        EXPECT_GT(last.radius, first.radius * 1.4) << clip.caption;
      } else {
        EXPECT_LT(last.radius, first.radius / 1.4) << clip.caption;
      }
    }
  }
  EXPECT_EQ(kinds.size(), 5u);
  // Deterministic.
  EXPECT_EQ(video.get(3).frames[2].pixels, video.get(3).frames[2].pixels);
  EXPECT_EQ(video.get(3).caption, video.get(3).caption);
}

TEST(ShapesVideo, HeldOutShapeMotionPairsStayOutOfTraining) {
  const size_t n = 400;
  ShapesVideo train(ShapesVideoOptions{.resolution = 32, .num_frames = 2, .size = n});
  ShapesVideo held(ShapesVideoOptions{.resolution = 32, .num_frames = 2, .split = Split::HeldOut, .size = n});
  std::set<std::string> train_shapes, train_motions, held_pairs;
  for (size_t i = 0; i < n; ++i) {
    const ShapesClip t = train.get(i);
    const std::string shape = t.meta["frames"][0]["objects"][0]["shape"], label = t.meta["motion"]["label"];
    EXPECT_FALSE(is_held_out_motion(parse_shape(shape), label)) << t.caption;
    EXPECT_FALSE(t.meta["motion"]["heldout"].get<bool>()) << t.caption;
    for (const auto& frame : t.meta["frames"])
      for (const auto& o : frame["objects"]) EXPECT_FALSE(o["heldout"].get<bool>()) << t.caption;
    train_shapes.insert(shape), train_motions.insert(label);

    const ShapesClip h = held.get(i);
    const std::string hshape = h.meta["frames"][0]["objects"][0]["shape"], hlabel = h.meta["motion"]["label"];
    EXPECT_TRUE(is_held_out_motion(parse_shape(hshape), hlabel)) << h.caption;
    EXPECT_TRUE(h.meta["motion"]["heldout"].get<bool>()) << h.caption;
    held_pairs.insert(hshape + " " + hlabel);
  }
  // Every shape and every motion is still trained on; every held-out pair is asked for.
  EXPECT_EQ(train_shapes.size(), static_cast<size_t>(kNumShapeKinds));
  EXPECT_EQ(train_motions.size(), kHeldOutMotions.size());
  EXPECT_EQ(held_pairs.size(), kHeldOutMotions.size());
  for (const auto& p : kHeldOutMotions) EXPECT_TRUE(train_motions.count(p.motion)) << p.motion;
}

// A one-frame clip is the first frame of every longer clip of the same index: images and clips
// of one dataset (a video model's image bucket) show the same scenes.
TEST(ShapesVideo, OneFrameClipIsTheFirstFrame) {
  const ShapesVideo one(ShapesVideoOptions{.resolution = 32, .num_frames = 1, .size = 20});
  const ShapesVideo nine(ShapesVideoOptions{.resolution = 32, .num_frames = 9, .size = 20});
  for (size_t i = 0; i < 20; ++i) {
    const ShapesClip a = one.get(i), b = nine.get(i);
    ASSERT_EQ(a.frames.size(), 1u);
    EXPECT_EQ(a.caption, b.caption);
    EXPECT_EQ(a.frames[0].pixels, b.frames[0].pixels) << i;
  }
}

}  // namespace
}  // namespace genvis::data
