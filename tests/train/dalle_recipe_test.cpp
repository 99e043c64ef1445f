// The DALL·E recipe at tiny size: tokenizer, dVAE, code cache and transformer stages, the
// validation log and sample sheet, a folder that loads through the registry and generates,
// exact resume, skipped stages, and config errors at once.
#include "core/error.h"
#include "io/weights.h"
#include "pipelines/registry.h"
#include "support/test_support.h"
#include "train/dalle_recipe.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json tiny_dalle_recipe(int64_t steps) {
  json j = json::parse(R"({
    "seed": 2,
    "dataset": {"name": "shapes", "resolution": 16, "size": 40},
    "tokenizer": {"vocab_size": 600},
    "dvae": {"model": {"hidden_size": 4, "num_groups": 3, "vocab_size": 12, "embedding_dim": 8},
             "batch_size": 4, "report": {"num": 8},
             "train": {"steps": 2, "lr": 0.002, "checkpoint_every": 100, "log_every": 100}},
    "transformer": {"model": {"text_len": 8, "hidden_size": 16, "num_layers": 2, "num_heads": 2, "mlp_ratio": 2,
                              "conv_kernel": 3},
                    "batch_size": 4,
                    "train": {"steps": 4, "lr": 0.003, "min_lr": 0.003, "checkpoint_every": 3, "validate_every": 2,
                              "log_every": 1}},
    "samples": 2
  })");
  j["transformer"]["train"]["steps"] = steps;
  return j;
}

TEST(DalleRecipe, TrainsExportsGeneratesAndResumesExactly) {
  test::TempDir dir;
  const auto r = run_dalle_recipe(DalleRecipeConfig::from_json(tiny_dalle_recipe(4)), {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  EXPECT_EQ(r.ran, (std::vector<std::string>{"tokenizer", "dvae", "codes", "train", "export"}));
  EXPECT_TRUE(fs::exists(fs::path(dir.path()) / "dvae" / "reconstruction.json"));
  const auto records = test::read_jsonl(fs::path(dir.path()) / "train" / "validation.jsonl");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1]["step"], 4);
  EXPECT_NEAR(records[1]["loss"].get<double>(),
              (records[1]["text_loss"].get<double>() + 7 * records[1]["image_loss"].get<double>()) / 8, 1e-5);
  EXPECT_FALSE(fs::is_empty(fs::path(dir.path()) / "samples"));

  auto p = pipelines::load_pipeline({.model = r.model_dir});
  pipelines::Request req;
  req.prompt = "a red circle";
  req.batch = 2;
  const auto out = p->generate(req);
  EXPECT_EQ(out.samples.sizes(), at::IntArrayRef({2, 3, 16, 16}));
  // The CLI names its own flags in the pipeline's errors about extras.
  for (const char* flag : {"--top-p 2", "--temperature -1", "--rerank 0"}) {
    const auto cli = test::run_command(std::string(GENVIS_CLI) + " generate --model " +
                                       test::shell_quote(r.model_dir) + " -p circle " + flag + " -o " +
                                       test::shell_quote(dir.file("bad.png")));
    EXPECT_NE(cli.exit_code, 0) << flag;
    EXPECT_NE(cli.err.find(std::string(flag).substr(0, std::string(flag).find(' '))), std::string::npos) << cli.err;
    EXPECT_EQ(cli.err.find("extras"), std::string::npos) << cli.err;
  }
  EXPECT_TRUE(run_dalle_recipe(DalleRecipeConfig::from_json(tiny_dalle_recipe(4)), {.out_dir = dir.path()}).ran.empty());

  // 3 steps, then resumed to 4, equal 4 straight (the dVAE and codes are reused).
  test::TempDir split;
  run_dalle_recipe(DalleRecipeConfig::from_json(tiny_dalle_recipe(3)), {.out_dir = split.path()});
  fs::remove_all(fs::path(split.path()) / "model");
  EXPECT_THROW(run_dalle_recipe(DalleRecipeConfig::from_json(tiny_dalle_recipe(4)), {.out_dir = split.path()}), UsageError);
  const auto resumed =
      run_dalle_recipe(DalleRecipeConfig::from_json(tiny_dalle_recipe(4)), {.out_dir = split.path(), .resume = true});
  EXPECT_EQ(resumed.ran, (std::vector<std::string>{"train", "export"}));
  const auto weights = [](const std::string& model) {
    return test::flat_weights(fs::path(model) / "transformer" / "model.safetensors");
  };
  EXPECT_TRUE(weights(resumed.model_dir).equal(weights(r.model_dir)));
}

TEST(DalleRecipe, ConfigErrorsAtOnce) {
  json j = tiny_dalle_recipe(4);
  j["transformer"]["model"]["image_vocab_size"] = 7;
  j["transformer"]["caption_dropout"] = 1.5;
  j["dvae"]["loss"] = {{"reconstruction", "l2"}};
  j["colour"] = true;
  try {
    DalleRecipeConfig::from_json(j, "bad.json");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    for (const char* part : {"bad.json", "caption_dropout", "reconstruction", "unknown key colour"})
      EXPECT_NE(m.find(part), std::string::npos) << part << " in " << m;
  }
  json k = tiny_dalle_recipe(4);
  k["transformer"]["model"]["image_vocab_size"] = 7;
  EXPECT_THROW(DalleRecipeConfig::from_json(k), UsageError);
  json g = tiny_dalle_recipe(4);
  g["dvae"] = "/nonexistent/dvae";
  EXPECT_THROW(DalleRecipeConfig::from_json(g), UsageError);
  json h = tiny_dalle_recipe(4);
  h["transformer"]["model"]["hidden_size"] = 15;
  EXPECT_THROW(DalleRecipeConfig::from_json(h), UsageError);
}

}  // namespace
}  // namespace genvis::train
