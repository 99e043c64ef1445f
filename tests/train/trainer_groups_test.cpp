// Grouped training runs (a GAN's discriminator and generator): turns in schedule order with their
// own optimisers, cadence, no gradient leaking between turns, EMA of one group, exact resume,
// checkpoint layout, metrics, and configuration errors.
#include "core/error.h"
#include "core/file.h"
#include "io/weights.h"
#include "support/test_support.h"
#include "train/trainer.h"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSeed = 11;
constexpr int64_t kGradAccum = 2;

// A generator of 3-vectors from 2-vectors and a discriminator scoring 3-vectors.
struct Gan {
  explicit Gan(uint64_t init_seed) {
    torch::manual_seed(init_seed);
    gen = torch::nn::Linear(2, 3);
    disc = torch::nn::Linear(3, 1);
  }
  torch::nn::Linear gen{nullptr}, disc{nullptr};
};

// Neither loss detaches: the discriminator's backpropagates into the generator and the
// generator's into the discriminator, so a gradient leaking from one turn into the next shows.
at::Tensor d_loss(Gan& gan, Rng& rng) {
  const at::Tensor real = rng.randn({16, 3}) * 0.5 + 1.0;
  const at::Tensor fake = gan.gen->forward(rng.randn({16, 2}));
  return torch::softplus(-gan.disc->forward(real)).mean() + torch::softplus(gan.disc->forward(fake)).mean();
}
at::Tensor g_loss(Gan& gan, Rng& rng) {
  return torch::softplus(-gan.disc->forward(gan.gen->forward(rng.randn({16, 2})))).mean();
}

GroupConfig d_config() {
  GroupConfig c;
  c.lr = 2e-2;
  c.beta1 = 0.5;
  c.beta2 = 0.9;
  c.grad_clip = 0.3;  // small enough to clip
  return c;
}
GroupConfig g_config(double ema_decay) {
  GroupConfig c;
  c.lr = 1e-2;
  c.min_lr = 1e-3;
  c.warmup_steps = 2;
  c.beta1 = 0.5;
  c.beta2 = 0.9;
  c.grad_clip = 0;  // off
  c.ema_decay = ema_decay;
  return c;
}

TrainConfig run_config(int64_t steps) {
  return TrainConfig::from_json({{"steps", steps},
                                 {"grad_accum", kGradAccum},
                                 {"seed", kSeed},
                                 {"checkpoint_every", 2},
                                 {"keep_checkpoints", 10}});
}

// Called at the first micro-batch of each turn, before its loss.
using Observer = std::function<void(const std::string& group, int64_t step)>;

std::unique_ptr<Trainer> gan_trainer(Gan& gan, int64_t steps, const std::string& out, int64_t g_every = 1,
                                     double g_ema = 0, Observer observe = {}) {
  const auto loss = [&gan, observe](const std::string& group, at::Tensor (*fn)(Gan&, Rng&)) {
    return [&gan, observe, group, fn](int64_t step, int64_t micro, Rng& rng) {
      if (observe && micro == 0) observe(group, step);
      return fn(gan, rng);
    };
  };
  return std::make_unique<Trainer>(
      std::vector<Trainer::Group>{
          {.name = "discriminator",
           .module = gan.disc.get(),
           .config = d_config(),
           .loss = loss("discriminator", d_loss)},
          {.name = "generator", .module = gan.gen.get(), .config = g_config(g_ema), .loss = loss("generator", g_loss)}},
      std::vector<Trainer::Turn>{{"discriminator", 1}, {"generator", g_every}}, run_config(steps), out);
}

at::Tensor flat(torch::nn::Module& module) {
  std::vector<at::Tensor> parts;
  for (const auto& p : module.parameters()) parts.push_back(p.detach().flatten());
  return torch::cat(parts).clone();
}

// True when no parameter of `module` holds a nonzero gradient.
bool grads_zero(torch::nn::Module& module) {
  for (const auto& p : module.parameters())
    if (p.grad().defined() && p.grad().abs().max().item<float>() != 0) return false;
  return true;
}

