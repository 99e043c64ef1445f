// The DAMSM recipe at tiny size on the shapes dataset: it trains (the matching loss falls),
// saves a loadable DamsmEncoder, evaluates R-precision above chance, skips finished stages and
// reports bad configs at once.
#include "core/error.h"
#include "core/file.h"
#include "models/damsm/damsm_encoder.h"
#include "support/metrics_log.h"
#include "support/test_support.h"
#include "train/damsm_recipe.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json tiny_damsm_recipe() {
  return json::parse(R"({
    "seed": 3,
    "dataset": {"name": "shapes", "resolution": 16, "size": 300},
    "tokenizer": {"vocab_size": 600},
    "model": {"embedding_dim": 32,
              "text_config": {"word_embedding_dim": 24, "max_length": 8, "dropout": 0.0},
              "vision_config": {"block_out_channels": [16, 32, 32], "norm_num_groups": 8, "region_level": 1}},
    "batch_size": 32,
    "eval": {"num": 60, "k": 10},
    "train": {"steps": 120, "lr": 0.005, "warmup_steps": 5, "checkpoint_every": 60, "log_every": 1}
  })");
}

using test::losses;
using test::mean_of;

TEST(DamsmRecipe, TrainsSavesEvaluatesAndSkipsWhenDone) {
  test::TempDir dir;
  const auto config = DamsmRecipeConfig::from_json(tiny_damsm_recipe());
  const auto r = run_damsm_recipe(config, {.out_dir = dir.path()});
  EXPECT_FALSE(r.interrupted);
  // The loss falls: the mean of the last 10 steps well under the first 10's.
  EXPECT_EQ(r.ran, (std::vector<std::string>{"tokenizer", "data", "train", "save", "eval"}));
  const auto l = losses(fs::path(dir.path()) / "train" / "metrics.jsonl");
  ASSERT_EQ(l.size(), 120u);
  // From chance (4 log 32 = 13.9 at batch 32) down: DAMSM learns slowly (AttnGAN trains it for
  // hundreds of epochs), so a tiny run shows a clear but modest fall.
  EXPECT_LT(mean_of(l, 110, 10), 0.92 * mean_of(l, 0, 10));
  // The folder loads, and real images find their captions far above chance (1/k = 0.1).
  const auto damsm = models::DamsmEncoder::load(r.model_dir);
  EXPECT_EQ(damsm.config().vision_config.image_size, 16);
  EXPECT_EQ(damsm.config().text_config.vocab_size, damsm.tokenizer().vocab_size());
  ASSERT_TRUE(r.eval.contains("splits"));
  const double train_r = r.eval["splits"]["train"]["r_precision"].get<double>();
  EXPECT_GT(train_r, 0.2) << r.eval.dump();  // chance: 1/k = 0.1
  EXPECT_TRUE(fs::exists(fs::path(dir.path()) / "eval.json"));
  // Everything done: a second run skips every stage.
  const auto again = run_damsm_recipe(config, {.out_dir = dir.path()});
  EXPECT_TRUE(again.ran.empty());
  EXPECT_EQ(again.eval, r.eval);
}

TEST(DamsmRecipeConfig, ListsEveryBadKeyAtOnceAndParsesTheShippedConfig) {
  json j = tiny_damsm_recipe();
  j["colour"] = 1;
  j["model"]["vision_config"]["image_size"] = 32;      // derived from dataset.resolution
  j["model"]["text_config"]["vocab_size"] = 700;       // derived from the tokenizer
  j["model"]["vision_config"]["region_level"] = 5;
  j["batch_size"] = 1;
  try {
    DamsmRecipeConfig::from_json(j, "bad.json");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    for (const char* part : {"bad.json", "unknown key config.colour", "image_size", "vocab_size", "region_level", "batch_size"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in " << what;
  }
  const auto shipped = DamsmRecipeConfig::from_file(std::string(GENVIS_SOURCE_DIR) + "/configs/damsm-emoji.json");
  EXPECT_EQ(shipped.dataset.name, "emoji");
  EXPECT_EQ(shipped.dataset.resolution, 64);
}

}  // namespace
}  // namespace genvis::train
