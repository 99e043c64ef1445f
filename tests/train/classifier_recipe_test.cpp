// The image classifier recipe at toy size on a slice of Fashion-MNIST: the loss falls, the saved
// folder loads, eval.json holds accuracy, per-class accuracy and the confusion matrix, reruns
// skip, a resumed training equals an uninterrupted one, and config mistakes are reported at once.
#include "core/error.h"
#include "data/fashion_mnist.h"
#include "models/classifier/image_classifier.h"
#include "support/metrics_log.h"
#include "support/test_support.h"
#include "train/classifier_recipe.h"

#include <filesystem>
#include <fstream>
#include <numeric>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::losses;
using test::mean_of;

bool have_fashion_mnist() {
  const std::string dir = data::kDefaultFashionMnistDir;
  return fs::exists(dir + "/train-images-idx3-ubyte.gz") && fs::exists(dir + "/t10k-labels-idx1-ubyte.gz");
}

#define REQUIRE_FASHION_MNIST()                                                                    \
  do {                                                                                             \
    if (!have_fashion_mnist())                                                                     \
      GTEST_SKIP() << "needs the Debian package dataset-fashion-mnist (" << data::kDefaultFashionMnistDir << ")"; \
  } while (0)

json tiny_recipe() {
  return json::parse(R"({
    "seed": 1,
    "dataset": {"name": "fashion-mnist", "resolution": 16, "size": 256},
    "model": {"in_channels": 1, "block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4,
              "feature_dim": 16, "num_classes": 10},
    "batch_size": 32,
    "label_smoothing": 0.05,
    "augment": {"hflip": true, "shift": 0.1},
    "eval": {"split": "heldout", "num": 100},
    "train": {"steps": 40, "lr": 1e-2, "warmup_steps": 4, "checkpoint_every": 1000, "log_every": 1000}
  })");
}

