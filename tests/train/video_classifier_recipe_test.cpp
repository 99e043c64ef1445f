// The video encoder recipe at toy size on shapes-video: the loss falls, heads and classes come
// from the clips' meta, the saved folder loads and labels clips, eval.json holds each head's
// held-out accuracy (above chance for motion), reruns skip, a resumed training equals an
// uninterrupted one, and config mistakes are reported at once.
#include "core/error.h"
#include "data/registry.h"
#include "eval/video_metrics.h"
#include "io/image_tensor.h"
#include "models/video_classifier/video_classifier.h"
#include "support/metrics_log.h"
#include "support/test_support.h"
#include "train/video_classifier_recipe.h"

#include <filesystem>
#include <fstream>
#include <set>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::losses;
using test::mean_of;

json tiny_video_classifier_recipe() {
  return json::parse(R"({
    "seed": 3,
    "dataset": {"name": "shapes-video", "resolution": 16, "size": 192},
    "frames": 5,
    "heads": [{"name": "motion", "key": "/motion/type"}, {"name": "colour", "key": "/frames/0/objects/0/colour"}],
    "model": {"block_out_channels": [8, 16], "norm_num_groups": 4, "feature_dim": 16},
    "batch_size": 32,
    "eval": {"split": "heldout", "num": 96},
    "train": {"steps": 60, "lr": 1e-2, "warmup_steps": 4, "checkpoint_every": 1000, "log_every": 1000}
  })");
}

// Clips [0, n) of shapes-video as [n,3,T,S,S] in [0,1] with their metas.
// (The recipe's dataset seed, 3: its evaluation clips.)
at::Tensor clips_of(const std::string& split, int64_t n, int frames, int side, std::vector<json>* metas = nullptr) {
  const auto ds = data::make_video_dataset(
      {.name = "shapes-video", .resolution = side, .num_frames = frames, .split = data::parse_split(split), .seed = 3});
  std::vector<at::Tensor> rows;
  for (int64_t i = 0; i < n; ++i) {
    const auto c = ds->get(static_cast<size_t>(i));
    std::vector<at::Tensor> f;
    for (const auto& img : c.frames) f.push_back((io::image_to_tensor(img) + 1) / 2);
    rows.push_back(at::stack(f, 2));
    if (metas) metas->push_back(c.meta);
  }
  return at::cat(rows);
}

