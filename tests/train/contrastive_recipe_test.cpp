// The contrastive encoder recipe at toy size: the loss falls, the saved folder loads, real-image
// R-precision is written, reruns skip, and config mistakes are reported all at once.
#include "core/error.h"
#include "models/contrastive/contrastive_encoder.h"
#include "support/metrics_log.h"
#include "support/test_support.h"
#include "train/contrastive_recipe.h"

#include <filesystem>
#include <fstream>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json tiny_contrastive_recipe() {
  return json::parse(R"({
    "seed": 1,
    "dataset": {"name": "shapes", "resolution": 16, "size": 96},
    "tokenizer": {"vocab_size": 600},
    "model": {"projection_dim": 16,
              "vision_config": {"block_out_channels": [16, 32], "layers_per_block": 1, "norm_num_groups": 8},
              "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "max_position_embeddings": 24}},
    "batch_size": 24,
    "augment": {"hflip": true, "scale": [0.9, 1.1], "shift": 0.05, "noise": 0.02},
    "eval": {"num": 16, "k": 8},
    "train": {"steps": 40, "lr": 3e-3, "warmup_steps": 5, "checkpoint_every": 1000, "log_every": 1000,
              "autocast": "bf16"}
  })");
}

using test::losses;
using test::mean_of;

TEST(ContrastiveRecipe, TrainsSavesEvaluatesAndSkipsWhenDone) {
  test::TempDir dir;
  const auto config = ContrastiveRecipeConfig::from_json(tiny_contrastive_recipe());
  const auto r = run_contrastive_recipe(config, {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  EXPECT_EQ(r.ran, (std::vector<std::string>{"tokenizer", "data", "train", "save", "eval"}));

  const auto l = losses(fs::path(dir.path()) / "train" / "metrics.jsonl");
  ASSERT_EQ(l.size(), 40u);
  EXPECT_LT(mean_of(l, 32, 8), 0.8 * mean_of(l, 0, 8));

  // The folder is a ContrastiveEncoder; the recipe's derived keys are in its config.
  auto enc = models::ContrastiveEncoder::load(r.model_dir);
  EXPECT_EQ(enc.config().vision_config.image_size, 16);
  EXPECT_EQ(enc.config().text_config.vocab_size, enc.tokenizer().vocab_size());
  EXPECT_EQ(enc.embed_texts({"a red circle"}).size(1), 16);

  // eval.json: R-precision of real images for the train and held-out splits.
  const json e = json::parse(std::ifstream(fs::path(dir.path()) / "eval.json"));
  EXPECT_EQ(e["metric"], "r_precision");
  EXPECT_EQ(e["k"], 8);
  for (const char* split : {"train", "heldout"}) {
    ASSERT_TRUE(e["splits"].contains(split)) << e.dump();
    const double v = e["splits"][split]["r_precision"].get<double>();
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
  EXPECT_EQ(r.eval, e);

  const auto again = run_contrastive_recipe(config, {.out_dir = dir.path()});
  EXPECT_TRUE(again.ran.empty());
  EXPECT_EQ(again.eval, e);
}

TEST(ContrastiveRecipe, UnfinishedTrainingNeedsResume) {
  test::TempDir dir;
  json j = tiny_contrastive_recipe();
  j["train"]["steps"] = 4;
  j["train"]["checkpoint_every"] = 2;
  j["eval"]["num"] = 0;
  auto config = ContrastiveRecipeConfig::from_json(j);
  run_contrastive_recipe(config, {.out_dir = dir.path()});
  // Pretend it stopped: remove the saved model, keep the checkpoints.
  fs::remove(fs::path(dir.path()) / "model" / "config.json");
  fs::remove(fs::path(dir.path()) / "eval.json");
  j["train"]["steps"] = 6;
  config = ContrastiveRecipeConfig::from_json(j);
  EXPECT_THROW(run_contrastive_recipe(config, {.out_dir = dir.path()}), UsageError);
  const auto r = run_contrastive_recipe(config, {.out_dir = dir.path(), .resume = true});
  EXPECT_EQ(losses(fs::path(dir.path()) / "train" / "metrics.jsonl").size(), 6u);
  EXPECT_TRUE(fs::exists(fs::path(r.model_dir) / "config.json"));
}

TEST(ContrastiveRecipeConfig, ListsEveryBadKeyAtOnce) {
  json j = tiny_contrastive_recipe();
  j["colour"] = "blue";
  j.erase("batch_size");
  j["augment"]["rotate"] = 10;
  j["augment"]["shift"] = 0.9;
  j["model"]["vision_config"]["image_size"] = 64;
  j["model"]["text_config"]["eos_token_id"] = 5;
  j["model"]["text_config"]["layers"] = 2;
  j["train"]["stepz"] = 3;
  try {
    ContrastiveRecipeConfig::from_json(j, "bad.json");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    for (const char* part : {"bad.json", "unknown key config.colour", "missing key config.batch_size",
                             "unknown key augment.rotate", "augment.shift must be in [0, 0.5]",
                             "image_size is set by the recipe", "eos_token_id is set by the recipe",
                             "unknown key text_config.layers", "stepz"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
  }
}

TEST(ContrastiveRecipeConfig, ShippedConfigParses) {
  const auto c = ContrastiveRecipeConfig::from_file(std::string(GENVIS_SOURCE_DIR) + "/configs/contrastive-emoji.json");
  EXPECT_EQ(c.dataset.name, "emoji");
  EXPECT_EQ(c.train.autocast, "bf16");
}

}  // namespace
}  // namespace genvis::train
