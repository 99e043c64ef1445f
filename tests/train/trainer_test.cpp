// The shared training loop: schedules, AdamW against libtorch's, clipping, EMA, configs, and
// checkpoints that resume bit-exactly and survive kill -9 and failed writes.
#include "core/error.h"
#include "core/file.h"
#include "io/weights.h"
#include "support/test_support.h"
#include "train/trainer.h"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <thread>
#include <torch/torch.h>
#include <unistd.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    torch::manual_seed(1);
    a = register_module("a", torch::nn::Linear(4, 16));
    b = register_module("b", torch::nn::Linear(16, 1));
  }
  at::Tensor forward(const at::Tensor& x) { return b(torch::tanh(a(x))); }
  torch::nn::Linear a{nullptr}, b{nullptr};
};
TORCH_MODULE(Tiny);

// A regression whose batch for a step comes only from the step's generator.
at::Tensor tiny_loss(Tiny& model, Rng& rng) {
  const at::Tensor x = rng.randn({32, 4});
  const at::Tensor y = torch::sin(x).sum(1, true);
  return torch::mse_loss(model->forward(x), y);
}

TrainConfig tiny_config(int64_t steps) {
  return TrainConfig::from_json({{"steps", steps}, {"lr", 3e-2}, {"warmup_steps", 3}, {"ema_decay", 0.9},
                                 {"checkpoint_every", 3}, {"seed", 5}});
}

Trainer::LossFn loss_of(Tiny& model) {
  return [&model](int64_t, int64_t, Rng& rng) { return tiny_loss(model, rng); };
}

TEST(LRSchedule, WarmupThenCosine) {
  const LRSchedule s{1.0, 0.1, 4, 14};
  EXPECT_DOUBLE_EQ(learning_rate(s, 0), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate(s, 3), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(s, 4), 1.0);
  EXPECT_NEAR(learning_rate(s, 9), 0.55, 1e-12);  // half way: (1 + 0.1) / 2
  EXPECT_NEAR(learning_rate(s, 14), 0.1, 1e-12);
  EXPECT_NEAR(learning_rate(s, 100), 0.1, 1e-12);
}

TEST(AdamW, MatchesLibtorchAdamW) {
  torch::manual_seed(3);
  const at::Tensor init = torch::randn({5, 3});
  at::Tensor mine = init.clone().set_requires_grad(true);
  at::Tensor theirs = init.clone().set_requires_grad(true);
  AdamW opt({{"w", mine}}, {0.9, 0.99, 1e-8, 0.05});
  torch::optim::AdamW ref({theirs}, torch::optim::AdamWOptions(0.01).betas({0.9, 0.99}).weight_decay(0.05));
  for (int i = 0; i < 4; ++i) {
    const at::Tensor target = torch::full({5, 3}, static_cast<double>(i));
    opt.zero_grad();
    ref.zero_grad();
    (mine - target).pow(2).sum().backward();
    (theirs - target).pow(2).sum().backward();
    opt.step(0.01);
    ref.step();
  }
  EXPECT_LE((mine - theirs).abs().max().item<float>(), 1e-6);
  EXPECT_GT((mine - init).abs().max().item<float>(), 1e-3);
  EXPECT_EQ(opt.steps_taken(), 4);
}