TEST(VideoClassifierRecipe, TrainsSavesEvaluatesAndSkipsWhenDone) {
  test::TempDir dir;
  const auto config = VideoClassifierRecipeConfig::from_json(tiny_video_classifier_recipe());
  const auto r = run_video_classifier_recipe(config, {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  EXPECT_EQ(r.ran, (std::vector<std::string>{"data", "train", "save", "eval"}));
  const auto l = losses(fs::path(dir.path()) / "train" / "metrics.jsonl");
  ASSERT_EQ(l.size(), 60u);
  EXPECT_LT(mean_of(l, 52, 8), 0.8 * mean_of(l, 0, 8));

  // The folder: image_size from the dataset; each head's classes the sorted distinct meta values.
  auto enc = models::VideoClassifier::load(r.model_dir);
  EXPECT_EQ(enc.config().image_size, 16);
  ASSERT_EQ(enc.config().heads.size(), 2u);
  EXPECT_EQ(enc.config().heads[0].name, "motion");
  const auto& motions = enc.config().heads[0].classes;
  EXPECT_TRUE(std::is_sorted(motions.begin(), motions.end()));
  EXPECT_EQ(std::set<std::string>(motions.begin(), motions.end()),
            (std::set<std::string>{"colour", "grow", "move", "rotate", "shrink"}));
  // Any frame count and size: a 1-frame 24 px clip gives features too.
  EXPECT_EQ(enc.run(torch::rand({2, 3, 1, 24, 24})).features.sizes(), (std::vector<int64_t>{2, 16}));

  // eval.json: each head's accuracy on 96 held-out clips; colour well above chance (16 px clips
  // of small objects: 60 steps teach colour, not yet motion).
  const json e = json::parse(std::ifstream(fs::path(dir.path()) / "eval.json"));
  EXPECT_EQ(r.eval, e);
  EXPECT_EQ(e["split"], "heldout");
  EXPECT_EQ(e["num"], 96);
  EXPECT_EQ(e["heads"]["motion"]["num"], 96);
  const double colours = static_cast<double>(enc.config().heads[1].classes.size());
  EXPECT_GT(e["heads"]["colour"]["accuracy"].get<double>(), 3.0 / colours);
  // The same number recomputed from the loaded encoder.
  std::vector<json> metas;
  const at::Tensor held = clips_of("heldout", 96, 5, 16, &metas);
  const at::Tensor predicted = enc.run(held).logits[0].argmax(1);
  int64_t correct = 0;
  for (int64_t i = 0; i < 96; ++i) correct += predicted[i].item<int64_t>() == enc.labels_of(metas[static_cast<size_t>(i)])[0];
  EXPECT_NEAR(e["heads"]["motion"]["accuracy"].get<double>(), static_cast<double>(correct) / 96.0, 1e-9);

  // The FVD analogue: real held-out clips against real training clips are closer than against the
  // same clips with their frames frozen (the first frame repeated), and the heads' accuracies are
  // those above.
  const at::Tensor train_features = enc.run(clips_of("train", 96, 5, 16)).features;
  const auto real = eval::video_encoder_metrics(enc, "enc", held, metas, train_features);
  const auto frozen = eval::video_encoder_metrics(enc, "enc", held.narrow(2, 0, 1).expand_as(held).contiguous(), metas,
                                                  train_features);
  EXPECT_LT(real["FVD[enc]"].get<double>(), frozen["FVD[enc]"].get<double>());
  EXPECT_NEAR(real["motion_accuracy[enc]"].get<double>(), static_cast<double>(correct) / 96.0, 1e-9);
  EXPECT_TRUE(real.contains("colour_accuracy[enc]"));

  const auto again = run_video_classifier_recipe(config, {.out_dir = dir.path()});
  EXPECT_TRUE(again.ran.empty());
  EXPECT_EQ(again.eval, e);
}

TEST(VideoClassifierRecipe, ResumedTrainingEqualsUninterruptedOne) {
  test::TempDir dir;
  json j = tiny_video_classifier_recipe();
  j["dataset"]["size"] = 64;
  j["train"]["steps"] = 6;
  j["train"]["checkpoint_every"] = 3;
  j["train"]["validate_every"] = 3;
  j["eval"]["num"] = 16;
  const auto config = VideoClassifierRecipeConfig::from_json(j);
  const fs::path out = dir.path();
  const auto full = run_video_classifier_recipe(config, {.out_dir = out.string()});
  const auto full_losses = losses(out / "train" / "metrics.jsonl");
  const at::Tensor probe = torch::rand({4, 3, 5, 16, 16});
  const at::Tensor full_features = models::VideoClassifier::load(full.model_dir).run(probe).features;

  fs::remove(out / "model" / "config.json");
  fs::remove(out / "eval.json");
  fs::remove_all(out / "train" / "checkpoints" / "step-00000006");
  test::write_bytes((out / "train" / "checkpoints" / "latest").string(), "step-00000003\n");
  EXPECT_THROW(run_video_classifier_recipe(config, {.out_dir = out.string()}), UsageError);
  const auto resumed = run_video_classifier_recipe(config, {.out_dir = out.string(), .resume = true});
  EXPECT_EQ(resumed.ran, (std::vector<std::string>{"data", "train", "save", "eval"}));
  EXPECT_EQ(losses(out / "train" / "metrics.jsonl"), full_losses);
  EXPECT_TRUE(torch::equal(models::VideoClassifier::load(resumed.model_dir).run(probe).features, full_features));
  EXPECT_EQ(resumed.eval, full.eval);
  std::ifstream in(out / "train" / "validation.jsonl");
  std::vector<int64_t> steps;
  for (std::string line; std::getline(in, line);) steps.push_back(json::parse(line)["step"].get<int64_t>());
  EXPECT_EQ(steps, (std::vector<int64_t>{3}));
}

TEST(VideoClassifierRecipe, HeadKeyMissingFromTheClipsIsNamed) {
  test::TempDir dir;
  json j = tiny_video_classifier_recipe();
  j["dataset"]["size"] = 8;
  j["heads"][1]["key"] = "/frames/0/objects/0/texture";
  try {
    run_video_classifier_recipe(VideoClassifierRecipeConfig::from_json(j), {.out_dir = dir.path()});
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("/frames/0/objects/0/texture"), std::string::npos) << e.what();
  }
}

TEST(VideoClassifierRecipeConfig, ListsEveryBadKeyAtOnce) {
  json j = tiny_video_classifier_recipe();
  j["colour"] = "blue";
  j.erase("batch_size");
  j["frames"] = 0;
  j["heads"][0]["weight"] = 2;
  j["heads"][1].erase("key");
  j["model"]["image_size"] = 64;
  j["eval"]["split"] = "validation";
  j["train"]["stepz"] = 3;
  try {
    VideoClassifierRecipeConfig::from_json(j, "bad.json");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    for (const char* part : {"bad.json", "unknown key config.colour", "missing key config.batch_size",
                             "frames must be in 1..256", "unknown key heads[0].weight", "missing key heads[1].key",
                             "model.image_size is set by the recipe", "eval.split", "stepz"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
  }
  json image = tiny_video_classifier_recipe();
  image["dataset"]["name"] = "shapes";
  EXPECT_THROW(VideoClassifierRecipeConfig::from_json(image), UsageError);
  json bad_model = tiny_video_classifier_recipe();
  bad_model["model"]["norm_num_groups"] = 3;
  EXPECT_THROW(VideoClassifierRecipeConfig::from_json(bad_model), UsageError);
}

TEST(VideoClassifierRecipeConfig, ShippedConfigParses) {
  const auto c = VideoClassifierRecipeConfig::from_file(std::string(GENVIS_SOURCE_DIR) + "/configs/video-encoder-shapes.json");
  EXPECT_EQ(c.dataset.name, "shapes-video");
  EXPECT_EQ(c.eval.split, "heldout");
  EXPECT_EQ(c.heads.size(), 3u);
}

}  // namespace
}  // namespace genvis::train
