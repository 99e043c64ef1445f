// The DF-GAN recipe at tiny size: a DAMSM trained first, alternating D/G steps, validation
// records and sample grids, a folder that loads through the pipeline registry and generates
// reproducibly, exact resume with two optimisers, and config errors at once.
#include "core/error.h"
#include "io/weights.h"
#include "pipelines/registry.h"
#include "support/test_support.h"
#include "train/dfgan_recipe.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json tiny_dfgan_recipe(int64_t steps) {
  json j = json::parse(R"({
    "seed": 5,
    "dataset": {"name": "shapes", "resolution": 16, "size": 200},
    "tokenizer": {"vocab_size": 600},
    "damsm": {"model": {"embedding_dim": 16, "text_config": {"word_embedding_dim": 12, "max_length": 8, "dropout": 0.0},
                        "vision_config": {"block_out_channels": [8, 16, 16], "norm_num_groups": 4, "region_level": 1}},
              "batch_size": 16, "eval": {"num": 0},
              "train": {"steps": 8, "lr": 0.003, "checkpoint_every": 100, "log_every": 100}},
    "model": {"ngf": 4, "ndf": 4, "z_dim": 8},
    "batch_size": 8,
    "generator": {"lr": 0.0002, "min_lr": 0.0002, "ema_decay": 0.9},
    "discriminator": {"lr": 0.0004, "min_lr": 0.0004},
    "samples": 2,
    "train": {"steps": 4, "checkpoint_every": 3, "validate_every": 3, "log_every": 1}
  })");
  j["train"]["steps"] = steps;
  return j;
}