TEST(ClassifierRecipe, TrainsSavesEvaluatesAndSkipsWhenDone) {
  REQUIRE_FASHION_MNIST();
  test::TempDir dir;
  const auto config = ClassifierRecipeConfig::from_json(tiny_recipe());
  const auto r = run_classifier_recipe(config, {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  EXPECT_EQ(r.ran, (std::vector<std::string>{"data", "train", "save", "eval"}));

  const auto l = losses(fs::path(dir.path()) / "train" / "metrics.jsonl");
  ASSERT_EQ(l.size(), 40u);
  EXPECT_LT(mean_of(l, 32, 8), 0.8 * mean_of(l, 0, 8));

  // The folder is an ImageClassifier: image_size from the dataset, class names from the data.
  auto clf = models::ImageClassifier::load(r.model_dir);
  EXPECT_EQ(clf.config().image_size, 16);
  ASSERT_EQ(clf.config().class_names.size(), 10u);
  EXPECT_EQ(clf.config().class_names[9], "Ankle boot");
  EXPECT_EQ(clf.features(torch::rand({2, 3, 28, 28})).sizes(), (std::vector<int64_t>{2, 16}));

  // eval.json: accuracy on the first 100 t10k images, per class, and the confusion matrix.
  const json e = json::parse(std::ifstream(fs::path(dir.path()) / "eval.json"));
  EXPECT_EQ(r.eval, e);
  EXPECT_EQ(e["metric"], "accuracy");
  EXPECT_EQ(e["split"], "heldout");
  EXPECT_EQ(e["num"], 100);
  EXPECT_GT(e["accuracy"].get<double>(), 0.3);  // chance is 0.1
  ASSERT_EQ(e["per_class"].size(), 10u);
  EXPECT_EQ(e["per_class"][0]["class"], "T-shirt/top");
  int64_t total = 0, correct = 0;
  for (int64_t i = 0; i < 10; ++i) {
    for (int64_t j = 0; j < 10; ++j) total += e["confusion"][i][j].get<int64_t>();
    correct += e["confusion"][i][i].get<int64_t>();
    EXPECT_EQ(e["per_class"][i]["num"], std::accumulate(e["confusion"][i].begin(), e["confusion"][i].end(), int64_t{0},
                                                         [](int64_t s, const json& v) { return s + v.get<int64_t>(); }));
  }
  EXPECT_EQ(total, 100);
  EXPECT_DOUBLE_EQ(e["accuracy"].get<double>(), static_cast<double>(correct) / 100.0);

  const auto again = run_classifier_recipe(config, {.out_dir = dir.path()});
  EXPECT_TRUE(again.ran.empty());
  EXPECT_EQ(again.eval, e);
}

TEST(ClassifierRecipe, ResumedTrainingEqualsUninterruptedOne) {
  REQUIRE_FASHION_MNIST();
  test::TempDir dir;
  json j = tiny_recipe();
  j["train"]["steps"] = 6;
  j["train"]["checkpoint_every"] = 3;
  j["train"]["validate_every"] = 3;
  j["eval"]["num"] = 20;
  const auto config = ClassifierRecipeConfig::from_json(j);
  const fs::path out = dir.path();
  const auto full = run_classifier_recipe(config, {.out_dir = out.string()});
  const auto full_losses = losses(out / "train" / "metrics.jsonl");
  const at::Tensor probe = torch::rand({8, 1, 16, 16});
  const at::Tensor full_logits = models::ImageClassifier::load(full.model_dir).logits(probe);

  // Pretend the run stopped after step 3: the model, eval.json and the step-6 checkpoint gone.
  fs::remove(out / "model" / "config.json");
  fs::remove(out / "eval.json");
  fs::remove_all(out / "train" / "checkpoints" / "step-00000006");
  test::write_bytes((out / "train" / "checkpoints" / "latest").string(), "step-00000003\n");
  EXPECT_THROW(run_classifier_recipe(config, {.out_dir = out.string()}), UsageError);
  const auto resumed = run_classifier_recipe(config, {.out_dir = out.string(), .resume = true});
  EXPECT_EQ(resumed.ran, (std::vector<std::string>{"data", "train", "save", "eval"}));
  EXPECT_EQ(losses(out / "train" / "metrics.jsonl"), full_losses);
  EXPECT_TRUE(torch::equal(models::ImageClassifier::load(resumed.model_dir).logits(probe), full_logits));
  EXPECT_EQ(resumed.eval, full.eval);
  // The validation log holds step 3 once.
  std::ifstream in(out / "train" / "validation.jsonl");
  std::vector<int64_t> steps;
  for (std::string line; std::getline(in, line);) steps.push_back(json::parse(line)["step"].get<int64_t>());
  EXPECT_EQ(steps, (std::vector<int64_t>{3}));
}

TEST(ClassifierRecipeConfig, ListsEveryBadKeyAtOnce) {
  json j = tiny_recipe();
  j["colour"] = "blue";
  j.erase("batch_size");
  j["augment"]["rotate"] = 10;
  j["augment"]["shift"] = 0.9;
  j["label_smoothing"] = 1.5;
  j["eval"]["split"] = "validation";
  j["model"]["image_size"] = 64;
  j["model"]["depth"] = 2;
  j["model"]["num_classes"] = 1;
  j["train"]["stepz"] = 3;
  j["dataset"].erase("resolution");
  try {
    ClassifierRecipeConfig::from_json(j, "bad.json");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    for (const char* part : {"bad.json", "unknown key config.colour", "missing key config.batch_size",
                             "unknown key augment.rotate", "augment.shift must be in [0, 0.5]",
                             "label_smoothing must be in [0, 1)", "eval.split", "image_size is set by the recipe",
                             "unknown key depth", "num_classes must be >= 2", "stepz", "missing key dataset.resolution"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
  }
}

TEST(ClassifierRecipeConfig, ShippedConfigParses) {
  const auto c = ClassifierRecipeConfig::from_file(std::string(GENVIS_SOURCE_DIR) + "/configs/fmnist-classifier.json");
  EXPECT_EQ(c.dataset.name, "fashion-mnist");
  EXPECT_EQ(c.dataset.resolution, 28);
  EXPECT_EQ(c.eval.split, "heldout");
}

}  // namespace
}  // namespace genvis::train
