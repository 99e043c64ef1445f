// `genvis train contrastive` and `genvis eval r-precision` as a user runs them: a toy encoder
// (trained on shapes) scores a dataset's own images (emoji's small held-out split); mistakes
// give one clear line and the documented exit code.
#include "data/emoji.h"
#include "support/test_support.h"

#include <filesystem>
#include <nlohmann/json.hpp>

namespace genvis {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTinyRecipe = R"({
  "seed": 2,
  "dataset": {"name": "shapes", "resolution": 16, "size": 64},
  "tokenizer": {"vocab_size": 600},
  "model": {"projection_dim": 16,
            "vision_config": {"block_out_channels": [16, 32], "layers_per_block": 1, "norm_num_groups": 8},
            "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                            "num_attention_heads": 2, "max_position_embeddings": 24}},
  "batch_size": 16,
  "eval": {"num": 0},
  "train": {"steps": 6, "lr": 3e-3, "checkpoint_every": 1000, "autocast": "bf16"}
})";

TEST(EvalCli, TrainContrastiveThenRPrecisionOfDatasetImages) {
  if (!fs::exists(data::kDefaultEmojiFont)) GTEST_SKIP() << data::kDefaultEmojiFont << " (fonts-noto-color-emoji) is absent";
  test::TempDir dir;
  test::write_bytes(dir.file("tiny.json"), kTinyRecipe);
  auto r = test::run_genvis("-q train contrastive --config " + dir.file("tiny.json") + " --out " + dir.file("run"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(dir.file("run") + "/model"), std::string::npos) << r.out;

  r = test::run_genvis("-q eval r-precision --encoder " + dir.file("run/model") +
             " --images-from-dataset --dataset emoji --split heldout --num 12 --k 8 -o " + dir.file("rp.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["metric"], "r_precision");
  EXPECT_EQ(j["num"], 12);
  EXPECT_EQ(j["k"], 8);
  EXPECT_EQ(j["split"], "heldout");
  EXPECT_EQ(j["images"], "dataset");
  EXPECT_EQ(j["encoder"], dir.file("run/model"));
  EXPECT_TRUE(j["model"].is_null());
  EXPECT_GE(j["value"].get<double>(), 0.0);
  EXPECT_EQ(nlohmann::json::parse(test::read_bytes(dir.file("rp.json"))), j);
  // Seeded: the same command gives the same number.
  EXPECT_EQ(nlohmann::json::parse(test::run_genvis("-q eval r-precision --encoder " + dir.file("run/model") +
                                         " --images-from-dataset --dataset emoji --split heldout --num 12 --k 8")
                                      .out)["value"],
            j["value"]);

  // Generated images: a diffusers folder assembled from the tiny SD1 fixture components (any
  // BPE tokenizer folder serves the tiny text encoder), 2 steps at 32 px.
  if (!test::have_fixtures()) return;
  const fs::path model = dir.file("sd");
  fs::create_directories(model);
  const fs::path f = test::fixtures_dir();
  fs::create_directory_symlink(f / "clip_l", model / "text_encoder");
  fs::create_directory_symlink(f / "unet_sd1", model / "unet");
  fs::create_directory_symlink(f / "vae", model / "vae");
  fs::create_directory_symlink(fs::path(dir.file("run/model/tokenizer")), model / "tokenizer");
  r = test::run_genvis("-q eval r-precision --encoder " + dir.file("run/model") + " --model " + model.string() +
             " --dataset emoji --split heldout --num 3 --k 8 --steps 2 --size 32 --seed 5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto g = nlohmann::json::parse(r.out);
  EXPECT_EQ(g["images"], "generated");
  EXPECT_EQ(g["model"], model.string());
  EXPECT_EQ(g["num"], 3);
  EXPECT_EQ(g["generation"]["steps"], 2);
  EXPECT_EQ(g["generation"]["size"], 32);
}

TEST(EvalCli, ClearErrors) {
  test::TempDir dir;
  // Usage errors: exit 2.
  auto r = test::run_genvis("eval r-precision --encoder " + dir.file("enc") + " --split heldout");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--model is required"), std::string::npos) << r.err;
  r = test::run_genvis("eval r-precision --encoder " + dir.file("enc") + " --images-from-dataset --split all");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--split"), std::string::npos) << r.err;
  r = test::run_genvis("eval r-precision --encoder " + dir.file("enc") + " --images-from-dataset --k 1");
  EXPECT_EQ(r.exit_code, 2);
  r = test::run_genvis("eval r-precision --images-from-dataset");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--encoder"), std::string::npos) << r.err;
  r = test::run_genvis("eval r-precision --encoder " + dir.file("enc") + " --model x --size 30");
  EXPECT_EQ(r.exit_code, 2);
  r = test::run_genvis("eval sideways");
  EXPECT_EQ(r.exit_code, 2);
  // A missing encoder folder cannot be loaded: exit 3, naming it.
  r = test::run_genvis("eval r-precision --encoder " + dir.file("enc") + " --images-from-dataset");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find(dir.file("enc")), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // one line
  // A bad recipe: every problem in one usage error.
  test::write_bytes(dir.file("bad.json"), R"({"dataset": {"name": "shapes"}, "colour": 1})");
  r = test::run_genvis("train contrastive --config " + dir.file("bad.json") + " --out " + dir.file("run"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown key config.colour"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("missing key dataset.resolution"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("run")));
}

}  // namespace
}  // namespace genvis