TEST(DFGANRecipe, TrainsValidatesExportsAndLoadsThroughTheRegistry) {
  test::TempDir dir;
  const auto r = run_dfgan_recipe(DFGANRecipeConfig::from_json(tiny_dfgan_recipe(4)), {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  EXPECT_EQ(r.ran, (std::vector<std::string>{"damsm", "data", "train", "export"}));
  EXPECT_TRUE(fs::exists(fs::path(dir.path()) / "damsm" / "model" / "model.safetensors"));
  // Both groups took a turn every step.
  const auto metrics = test::read_jsonl(fs::path(dir.path()) / "train" / "metrics.jsonl");
  ASSERT_EQ(metrics.size(), 4u);
  for (const auto& m : metrics) {
    EXPECT_TRUE(m["groups"].contains("discriminator")) << m.dump();
    EXPECT_TRUE(m["groups"].contains("generator")) << m.dump();
  }
  // Validation at step 3 and at the end: D accuracies in [0,1], diversity measured.
  const auto val = test::read_jsonl(fs::path(dir.path()) / "train" / "validation.jsonl");
  ASSERT_EQ(val.size(), 2u);
  EXPECT_EQ(val[0]["step"], 3);
  for (const char* key : {"d_accuracy_real", "d_accuracy_fake"}) {
    EXPECT_GE(val[1][key].get<double>(), 0.0);
    EXPECT_LE(val[1][key].get<double>(), 1.0);
  }
  EXPECT_GT(val[1]["diversity_real"].get<double>(), 0.0);
  EXPECT_TRUE(fs::exists(fs::path(dir.path()) / "samples" / "step-00000004.png"));
  // With an EMA, the generator as trained is exported beside the EMA's, and they differ.
  const auto flat = [](const fs::path& m) { return test::flat_weights(m / "generator" / "model.safetensors"); };
  ASSERT_TRUE(fs::exists(fs::path(dir.path()) / "model-no-ema" / "model_index.json"));
  EXPECT_FALSE(torch::allclose(flat(r.model_dir), flat(fs::path(dir.path()) / "model-no-ema")));

  // The folder is a pipeline: one forward pass per image, sample i seeded seed + i.
  auto p = pipelines::load_pipeline({.model = r.model_dir});
  EXPECT_EQ(p->info().class_name, "genvis.DFGANPipeline");
  pipelines::Request req;
  req.prompt = "a red circle";
  req.seed = 11;
  req.batch = 2;
  const auto out = p->generate(req);
  ASSERT_EQ(out.samples.sizes(), (std::vector<int64_t>{2, 3, 16, 16}));
  EXPECT_GE(out.samples.min().item<double>(), 0.0);
  req.seed = 12;
  req.batch = 1;
  EXPECT_TRUE(torch::allclose(p->generate(req).samples[0], out.samples[1], 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(out.samples[0], out.samples[1]));
  req.width = 32;
  EXPECT_THROW(p->generate(req), UsageError);
  // Done: a second run skips every stage.
  EXPECT_TRUE(run_dfgan_recipe(DFGANRecipeConfig::from_json(tiny_dfgan_recipe(4)), {.out_dir = dir.path()}).ran.empty());
}

TEST(DFGANRecipe, ResumesExactlyWithTwoOptimisers) {
  test::TempDir straight, split;
  const auto a = run_dfgan_recipe(DFGANRecipeConfig::from_json(tiny_dfgan_recipe(6)), {.out_dir = straight.path()});
  // 3 steps, then (the export removed, as if stopped there) 3 more from the checkpoint.
  const auto b1 = run_dfgan_recipe(DFGANRecipeConfig::from_json(tiny_dfgan_recipe(3)), {.out_dir = split.path()});
  fs::remove_all(b1.model_dir);
  EXPECT_THROW(run_dfgan_recipe(DFGANRecipeConfig::from_json(tiny_dfgan_recipe(6)), {.out_dir = split.path()}), UsageError);
  const auto b2 =
      run_dfgan_recipe(DFGANRecipeConfig::from_json(tiny_dfgan_recipe(6)), {.out_dir = split.path(), .resume = true});
  const auto weights = [](const std::string& model) {
    return test::flat_weights(fs::path(model) / "generator" / "model.safetensors");
  };
  EXPECT_TRUE(torch::equal(weights(a.model_dir), weights(b2.model_dir)));
}

TEST(DFGANRecipe, LazyPenaltyInBf16TrainsAndResumesExactly) {
  // The penalty on every other discriminator step (in f32), every other step in bf16.
  const auto lazy = [](int64_t steps) {
    json j = tiny_dfgan_recipe(steps);
    j["gradient_penalty"] = {{"every", 2}};
    j["train"]["autocast"] = "bf16";
    return DFGANRecipeConfig::from_json(j);
  };
  test::TempDir straight, split, paper;
  const auto a = run_dfgan_recipe(lazy(6), {.out_dir = straight.path()});
  ASSERT_FALSE(a.interrupted);
  for (const auto& m : test::read_jsonl(fs::path(straight.path()) / "train" / "metrics.jsonl"))
    EXPECT_TRUE(std::isfinite(m["groups"]["discriminator"]["loss"].get<double>())) << m.dump();
  // Stopped after step 3 (an unpenalised step is next) and resumed: the same weights.
  const auto b1 = run_dfgan_recipe(lazy(3), {.out_dir = split.path()});
  fs::remove_all(b1.model_dir);
  const auto b2 = run_dfgan_recipe(lazy(6), {.out_dir = split.path(), .resume = true});
  const auto weights = [](const std::string& model) {
    return test::flat_weights(fs::path(model) / "generator" / "model.safetensors");
  };
  EXPECT_TRUE(torch::equal(weights(a.model_dir), weights(b2.model_dir)));
  // And it is a different schedule from the paper's penalty on every step in f32.
  const auto c = run_dfgan_recipe(DFGANRecipeConfig::from_json(tiny_dfgan_recipe(6)), {.out_dir = paper.path()});
  EXPECT_FALSE(torch::equal(weights(a.model_dir), weights(c.model_dir)));
}

TEST(DFGANRecipe, DamsmLossAddsAPositiveMatchingTermToTheGeneratorOnly) {
  // The same seed with and without AttnGAN's DAMSM loss: the first discriminator step (it runs
  // before the generator's) is the same; the generator's first loss is higher by the matching loss.
  const auto first_losses = [](double lambda) {
    json j = tiny_dfgan_recipe(1);
    j["damsm_lambda"] = lambda;
    test::TempDir dir;
    run_dfgan_recipe(DFGANRecipeConfig::from_json(j), {.out_dir = dir.path()});
    const auto m = test::read_jsonl(fs::path(dir.path()) / "train" / "metrics.jsonl").front()["groups"];
    return std::pair{m["discriminator"]["loss"].get<double>(), m["generator"]["loss"].get<double>()};
  };
  const auto [d0, g0] = first_losses(0.0);
  const auto [d1, g1] = first_losses(1.0);
  const auto [d5, g5] = first_losses(5.0);
  EXPECT_DOUBLE_EQ(d0, d1);
  EXPECT_DOUBLE_EQ(d0, d5);
  // Matching B images against B captions: a loss near 2 log B at random weights, scaled by lambda.
  EXPECT_GT(g1 - g0, 0.5);
  EXPECT_NEAR((g5 - g0) / (g1 - g0), 5.0, 0.05);
  EXPECT_EQ(DFGANRecipeConfig::from_file(std::string(GENVIS_SOURCE_DIR) + "/configs/dfgan-emoji.json").damsm_lambda, 0.0);
}

TEST(DFGANRecipeConfig, ListsEveryBadKeyAtOnceAndParsesTheShippedConfig) {
  json j = tiny_dfgan_recipe(4);
  j["colour"] = 1;
  j["model"]["image_size"] = 32;
  j["model"]["cond_dim"] = 8;
  j["damsm"]["dataset"] = {{"name", "emoji"}};
  j["gradient_penalty"] = {{"k", -1}};
  j["damsm_lambda"] = -1;
  j["generator"]["lr"] = "fast";
  j["train"]["autocast"] = "bf16";
  try {
    DFGANRecipeConfig::from_json(j, "bad.json");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    for (const char* part : {"bad.json", "unknown key config.colour", "model.image_size", "model.cond_dim",
                             "damsm.dataset", "gradient_penalty.k", "damsm_lambda", "generator", "autocast"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in " << what;
  }
  json lazy = tiny_dfgan_recipe(4);
  lazy["gradient_penalty"] = {{"every", 0}};
  EXPECT_THROW(DFGANRecipeConfig::from_json(lazy), UsageError);
  lazy["gradient_penalty"] = {{"every", 4}};
  lazy["train"]["autocast"] = "bf16";
  EXPECT_EQ(DFGANRecipeConfig::from_json(lazy).gp_every, 4);
  const auto quick = DFGANRecipeConfig::from_file(std::string(GENVIS_SOURCE_DIR) + "/configs/dfgan-fmnist-quick.json");
  EXPECT_EQ(quick.dataset.name, "fashion-mnist");
  ASSERT_TRUE(quick.damsm.pretrain.has_value());
  const auto shipped = DFGANRecipeConfig::from_file(std::string(GENVIS_SOURCE_DIR) + "/configs/dfgan-emoji.json");
  EXPECT_EQ(shipped.dataset.resolution, 64);
  ASSERT_TRUE(shipped.damsm.pretrain.has_value());
  EXPECT_DOUBLE_EQ(shipped.discriminator.lr, 4e-4);
  EXPECT_DOUBLE_EQ(shipped.generator.beta1, 0.0);
  // The shipped model's last stage: the same config with the DAMSM loss at 0.5.
  const auto last = DFGANRecipeConfig::from_file(std::string(GENVIS_SOURCE_DIR) + "/configs/dfgan-emoji-damsm05.json");
  EXPECT_DOUBLE_EQ(last.damsm_lambda, 0.5);
  EXPECT_EQ(last.dataset.resolution, shipped.dataset.resolution);
}

}  // namespace
}  // namespace genvis::train