TEST(ClipGradNorm, ScalesToTheLimitAndReportsTheNorm) {
  at::Tensor p = torch::zeros({2}).set_requires_grad(true);
  (p * torch::tensor({3.0f, 4.0f})).sum().backward();
  EXPECT_NEAR(clip_grad_norm({{"p", p}}, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(p.grad().norm().item<float>(), 1.0, 1e-5);
  EXPECT_NEAR(p.grad()[0].item<float>(), 0.6, 1e-5);
  EXPECT_NEAR(clip_grad_norm({{"p", p}}, 10.0), 1.0, 1e-5);  // under the limit: unchanged
  EXPECT_NEAR(p.grad().norm().item<float>(), 1.0, 1e-5);
}

TEST(EMA, FollowsTheFormula) {
  at::Tensor p = torch::zeros({3});
  EMA ema({{"p", p}}, 0.75);
  p.fill_(4.0);
  ema.update({{"p", p}});
  EXPECT_NEAR(ema.weights()[0].second[0].item<float>(), 1.0, 1e-6);  // 0.75*0 + 0.25*4
  ema.update({{"p", p}});
  EXPECT_NEAR(ema.weights()[0].second[0].item<float>(), 1.75, 1e-6);
  EXPECT_THROW(EMA({{"p", p}}, 1.0), UsageError);
}

TEST(TrainConfig, EveryProblemAtOnce) {
  try {
    TrainConfig::from_json({{"lr", -1}, {"bogus", 1}, {"autocast", "fp8"}, {"grad_accum", "two"}});
    FAIL() << "accepted";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    for (const char* part : {"unknown key bogus", "missing key steps", "lr must be > 0", "autocast", "grad_accum"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
  }
  const TrainConfig c = TrainConfig::from_json({{"steps", 10}});
  EXPECT_EQ(TrainConfig::from_json(c.to_json()).to_json(), c.to_json());
}

TEST(Trainer, LearnsAndResumesBitExactly) {
  test::TempDir dir;
  // One run of 9 steps.
  Tiny straight;
  Trainer a(*straight, tiny_config(9), dir.file("straight"));
  EXPECT_EQ(a.run(loss_of(straight)), Trainer::Outcome::Finished);
  EXPECT_EQ(a.step(), 9);
  // 4 steps, then a new process-like start that resumes to 9.
  {
    Tiny first;
    Trainer b(*first, tiny_config(4), dir.file("split"));
    b.run(loss_of(first));
  }
  Tiny second;  // freshly initialised; everything comes from the checkpoint
  Trainer c(*second, tiny_config(9), dir.file("split"));
  ASSERT_TRUE(c.resume_if_present());
  EXPECT_EQ(c.step(), 4);
  c.run(loss_of(second));
  for (size_t i = 0; i < straight->parameters().size(); ++i)
    EXPECT_TRUE(at::equal(straight->parameters()[i], second->parameters()[i])) << "parameter " << i;
  for (size_t i = 0; i < a.ema()->weights().size(); ++i)
    EXPECT_TRUE(at::equal(a.ema()->weights()[i].second, c.ema()->weights()[i].second)) << "ema " << i;
  // The metrics log has one line per step, none repeated after the resume.
  EXPECT_EQ(c.history().size(), 9u);
  EXPECT_TRUE(fs::exists(dir.file("split") + "/loss.png"));
  // Only keep_checkpoints (2) complete checkpoints remain; latest is the final step.
  int complete = 0;
  for (const auto& e : fs::directory_iterator(dir.file("split") + "/checkpoints")) complete += e.is_directory();
  EXPECT_EQ(complete, 2);
  EXPECT_NE(c.latest_checkpoint().find("step-00000009"), std::string::npos);
}

// Batch-norm running statistics are state too: a resumed run carries them on, so its weights and
// statistics equal an uninterrupted run's.
struct NormedImpl : torch::nn::Module {
  NormedImpl() {
    torch::manual_seed(2);
    a = register_module("a", torch::nn::Linear(4, 8));
    bn = register_module("bn", torch::nn::BatchNorm1d(8));
    b = register_module("b", torch::nn::Linear(8, 1));
  }
  at::Tensor forward(const at::Tensor& x) { return b(torch::tanh(bn(a(x)))); }
  torch::nn::Linear a{nullptr}, b{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};
TORCH_MODULE(Normed);

TEST(Trainer, ResumeRestoresBuffers) {
  test::TempDir dir;
  const auto loss = [](Normed& m) {
    return [&m](int64_t, int64_t, Rng& rng) {
      const at::Tensor x = rng.randn({16, 4}) * 3 + 1;
      return torch::mse_loss(m->forward(x), torch::sin(x).sum(1, true));
    };
  };
  Normed straight;
  Trainer a(*straight, tiny_config(6), dir.file("straight"));
  a.run(loss(straight));
  {
    Normed first;
    Trainer b(*first, tiny_config(3), dir.file("split"));
    b.run(loss(first));
  }
  Normed second;
  Trainer c(*second, tiny_config(6), dir.file("split"));
  ASSERT_TRUE(c.resume_if_present());
  c.run(loss(second));
  EXPECT_TRUE(at::equal(straight->bn->running_mean, second->bn->running_mean));
  EXPECT_TRUE(at::equal(straight->bn->running_var, second->bn->running_var));
  EXPECT_EQ(second->bn->num_batches_tracked.item<int64_t>(), 6);
  EXPECT_FALSE(at::equal(second->bn->running_mean, torch::zeros({8})));
  for (size_t i = 0; i < straight->parameters().size(); ++i)
    EXPECT_TRUE(at::equal(straight->parameters()[i], second->parameters()[i])) << "parameter " << i;
}

// Single-model checkpoints keep the layout every older checkpoint has, so those still resume:
// the module's own tensor names, one optimiser step count, the flat TrainConfig; and the metrics
// log keeps its flat lines.
TEST(Trainer, SingleModelCheckpointsKeepTheirLayout) {
  test::TempDir dir;
  Tiny m;
  Trainer t(*m, tiny_config(3), dir.file("run"));
  t.extra_state = {{"recipe", "tiny"}};
  t.run(loss_of(m));
  const std::string ckpt = t.latest_checkpoint();
  const auto names = [](const std::string& path) {
    std::vector<std::string> out;
    const auto reader = io::open_weights(path);
    for (const auto& info : reader->tensors()) out.push_back(info.name);
    std::sort(out.begin(), out.end());
    return out;
  };
  const std::vector<std::string> params = {"a.bias", "a.weight", "b.bias", "b.weight"};
  EXPECT_EQ(names(ckpt + "/model.safetensors"), params);
  EXPECT_EQ(names(ckpt + "/ema.safetensors"), params);
  EXPECT_EQ(names(ckpt + "/optimizer.safetensors"),
            (std::vector<std::string>{"exp_avg.a.bias", "exp_avg.a.weight", "exp_avg.b.bias", "exp_avg.b.weight",
                                      "exp_avg_sq.a.bias", "exp_avg_sq.a.weight", "exp_avg_sq.b.bias",
                                      "exp_avg_sq.b.weight"}));
  const auto state = nlohmann::json::parse(read_text_file(ckpt + "/state.json", 1 << 20));
  EXPECT_EQ(state, (nlohmann::json{{"format", "genvis-train-checkpoint"},
                                   {"version", 1},
                                   {"step", 3},
                                   {"optimizer_steps", 3},
                                   {"config", tiny_config(3).to_json()},
                                   {"extra", {{"recipe", "tiny"}}}}));
  std::ifstream log(dir.file("run") + "/metrics.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(log, line));
  std::vector<std::string> keys;
  const auto first_line = nlohmann::json::parse(line);
  for (const auto& [key, value] : first_line.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"grad_norm", "loss", "lr", "seconds", "step"}));
  EXPECT_EQ(t.ema(), t.ema("model"));
  EXPECT_EQ(t.optimizer("model").steps_taken(), 3);
}

// Validation sees the EMA weights, and training continues from the trained weights: a run that
// validates every 2 steps ends bit-identical to one that does not.
TEST(Trainer, ValidationSeesTheEMAAndTrainingContinuesFromTheWeights) {
  test::TempDir dir;
  TrainConfig config = tiny_config(6);
  config.validate_every = 2;
  Tiny plain;
  Trainer a(*plain, config, dir.file("plain"));
  a.run(loss_of(plain));
  Tiny validated;
  Trainer b(*validated, config, dir.file("validated"));
  std::vector<int64_t> validated_at;
  b.run(loss_of(validated), [&](int64_t step) {
    validated_at.push_back(step);
    for (size_t i = 0; i < b.ema()->weights().size(); ++i)
      EXPECT_TRUE(at::equal(validated->parameters()[i], b.ema()->weights()[i].second)) << step;
  });
  EXPECT_EQ(validated_at, (std::vector<int64_t>{2, 4, 6}));
  for (size_t i = 0; i < plain->parameters().size(); ++i) {
    EXPECT_TRUE(at::equal(plain->parameters()[i], validated->parameters()[i])) << "parameter " << i;
    EXPECT_FALSE(at::equal(validated->parameters()[i], b.ema()->weights()[i].second)) << "parameter " << i;
  }
}

TEST(Trainer, LossDecreasesAndAccumulationAverages) {
  test::TempDir dir;
  Tiny model;
  TrainConfig config = TrainConfig::from_json({{"steps", 150}, {"lr", 1e-2}, {"checkpoint_every", 1000}});
  Trainer t(*model, config, dir.file("run"));
  t.run(loss_of(model));
  const auto& h = t.history();
  double early = 0, late = 0;
  for (int i = 0; i < 10; ++i) {
    early += h[i].loss;
    late += h[h.size() - 1 - i].loss;
  }
  EXPECT_LT(late, 0.5 * early);
  // grad_accum 2 of one batch each = the mean of the two losses.
  Tiny m2;
  TrainConfig acc = TrainConfig::from_json({{"steps", 1}, {"grad_accum", 2}});
  Trainer t2(*m2, acc, dir.file("acc"));
  std::vector<double> losses;
  t2.run([&](int64_t, int64_t, Rng& rng) {
    at::Tensor l = tiny_loss(m2, rng);
    losses.push_back(l.item<double>());
    return l;
  });
  ASSERT_EQ(losses.size(), 2u);
  EXPECT_NEAR(t2.history().front().loss, (losses[0] + losses[1]) / 2, 1e-9);
}

TEST(Trainer, ResumeWithAnotherConfigIsRefused) {
  test::TempDir dir;
  {
    Tiny m;
    Trainer t(*m, tiny_config(3), dir.file("run"));
    t.run(loss_of(m));
  }
  Tiny m;
  TrainConfig other = tiny_config(6);
  other.lr = 1e-3;
  Trainer t(*m, other, dir.file("run"));
  try {
    t.resume();
    FAIL() << "resumed with another lr";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("lr 0.03"), std::string::npos) << e.what();
  }
  Trainer none(*m, tiny_config(3), dir.file("empty"));
  EXPECT_THROW(none.resume(), LoadError);
}

// The recipe's description of the run (extra_state) must agree too: each differing leaf is
// named; keys only one side has are not compared (recipes that gained a key resume old runs).
TEST(Trainer, ResumeWithAnotherRecipeStateIsRefused) {
  test::TempDir dir;
  const nlohmann::json saved = {{"stage", "diffusion"}, {"unet", {{"layers", 1}, {"blocks", {32, 64}}}}};
  {
    Tiny m;
    Trainer t(*m, tiny_config(3), dir.file("run"));
    t.extra_state = saved;
    t.run(loss_of(m));
  }
  Tiny m;
  Trainer t(*m, tiny_config(6), dir.file("run"));
  t.extra_state = saved;
  t.extra_state["unet"]["blocks"][1] = 128;
  t.extra_state["init"] = "contrastive";  // absent from the checkpoint: not compared
  try {
    t.resume();
    FAIL() << "resumed with another UNet";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("unet/blocks/1 64 -> 128"), std::string::npos) << what;
    EXPECT_EQ(what.find("init"), std::string::npos) << what;
    EXPECT_EQ(what.find("stage"), std::string::npos) << what;
  }
  Trainer same(*m, tiny_config(6), dir.file("run"));
  same.extra_state = saved;
  same.extra_state["init"] = "contrastive";
  EXPECT_NO_THROW(same.resume());
  EXPECT_EQ(same.step(), 3);
  EXPECT_EQ(same.extra_state.value("init", ""), "contrastive");  // kept for the next checkpoint
}

TEST(Trainer, AFailedCheckpointWriteLeavesThePreviousOne) {
  test::TempDir dir;
  Tiny m;
  Trainer t(*m, tiny_config(6), dir.file("run"));
  int saves = 0;
  t.before_commit = [&] {
    if (++saves == 2) throw RuntimeError("disk full (simulated)");
  };
  EXPECT_THROW(t.run(loss_of(m)), RuntimeError);
  Tiny fresh;
  Trainer r(*fresh, tiny_config(6), dir.file("run"));
  r.resume();
  EXPECT_EQ(r.step(), 3);
}

// Trains in a child process; the parent kills it and checks in another child that the latest
// checkpoint loads (the parent never touches libtorch, so forking is safe).
TEST(Trainer, KillNineAtAnyMomentLeavesALoadableCheckpoint) {
  test::TempDir dir;
  const std::string out = dir.file("run");
  const auto child = [&](const std::function<int()>& body) {
    const pid_t pid = fork();
    if (pid == 0) {
      at::set_num_threads(1);
      int code = 1;
      try {
        code = body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
      }
      _exit(code);
    }
    return pid;
  };
  const auto config = [] {
    TrainConfig c = TrainConfig::from_json({{"steps", 1000000}, {"checkpoint_every", 1}, {"seed", 1}});
    return c;
  };
  int64_t last_step = -1;
  for (int round = 0; round < 4; ++round) {
    const pid_t trainer = child([&] {
      Tiny m;
      Trainer t(*m, config(), out);
      t.resume_if_present();
      t.run(loss_of(m));
      return 0;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(400 + 137 * round));
    kill(trainer, SIGKILL);
    int status = 0;
    waitpid(trainer, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    const pid_t checker = child([&] {
      Tiny m;
      Trainer t(*m, config(), out);
      t.resume();
      std::printf("%lld\n", static_cast<long long>(t.step()));
      return t.step() > 0 ? 0 : 2;
    });
    waitpid(checker, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "round " << round << ": the latest checkpoint did not load";
    (void)last_step;
  }
  // SIGTERM: the run stops at a step boundary with a checkpoint at that step.
  const pid_t trainer = child([&] {
    Tiny m;
    Trainer t(*m, config(), out);
    t.resume_if_present();
    return t.run(loss_of(m)) == Trainer::Outcome::Interrupted ? 0 : 3;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  kill(trainer, SIGTERM);
  int status = 0;
  waitpid(trainer, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace genvis::train
