// Data-parallel training and evaluation on one machine through the CLI: `--nproc 2` (two
// processes over 127.0.0.1, c10d Gloo) produces the weights and losses of one process running the
// same global batch, resumes in one process, and evaluates to one process's numbers; a killed rank
// makes the other exit with a clear error instead of hanging; bad distributed settings are one
// error line.
#include "support/test_support.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <sys/types.h>

namespace genvis {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The contrastive recipe at toy size (seconds per run): two micro-batches per step, so that two
// processes take one each.
std::string write_config(const test::TempDir& dir, int64_t steps, int64_t grad_accum, bool constant_lr = false) {
  const json c = json::parse(R"({
    "seed": 3,
    "dataset": {"name": "shapes", "resolution": 16, "size": 64},
    "tokenizer": {"vocab_size": 600},
    "model": {"projection_dim": 16,
              "vision_config": {"block_out_channels": [16, 32], "layers_per_block": 1, "norm_num_groups": 8},
              "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "max_position_embeddings": 24}},
    "batch_size": 8,
    "eval": {"num": 8, "k": 4},
    "train": {"lr": 3e-3, "warmup_steps": 2, "checkpoint_every": 4, "log_every": 1000}
  })");
  json with = c;
  with["train"]["steps"] = steps;
  with["train"]["grad_accum"] = grad_accum;
  if (constant_lr) {  // the same learning rate whatever the run's length
    with["train"]["warmup_steps"] = 0;
    with["train"]["min_lr"] = with["train"]["lr"];
  }
  const std::string path = dir.file("contrastive-" + std::to_string(steps) + "-" + std::to_string(grad_accum) +
                                    (constant_lr ? "-constant" : "") + ".json");
  std::ofstream(path) << with.dump(2);
  return path;
}

// Complete lines in a file (0 when it does not exist yet).
size_t lines_in(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

std::vector<std::string> weight_files(const std::string& model_dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(model_dir))
    if (e.path().extension() == ".safetensors") out.push_back(fs::relative(e.path(), model_dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

// Every weights file of two exported models equal up to float summation order.
void expect_same_weights(const std::string& one, const std::string& two) {
  const auto files = weight_files(one);
  ASSERT_FALSE(files.empty()) << one;
  ASSERT_EQ(weight_files(two), files);
  for (const auto& f : files) {
    const at::Tensor a = test::flat_weights(one + "/" + f).to(at::kDouble);
    const at::Tensor b = test::flat_weights(two + "/" + f).to(at::kDouble);
    ASSERT_EQ(a.numel(), b.numel()) << f;
    const double diff = (a - b).abs().max().item<double>();
    const double scale = a.abs().max().item<double>();
    EXPECT_LT(diff, 1e-3 * scale) << f << ": max |one - two| " << diff << " of max |w| " << scale;
  }
}

TEST(DistributedTraining, TwoProcessesMatchOneProcessWithTheSameGlobalBatch) {
  test::TempDir dir;
  const std::string config = write_config(dir, 8, 2);
  const std::string one = dir.file("one"), two = dir.file("two");
  const auto r1 = test::run_genvis("-q --threads 1 train contrastive --config " + config + " --out " + one);
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  const auto r2 = test::run_genvis("-q --threads 1 train contrastive --config " + config + " --out " + two + " --nproc 2");
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_NE(r2.out.find(two + "/model"), std::string::npos) << r2.out;  // printed once, by rank 0

  // The same losses step by step (the mean over both processes' micro-batches) ...
  const auto l1 = test::read_jsonl(one + "/train/metrics.jsonl"), l2 = test::read_jsonl(two + "/train/metrics.jsonl");
  ASSERT_EQ(l1.size(), 8u);
  ASSERT_EQ(l2.size(), l1.size());  // rank 0 alone logs
  for (size_t i = 0; i < l1.size(); ++i) {
    EXPECT_NEAR(l2[i]["loss"].get<double>(), l1[i]["loss"].get<double>(), 1e-4 * std::abs(l1[i]["loss"].get<double>()))
        << "step " << i + 1;
    EXPECT_NEAR(l2[i]["grad_norm"].get<double>(), l1[i]["grad_norm"].get<double>(),
                1e-3 * l1[i]["grad_norm"].get<double>() + 1e-6)
        << "step " << i + 1;
  }
  // ... and the same weights, up to the order of float additions.
  expect_same_weights(one + "/model", two + "/model");
  // Rank 0 wrote the checkpoints; rank 1's working copy is gone.
  EXPECT_TRUE(fs::exists(two + "/train/checkpoints/latest"));
  EXPECT_FALSE(fs::exists(two + "/.ranks"));
  EXPECT_EQ(r2.out, two + "/model\n");
  EXPECT_NE(l1.front()["loss"], l1.back()["loss"]);  // training moved the weights
}

TEST(DistributedTraining, AGANsAlternatingTurnsAndEMAMatchOneProcess) {
  // DF-GAN at toy size: a DAMSM stage, then discriminator and generator turns (the matching-aware
  // gradient penalty differentiates twice) with an EMA of the generator; both stages split their
  // two micro-batches over the processes.
  test::TempDir dir;
  const json c = json::parse(R"({
    "seed": 5,
    "dataset": {"name": "shapes", "resolution": 16, "size": 64},
    "tokenizer": {"vocab_size": 600},
    "damsm": {"model": {"embedding_dim": 16, "text_config": {"word_embedding_dim": 12, "max_length": 8, "dropout": 0.0},
                        "vision_config": {"block_out_channels": [8, 16, 16], "norm_num_groups": 4, "region_level": 1}},
              "batch_size": 8, "eval": {"num": 0},
              "train": {"steps": 4, "grad_accum": 2, "lr": 0.003, "checkpoint_every": 100, "log_every": 100}},
    "model": {"ngf": 4, "ndf": 4, "z_dim": 8},
    "batch_size": 4,
    "generator": {"lr": 0.0002, "min_lr": 0.0002, "ema_decay": 0.9},
    "discriminator": {"lr": 0.0004, "min_lr": 0.0004},
    "samples": 2,
    "train": {"steps": 5, "grad_accum": 2, "checkpoint_every": 100, "validate_every": 3, "log_every": 1}
  })");
  const std::string config = dir.file("dfgan.json");
  std::ofstream(config) << c.dump(2);
  const std::string one = dir.file("one"), two = dir.file("two");
  const auto r1 = test::run_genvis("-q --threads 1 train dfgan --config " + config + " --out " + one);
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  const auto r2 = test::run_genvis("-q --threads 1 train dfgan --config " + config + " --out " + two + " --nproc 2");
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  expect_same_weights(one + "/model", two + "/model");
  expect_same_weights(one + "/damsm/model", two + "/damsm/model");
}

TEST(DistributedTraining, ARunInterruptedInTwoProcessesResumesExactlyInOne) {
  test::TempDir dir;
  const std::string out = dir.file("run"), log = dir.file("log"), status = dir.file("status"),
                    pid_file = dir.file("pid");
  struct KillAll {
    std::string out;
    ~KillAll() { test::run_command("pkill -9 -f -- '--out " + out + "'"); }
  } kill_all{out};
  // Two processes until a SIGINT to the launcher, which passes it on: both stop at one step and
  // rank 0 writes the checkpoint. The launcher's own pid is signalled (a pattern match on command
  // lines also hit the shells around it and, under load, could signal the killing shell first).
  const std::string line = "(" + std::string(GENVIS_CLI) + " --threads 1 train contrastive --config " +
                           write_config(dir, 100000, 2, true) + " --out " + out + " --nproc 2 >" + log +
                           " 2>&1 & echo $! >" + pid_file + "; wait $!; echo $? >" + status + ") >/dev/null 2>&1 &";
  ASSERT_EQ(std::system(line.c_str()), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (lines_in(out + "/train/metrics.jsonl") < 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GE(lines_in(out + "/train/metrics.jsonl"), 5u) << test::read_bytes(log);
  const pid_t launcher = static_cast<pid_t>(std::stol(test::read_bytes(pid_file)));
  ASSERT_GT(launcher, 0);
  ASSERT_EQ(::kill(launcher, SIGINT), 0) << "the launcher (pid " << launcher << ") is gone";
  while (!fs::exists(status) || test::read_bytes(status).empty()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << test::read_bytes(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string text = test::read_bytes(log);
  ASSERT_NE(text.find("interrupted: checkpoint written at step"), std::string::npos) << text;
  std::string latest = test::read_bytes(out + "/train/checkpoints/latest");
  latest = latest.substr(0, latest.find('\n'));
  const int64_t k = std::stoll(latest.substr(std::string("step-").size()));
  ASSERT_GE(k, 5);

  // One process finishes the run to k + 3 steps; another does all k + 3 steps alone.
  const std::string finish = write_config(dir, k + 3, 2, true);
  const auto resumed = test::run_genvis("-q --threads 1 train contrastive --config " + finish + " --out " + out + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto straight = test::run_genvis("-q --threads 1 train contrastive --config " + finish + " --out " + dir.file("straight"));
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  expect_same_weights(dir.file("straight") + "/model", out + "/model");
}

TEST(DistributedEvaluation, TwoProcessesShareTheGenerationAndReportOneProcessNumbers) {
  const fs::path model = fs::path(GENVIS_SOURCE_DIR) / "models" / "genvis-shapes-32";
  if (!fs::exists(model / "model_index.json")) GTEST_SKIP() << "models/genvis-shapes-32 absent";
  test::TempDir dir;
  // 5 batches of 2: rank 0 generates batches 0, 2, 4 and rank 1 batches 1, 3.
  const std::string common = " eval --model " + model.string() +
                             " --dataset shapes --num 10 --batch 2 --steps 3 --reference-num 20 --cache-dir " +
                             dir.file("cache");
  const auto one = test::run_genvis("-q --threads 1" + common + " --out " + dir.file("one"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const auto two = test::run_genvis("-q --threads 1" + common + " --out " + dir.file("two") + " --nproc 2");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const json a = json::parse(test::read_bytes(dir.file("one/result.json")));
  const json b = json::parse(test::read_bytes(dir.file("two/result.json")));
  ASSERT_FALSE(a["metrics"].empty());
  EXPECT_EQ(b["metrics"], a["metrics"]);  // the same images, so the same scores
  EXPECT_EQ(b["num"], 10);
  EXPECT_EQ(test::read_bytes(dir.file("two/samples.png")), test::read_bytes(dir.file("one/samples.png")));
  EXPECT_EQ(json::parse(two.out)["metrics"], a["metrics"]);  // printed once, by rank 0
}

TEST(DistributedTraining, AWorldSizeThatDoesNotDivideTheAccumulationIsAUsageError) {
  test::TempDir dir;
  const std::string config = write_config(dir, 4, 1);
  const auto r = test::run_genvis("-q --threads 1 train contrastive --config " + config + " --out " +
                                  dir.file("run") + " --nproc 2");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("grad_accum 1 is not a multiple of the 2 training processes"), std::string::npos) << r.err;
  // Broken torchrun variables: one line naming the variable.
  const auto bad = test::run_command("WORLD_SIZE=2 RANK=5 " + std::string(GENVIS_CLI) + " train contrastive --config " +
                                     config + " --out " + dir.file("bad"));
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("RANK='5'"), std::string::npos) << bad.err;
}

TEST(DistributedTraining, AKilledRankStopsTheOtherWithAClearError) {
  test::TempDir dir;
  const std::string config = write_config(dir, 100000, 2);
  const std::string out = dir.file("run"), status = dir.file("status"), log = dir.file("log");
  // Whatever happens below, no process of this run outlives the test.
  struct KillAll {
    std::string out;
    ~KillAll() { test::run_command("pkill -9 -f -- '--out " + out + "'"); }
  } kill_all{out};
  // The launcher in the background; its exit status lands in a file.
  const std::string line = "(GENVIS_DIST_TIMEOUT=120 " + std::string(GENVIS_CLI) +
                           " --threads 1 train contrastive --config " + config + " --out " + out +
                           " --nproc 2 >" + log + " 2>&1; echo $? >" + status + ") >/dev/null 2>&1 &";
  ASSERT_EQ(std::system(line.c_str()), 0);
  // Once rank 0 logs steps, both ranks are inside the training loop: kill -9 rank 1.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (lines_in(out + "/train/metrics.jsonl") < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(lines_in(out + "/train/metrics.jsonl"), 3u) << test::read_bytes(log);
  // The rank 1 process is the one whose environment says RANK=1 under this run's --out.
  const auto killed = test::run_command("for p in $(pgrep -f -- '--out " + out + "'); do "
                                        "if tr '\\0' '\\n' </proc/$p/environ 2>/dev/null | grep -qx RANK=1; then "
                                        "kill -9 $p && echo $p; fi; done");
  ASSERT_FALSE(killed.out.empty()) << "no rank 1 process found";
  const auto killed_at = std::chrono::steady_clock::now();
  while (!fs::exists(status) || test::read_bytes(status).empty()) {
    ASSERT_LT(std::chrono::steady_clock::now() - killed_at, std::chrono::seconds(60))
        << "rank 0 still runs a minute after rank 1 died:\n"
        << test::read_bytes(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(std::stoi(test::read_bytes(status)), 0);
  const std::string text = test::read_bytes(log);
  EXPECT_NE(text.find("rank 1 of 2 was killed by signal 9"), std::string::npos) << text;
  EXPECT_NE(text.find("distributed training:"), std::string::npos) << text;  // rank 0's own error
  EXPECT_NE(text.find("failed on rank 0 of 2"), std::string::npos) << text;
}

}  // namespace
}  // namespace genvis
