// The dVAE recipe at tiny size: training with the annealed temperature and KL weight, the
// validation log, the exported folder (loads strictly, decodes what it encodes), the
// reconstruction report against a recomputation, exact resume, skipped stages and config errors.
#include "core/error.h"
#include "io/weights.h"
#include "models/dalle/dalle_io.h"
#include "support/test_support.h"
#include "train/dvae_recipe.h"

#include <filesystem>
#include <fstream>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json tiny_dvae_recipe(int64_t steps) {
  json j = json::parse(R"({
    "seed": 3,
    "dataset": {"name": "shapes", "resolution": 16, "size": 60},
    "model": {"hidden_size": 4, "num_groups": 2, "vocab_size": 16, "embedding_dim": 8},
    "loss": {"kl_weight": 1.0, "kl_warmup_steps": 2, "temperature_steps": 4, "foreground_weight": 5.0},
    "batch_size": 4,
    "report": {"num": 20},
    "train": {"steps": 4, "lr": 0.002, "min_lr": 0.002, "checkpoint_every": 3, "validate_every": 2, "log_every": 1}
  })");
  j["train"]["steps"] = steps;
  return j;
}

TEST(DVAERecipe, TrainsReportsExportsAndResumesExactly) {
  test::TempDir dir;
  const auto r = run_dvae_recipe(DVAERecipeConfig::from_json(tiny_dvae_recipe(4)), {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  EXPECT_EQ(r.ran, (std::vector<std::string>{"data", "train", "export", "report"}));
  // Validation at steps 2 and 4 with the schedules' values.
  const auto records = test::read_jsonl(fs::path(dir.path()) / "train" / "validation.jsonl");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1]["step"], 4);
  EXPECT_NEAR(records[1]["temperature"].get<double>(), 1.0 / 16, 1e-12);
  EXPECT_NEAR(records[0]["kl_weight"].get<double>(), 1.0, 1e-12);
  // The report is what the exported model gives on the first report.num images.
  models::DiscreteVAE vae = models::load_dvae(r.model_dir);
  EXPECT_EQ(vae->config.image_size, 16);
  EXPECT_EQ(r.report["images"], 20);
  EXPECT_EQ(r.report["vocab_size"], 16);
  EXPECT_GT(r.report["perplexity"].get<double>(), 1.0);
  EXPECT_LE(r.report["perplexity"].get<double>(), 16.0);
  EXPECT_GT(r.report["psnr"].get<double>(), 5.0);
  EXPECT_EQ(json::parse(std::ifstream(fs::path(dir.path()) / "reconstruction.json")), r.report);
  EXPECT_FALSE(fs::is_empty(fs::path(dir.path()) / "samples"));
  // A second run skips everything.
  const auto again = run_dvae_recipe(DVAERecipeConfig::from_json(tiny_dvae_recipe(4)), {.out_dir = dir.path()});
  EXPECT_TRUE(again.ran.empty());
  EXPECT_EQ(again.report, r.report);

  // 4 steps straight equal 3 steps, then resume to 4 (a constant learning rate: the schedule's
  // length is train.steps).
  test::TempDir split;
  run_dvae_recipe(DVAERecipeConfig::from_json(tiny_dvae_recipe(3)), {.out_dir = split.path()});
  fs::remove_all(fs::path(split.path()) / "model");
  fs::remove(fs::path(split.path()) / "reconstruction.json");
  EXPECT_THROW(run_dvae_recipe(DVAERecipeConfig::from_json(tiny_dvae_recipe(4)), {.out_dir = split.path()}), UsageError);
  const auto resumed =
      run_dvae_recipe(DVAERecipeConfig::from_json(tiny_dvae_recipe(4)), {.out_dir = split.path(), .resume = true});
  const auto weights = [](const std::string& model) {
    return test::flat_weights(fs::path(model) / "model.safetensors");
  };
  EXPECT_TRUE(weights(resumed.model_dir).equal(weights(r.model_dir)));
}

TEST(DVAERecipe, ConfigErrorsAtOnce) {
  json j = tiny_dvae_recipe(4);
  j["loss"]["reconstruction"] = "l1";
  j["batch_size"] = 0;
  j["loss"]["foreground_weight"] = -1;
  j["colour"] = 1;
  j["model"]["image_size"] = 32;
  try {
    DVAERecipeConfig::from_json(j, "bad.json");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    for (const char* part : {"bad.json", "reconstruction", "batch_size", "foreground_weight", "unknown key colour"})
      EXPECT_NE(m.find(part), std::string::npos) << part << " in " << m;
  }
  json k = tiny_dvae_recipe(4);
  k["model"]["image_size"] = 32;
  EXPECT_THROW(DVAERecipeConfig::from_json(k), UsageError);
  json g = tiny_dvae_recipe(4);
  g["model"]["num_groups"] = 9;
  EXPECT_THROW(DVAERecipeConfig::from_json(g), UsageError);
}

}  // namespace
}  // namespace genvis::train