void expect_same(const NamedTensors& a, const NamedTensors& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << what;
    EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << what << " " << a[i].first;
  }
}

// (a) Each turn updates its own group only, sees no gradient of another turn, and the whole run
// equals the documented semantics written out by hand with AdamW and clip_grad_norm, bit for bit.
TEST(TrainerGroups, TwoGroupsTakeTurnsAndTouchOnlyTheirOwnParameters) {
  test::TempDir dir;
  constexpr int64_t kSteps = 4;
  Gan gan(1);
  struct Seen {
    std::string group;
    int64_t step;
    at::Tensor disc, gen;
    bool disc_grads_zero, gen_grads_zero;
  };
  std::vector<Seen> seen;
  auto trainer = gan_trainer(gan, kSteps, dir.file("run"), 1, 0, [&](const std::string& group, int64_t step) {
    seen.push_back({group, step, flat(*gan.disc), flat(*gan.gen), grads_zero(*gan.disc), grads_zero(*gan.gen)});
  });
  const at::Tensor disc0 = flat(*gan.disc), gen0 = flat(*gan.gen);
  ASSERT_EQ(trainer->run(), Trainer::Outcome::Finished);

  ASSERT_EQ(seen.size(), 2u * kSteps);
  for (int64_t s = 0; s < kSteps; ++s) {
    const Seen& d = seen[2 * s];
    const Seen& g = seen[2 * s + 1];
    ASSERT_EQ(d.group, "discriminator");
    ASSERT_EQ(g.group, "generator");
    EXPECT_EQ(d.step, s);
    EXPECT_EQ(g.step, s);
    // Every turn starts from zero gradients (the discriminator's loss reached the generator).
    EXPECT_TRUE(d.disc_grads_zero && d.gen_grads_zero) << "step " << s;
    EXPECT_TRUE(g.disc_grads_zero && g.gen_grads_zero) << "step " << s;
    // The discriminator's turn changed the discriminator only.
    EXPECT_TRUE(at::equal(g.gen, d.gen)) << "step " << s;
    EXPECT_FALSE(at::equal(g.disc, d.disc)) << "step " << s;
    // The generator's turn changed the generator only.
    const at::Tensor disc_after = s + 1 < kSteps ? seen[2 * s + 2].disc : flat(*gan.disc);
    const at::Tensor gen_after = s + 1 < kSteps ? seen[2 * s + 2].gen : flat(*gan.gen);
    EXPECT_TRUE(at::equal(disc_after, g.disc)) << "step " << s;
    EXPECT_FALSE(at::equal(gen_after, g.gen)) << "step " << s;
  }
  EXPECT_TRUE(at::equal(seen[0].disc, disc0));
  EXPECT_TRUE(at::equal(seen[0].gen, gen0));
  EXPECT_FALSE(grads_zero(*gan.disc));  // the last turn (the generator's) reached the discriminator

  // The same run by hand.
  Gan ref(1);
  AdamW d_opt(named(ref.disc->named_parameters()), {0.5, 0.9, 1e-8, 0.01});
  AdamW g_opt(named(ref.gen->named_parameters()), {0.5, 0.9, 1e-8, 0.01});
  std::vector<double> d_losses, g_losses;
  for (int64_t s = 0; s < kSteps; ++s) {
    // One generator per micro-batch, shared by the turns in order.
    std::vector<Rng> rngs;
    for (int64_t micro = 0; micro < kGradAccum; ++micro) rngs.emplace_back(micro_seed(kSeed, s, micro));
    const auto turn = [&](AdamW& opt, const GroupConfig& c, at::Tensor (*fn)(Gan&, Rng&), std::vector<double>& losses) {
      d_opt.zero_grad();
      g_opt.zero_grad();
      double sum = 0;
      for (int64_t micro = 0; micro < kGradAccum; ++micro) {
        const at::Tensor l = fn(ref, rngs[micro]);
        sum += l.item<double>();
        (l / static_cast<double>(kGradAccum)).backward();
      }
      losses.push_back(sum / kGradAccum);
      clip_grad_norm(opt.parameters(), c.grad_clip);
      opt.step(learning_rate(c.lr_schedule(kSteps), s));
    };
    turn(d_opt, d_config(), d_loss, d_losses);
    turn(g_opt, g_config(0), g_loss, g_losses);
  }
  EXPECT_TRUE(at::equal(flat(*gan.disc), flat(*ref.disc)));
  EXPECT_TRUE(at::equal(flat(*gan.gen), flat(*ref.gen)));
  expect_same(trainer->optimizer("discriminator").state(), d_opt.state(), "discriminator moments");
  expect_same(trainer->optimizer("generator").state(), g_opt.state(), "generator moments");

  // Per-group losses, learning rates and norms in the history and the metrics log.
  const auto& h = trainer->history();
  const auto log = test::read_jsonl(dir.file("run") + "/metrics.jsonl");
  ASSERT_EQ(h.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(log.size(), static_cast<size_t>(kSteps));
  for (int64_t s = 0; s < kSteps; ++s) {
    ASSERT_EQ(h[s].groups.size(), 2u);
    EXPECT_EQ(h[s].step, s + 1);
    EXPECT_EQ(h[s].groups[0].group, "discriminator");
    EXPECT_EQ(h[s].groups[1].group, "generator");
    EXPECT_EQ(h[s].groups[0].loss, d_losses[s]);
    EXPECT_EQ(h[s].groups[1].loss, g_losses[s]);
    EXPECT_EQ(h[s].groups[0].lr, learning_rate(d_config().lr_schedule(kSteps), s));
    EXPECT_EQ(h[s].groups[1].lr, learning_rate(g_config(0).lr_schedule(kSteps), s));
    EXPECT_GT(h[s].groups[0].grad_norm, 0.0);
    EXPECT_GT(h[s].groups[1].grad_norm, 0.0);
    EXPECT_FALSE(log[s].contains("loss"));
    EXPECT_EQ(log[s].at("step"), s + 1);
    EXPECT_EQ(log[s].at("groups").at("discriminator").at("loss").get<double>(), d_losses[s]);
    EXPECT_EQ(log[s].at("groups").at("generator").at("lr").get<double>(), h[s].groups[1].lr);
    EXPECT_EQ(log[s].at("groups").at("generator").at("grad_norm").get<double>(), h[s].groups[1].grad_norm);
  }
  EXPECT_LT(h[0].groups[1].lr, h[1].groups[1].lr);  // the generator's own warmup
  EXPECT_GT(h[0].groups[0].grad_norm, d_config().grad_clip);  // the discriminator's turn clipped
  EXPECT_TRUE(fs::exists(dir.file("run") + "/loss-discriminator.png"));
  EXPECT_TRUE(fs::exists(dir.file("run") + "/loss-generator.png"));
  EXPECT_FALSE(fs::exists(dir.file("run") + "/loss.png"));
}

// (b) every 2: the generator's turns are steps 2, 4, 6 (counted from 1), after the discriminator's.
TEST(TrainerGroups, GeneratorEveryTwoStepsTakesTurnsOnEvenSteps) {
  test::TempDir dir;
  constexpr int64_t kSteps = 6;
  Gan gan(2);
  std::vector<std::string> turns;
  std::vector<at::Tensor> gen_at_d_turn;  // the generator at each step's start
  auto trainer = gan_trainer(gan, kSteps, dir.file("run"), 2, 0, [&](const std::string& group, int64_t step) {
    turns.push_back(group.substr(0, 1) + std::to_string(step));
    if (group == "discriminator") gen_at_d_turn.push_back(flat(*gan.gen));
  });
  trainer->run();
  EXPECT_EQ(turns, (std::vector<std::string>{"d0", "d1", "g1", "d2", "d3", "g3", "d4", "d5", "g5"}));
  gen_at_d_turn.push_back(flat(*gan.gen));
  for (int64_t s = 0; s < kSteps; ++s) {
    const bool generator_turn = (s + 1) % 2 == 0;
    EXPECT_EQ(!at::equal(gen_at_d_turn[s], gen_at_d_turn[s + 1]), generator_turn) << "step " << s;
  }
  EXPECT_EQ(trainer->optimizer("discriminator").steps_taken(), 6);
  EXPECT_EQ(trainer->optimizer("generator").steps_taken(), 3);
  // The generator's lr follows the run's step, not its own turn count.
  const auto& h = trainer->history();
  ASSERT_EQ(h.size(), 6u);
  ASSERT_EQ(h[0].groups.size(), 1u);
  ASSERT_EQ(h[1].groups.size(), 2u);
  EXPECT_EQ(h[1].groups[1].group, "generator");
  EXPECT_EQ(h[1].groups[1].lr, learning_rate(g_config(0).lr_schedule(kSteps), 1));
  const auto log = test::read_jsonl(dir.file("run") + "/metrics.jsonl");
  ASSERT_EQ(log.size(), 6u);
  EXPECT_FALSE(log[2].at("groups").contains("generator"));
  EXPECT_TRUE(log[3].at("groups").contains("generator"));
}

// (c) 4 steps + checkpoint + resume in a new Trainer + 4 steps = 8 steps, bit for bit: weights,
// moments, step counts and the generator's EMA (also when the split falls between the
// generator's turns). The first run is an 8-step run stopped by SIGINT after its 4th step (the
// cosine schedules span the run's steps).
TEST(TrainerGroups, ResumesBothGroupsBitExactly) {
  test::TempDir dir;
  constexpr int64_t kSteps = 8;
  Gan straight(3);
  auto a = gan_trainer(straight, kSteps, dir.file("straight"), 2, 0.7);
  a->run();
  for (const int64_t split : {4, 3}) {
    const std::string out = dir.file("split" + std::to_string(split));
    {
      Gan first(3);
      auto b = gan_trainer(first, kSteps, out, 2, 0.7, [&](const std::string& group, int64_t step) {
        if (group == "discriminator" && step == split - 1) std::raise(SIGINT);
      });
      ASSERT_EQ(b->run(), Trainer::Outcome::Interrupted);
      EXPECT_EQ(b->step(), split);
    }
    Gan second(99);  // initialised otherwise; everything must come from the checkpoint
    auto c = gan_trainer(second, kSteps, out, 2, 0.7);
    ASSERT_TRUE(c->resume_if_present());
    EXPECT_EQ(c->step(), split);
    ASSERT_EQ(c->history().size(), static_cast<size_t>(split));
    c->run();
    EXPECT_TRUE(at::equal(flat(*straight.disc), flat(*second.disc))) << split;
    EXPECT_TRUE(at::equal(flat(*straight.gen), flat(*second.gen))) << split;
    for (const char* group : {"discriminator", "generator"}) {
      expect_same(a->optimizer(group).state(), c->optimizer(group).state(), group);
      EXPECT_EQ(a->optimizer(group).steps_taken(), c->optimizer(group).steps_taken()) << group;
    }
    expect_same(a->ema("generator")->weights(), c->ema("generator")->weights(), "generator EMA");
    ASSERT_EQ(c->history().size(), a->history().size());
    for (size_t s = 0; s < a->history().size(); ++s) {
      ASSERT_EQ(a->history()[s].groups.size(), c->history()[s].groups.size()) << s;
      for (size_t k = 0; k < a->history()[s].groups.size(); ++k) {
        EXPECT_EQ(a->history()[s].groups[k].group, c->history()[s].groups[k].group);
        EXPECT_EQ(a->history()[s].groups[k].loss, c->history()[s].groups[k].loss);
        EXPECT_EQ(a->history()[s].groups[k].grad_norm, c->history()[s].groups[k].grad_norm);
      }
    }
  }
  EXPECT_EQ(a->optimizer("generator").steps_taken(), 4);
}

// Checkpoints of grouped runs: the usual files, every tensor prefixed with its group, the EMA
// file holding only the groups that keep one, and per-group step counts and settings.
TEST(TrainerGroups, CheckpointsPrefixEveryTensorWithItsGroup) {
  test::TempDir dir;
  Gan gan(4);
  auto t = gan_trainer(gan, 4, dir.file("run"), 2, 0.9);
  t->run();
  const std::string ckpt = t->latest_checkpoint();
  ASSERT_NE(ckpt.find("step-00000004"), std::string::npos);
  const auto names = [](const std::string& path) {
    std::vector<std::string> out;
    const auto reader = io::open_weights(path);
    for (const auto& info : reader->tensors()) out.push_back(info.name);
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(names(ckpt + "/model.safetensors"), (std::vector<std::string>{"discriminator/bias", "discriminator/weight",
                                                                          "generator/bias", "generator/weight"}));
  EXPECT_EQ(names(ckpt + "/optimizer.safetensors"),
            (std::vector<std::string>{"discriminator/exp_avg.bias", "discriminator/exp_avg.weight",
                                      "discriminator/exp_avg_sq.bias", "discriminator/exp_avg_sq.weight",
                                      "generator/exp_avg.bias", "generator/exp_avg.weight",
                                      "generator/exp_avg_sq.bias", "generator/exp_avg_sq.weight"}));
  EXPECT_EQ(names(ckpt + "/ema.safetensors"), (std::vector<std::string>{"generator/bias", "generator/weight"}));
  const auto state = nlohmann::json::parse(read_text_file(ckpt + "/state.json", 1 << 20));
  EXPECT_EQ(state.at("optimizer_steps"), (nlohmann::json{{"discriminator", 4}, {"generator", 2}}));
  EXPECT_EQ(state.at("config").at("groups").at("generator"), g_config(0.9).to_json());
  EXPECT_EQ(state.at("config").at("schedule"),
            (nlohmann::json{{{"group", "discriminator"}, {"every", 1}}, {{"group", "generator"}, {"every", 2}}}));
  EXPECT_FALSE(state.at("config").contains("lr"));  // the optimiser half is each group's own

  // Resuming with another generator lr, another cadence, or as a single-model run is refused.
  {
    Gan other(4);
    GroupConfig g = g_config(0.9);
    g.lr = 5e-3;
    Trainer changed({{.name = "discriminator", .module = other.disc.get(), .config = d_config(),
                      .loss = [](int64_t, int64_t, Rng&) { return at::Tensor(); }},
                     {.name = "generator", .module = other.gen.get(), .config = g,
                      .loss = [](int64_t, int64_t, Rng&) { return at::Tensor(); }}},
                    {{"discriminator", 1}, {"generator", 3}}, run_config(8), dir.file("run"));
    try {
      changed.resume();
      FAIL() << "resumed with another generator";
    } catch (const UsageError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("groups/generator/lr 0.01 -> 0.005"), std::string::npos) << what;
      EXPECT_NE(what.find("schedule/1/every 2 -> 3"), std::string::npos) << what;
      EXPECT_EQ(what.find("discriminator"), std::string::npos) << what;
    }
  }
  Trainer single(*gan.gen, run_config(8), dir.file("run"));
  EXPECT_THROW(single.resume(), UsageError);
}

// (d) An EMA of the generator only: it follows ema = d * ema + (1 - d) * weights after each of
// the generator's turns, validation sees it, apply_ema() installs it; the discriminator has none.
TEST(TrainerGroups, EMAOfTheGeneratorOnly) {
  test::TempDir dir;
  constexpr double kDecay = 0.6;
  constexpr int64_t kSteps = 4;
  Gan gan(5);
  std::vector<at::Tensor> gen_after;  // the generator at each step's start, then at the end
  auto t = gan_trainer(gan, kSteps, dir.file("run"), 1, kDecay, [&](const std::string& group, int64_t) {
    if (group == "discriminator") gen_after.push_back(flat(*gan.gen));
  });
  EXPECT_EQ(t->ema("discriminator"), nullptr);
  ASSERT_NE(t->ema("generator"), nullptr);
  EXPECT_THROW(t->ema(), UsageError);
  EXPECT_THROW(t->ema("critic"), UsageError);
  const at::Tensor disc_before = flat(*gan.disc);
  int validations = 0;
  t->run([&](int64_t step) {
    ++validations;
    const NamedTensors& ema = t->ema("generator")->weights();
    EXPECT_TRUE(at::equal(gan.gen->weight, ema[0].second)) << step;  // "weight" first, then "bias"
    EXPECT_TRUE(at::equal(gan.gen->bias, ema[1].second)) << step;
  });
  EXPECT_EQ(validations, 1);  // validate_every 0: at the end
  gen_after.push_back(flat(*gan.gen));
  ASSERT_EQ(gen_after.size(), static_cast<size_t>(kSteps + 1));
  at::Tensor expected = gen_after[0].to(at::kDouble);
  for (int64_t s = 1; s <= kSteps; ++s) expected = kDecay * expected + (1 - kDecay) * gen_after[s].to(at::kDouble);
  const NamedTensors& ema = t->ema("generator")->weights();
  const at::Tensor ema_flat = torch::cat({ema[0].second.flatten(), ema[1].second.flatten()});
  EXPECT_LT((ema_flat.to(at::kDouble) - expected).abs().max().item<double>(), 1e-6);
  EXPECT_GT((ema_flat - flat(*gan.gen)).abs().max().item<float>(), 1e-4);  // it lags the weights
  const at::Tensor disc_trained = flat(*gan.disc);
  EXPECT_FALSE(at::equal(disc_trained, disc_before));
  t->apply_ema();
  EXPECT_TRUE(at::equal(flat(*gan.gen), ema_flat));
  EXPECT_TRUE(at::equal(flat(*gan.disc), disc_trained));  // no EMA: unchanged
}

// Groups may share a module, each taking a subset of its parameters by name or by submodule
// path; a turn changes its own subset only, though the shared loss reaches every parameter.
TEST(TrainerGroups, GroupsCanShareAModule) {
  test::TempDir dir;
  torch::manual_seed(6);
  torch::nn::Sequential net(torch::nn::Linear(3, 4), torch::nn::Linear(4, 1));
  auto* body = net[0]->as<torch::nn::Linear>();
  auto* head = net[1]->as<torch::nn::Linear>();
  const at::Tensor head_bias = head->bias.detach().clone();
  GroupConfig c;
  c.lr = 1e-2;
  struct Seen {
    std::string turn;
    at::Tensor body, head;
  };
  std::vector<Seen> seen;
  const auto loss = [&](const std::string& group) -> Trainer::LossFn {
    return [&, group](int64_t step, int64_t, Rng& rng) {
      seen.push_back({group + std::to_string(step), body->weight.detach().clone(), head->weight.detach().clone()});
      const at::Tensor x = rng.randn({8, 3});
      return (net->forward(x) - x.sum(1, true)).pow(2).mean();
    };
  };
  Trainer t({{.name = "head", .module = net.ptr().get(), .parameters = {"1.weight"}, .config = c, .loss = loss("h")},
             {.name = "body", .module = net.ptr().get(), .parameters = {"0"}, .config = c, .loss = loss("b")}},
            {{"body", 2}, {"head", 1}}, TrainConfig::from_json({{"steps", 4}}), dir.file("run"));
  EXPECT_EQ(t.parameters("head").size(), 1u);
  EXPECT_EQ(t.parameters("body").size(), 2u);  // "0" takes 0.weight and 0.bias
  t.run();
  std::vector<std::string> turns;
  for (const auto& s : seen) turns.push_back(s.turn);
  ASSERT_EQ(turns, (std::vector<std::string>{"h0", "b1", "h1", "h2", "b3", "h3"}));
  EXPECT_TRUE(at::equal(seen[0].body, seen[1].body));   // h0 left the body alone
  EXPECT_FALSE(at::equal(seen[0].head, seen[1].head));  // and moved the head
  EXPECT_FALSE(at::equal(seen[1].body, seen[2].body));  // b1 moved the body
  EXPECT_TRUE(at::equal(seen[1].head, seen[2].head));   // and left the head alone
  EXPECT_TRUE(at::equal(head->bias, head_bias));        // in no group: never stepped
  EXPECT_EQ(t.optimizer("body").steps_taken(), 2);
  EXPECT_EQ(t.optimizer("head").steps_taken(), 4);
}

// (e) Every problem of a grouped configuration in one UsageError that names it.
TEST(TrainerGroups, BadGroupConfigurationsNameTheProblem) {
  test::TempDir dir;
  Gan gan(7);
  const Trainer::LossFn loss = [&](int64_t, int64_t, Rng& rng) { return d_loss(gan, rng); };
  const auto group = [&](const std::string& name, torch::nn::Module* module, std::vector<std::string> parameters = {}) {
    return Trainer::Group{.name = name, .module = module, .parameters = std::move(parameters), .loss = loss};
  };
  const auto refused = [&](std::vector<Trainer::Group> groups, std::vector<Trainer::Turn> schedule) -> std::string {
    try {
      Trainer t(std::move(groups), std::move(schedule), run_config(2), dir.file("run"));
    } catch (const UsageError& e) {
      return e.what();
    }
    return "(accepted)";
  };
  const auto expect_in = [](const std::string& what, const std::string& part) {
    EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' not in: " << what;
  };
  expect_in(refused({group("d", gan.disc.get()), group("d", gan.gen.get())}, {{"d", 1}}),
            "group 'd' is declared twice");
  expect_in(refused({group("a", gan.disc.get()), group("b", gan.disc.get(), {"weight"})}, {{"a", 1}, {"b", 1}}),
            "parameter 'weight' is in group 'a' and group 'b'");
  expect_in(refused({}, {}), "no parameter groups");
  expect_in(refused({group("d", gan.disc.get()), group("g", gan.gen.get())}, {{"d", 1}, {"critic", 1}}),
            "the schedule names unknown group 'critic'");
  {
    const std::string what = refused({group("d", gan.disc.get()), group("g", gan.gen.get())}, {{"d", 0}, {"d", 1}});
    expect_in(what, "group 'd': every must be >= 1 (is 0)");
    expect_in(what, "group 'd' has two turns in the schedule");
    expect_in(what, "group 'g' has no turn in the schedule");
  }
  {
    Trainer::Group bad = group("d/x", nullptr);
    bad.config.lr = -1;
    bad.loss = nullptr;
    const std::string what = refused({bad, group("g", gan.gen.get(), {"weight", "nope"})}, {{"d/x", 1}, {"g", 1}});
    expect_in(what, "group 'd/x': a name is letters, digits, '_' and '-'");
    expect_in(what, "group 'd/x' has no loss function");
    expect_in(what, "group 'd/x': lr must be > 0");
    expect_in(what, "group 'd/x' has no module");
    expect_in(what, "group 'g': its module has no parameter named 'nope'");
  }
  // Each kind of trainer refuses the other's run().
  Trainer grouped({group("d", gan.disc.get())}, {{"d", 1}}, run_config(1), dir.file("grouped"));
  EXPECT_THROW(grouped.run(loss), UsageError);
  Trainer single(*gan.disc, run_config(1), dir.file("single"));
  EXPECT_THROW(single.run(), UsageError);
}

TEST(TrainerGroups, GroupConfigFromJsonKeepsDefaultsAndNamesProblems) {
  const GroupConfig defaults = TrainConfig::from_json({{"steps", 1}, {"lr", 3e-4}, {"beta1", 0.0}}).group_config();
  const GroupConfig g = GroupConfig::from_json({{"lr", 1e-3}, {"ema_decay", 0.99}}, "generator", defaults);
  EXPECT_EQ(g.lr, 1e-3);
  EXPECT_EQ(g.ema_decay, 0.99);
  EXPECT_EQ(g.beta1, 0.0);  // from the defaults
  EXPECT_EQ(GroupConfig::from_json(g.to_json()).to_json(), g.to_json());
  try {
    GroupConfig::from_json({{"steps", 3}, {"lr", "fast"}, {"beta2", 1.5}}, "generator");
    FAIL() << "accepted";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    for (const char* part :
         {"generator: ", "unknown key steps", "lr has the wrong type", "beta1/beta2 must be in [0, 1)"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
  }
}

}  // namespace
}  // namespace genvis::train
