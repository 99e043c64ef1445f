// The training loop every recipe shares: AdamW with warmup + cosine decay, gradient clipping and
// accumulation, EMA weights, bf16 autocast, per-step deterministic randomness, a JSONL metrics
// log and loss-curve PNG, a progress bar, and atomic checkpoints that resume exactly.
//
// One model, one optimiser, one loss:
//   TrainConfig config = TrainConfig::from_json(json);              // unknown keys: one error
//   Trainer trainer(model, config, "runs/ldm");
//   trainer.resume_if_present();                                     // or resume() to insist
//   trainer.run([&](int64_t step, int64_t micro, Rng& rng) {         // returns a scalar loss
//     return recipe_loss(model, data.batch(step, micro), rng);
//   });
//
// Several parameter groups, each with its own AdamW, LR schedule, clipping, EMA and loss, taking
// turns in a declared order. A GAN: the discriminator every step, then the generator every 2nd
// step, with an EMA of the generator only:
//   GroupConfig d_opt = config.group_config(), g_opt = config.group_config();  // start from the
//   d_opt.lr = 4e-4;                                                            // top-level keys
//   g_opt.ema_decay = 0.999;
//   Trainer trainer({{.name = "discriminator", .module = disc.get(), .config = d_opt,
//                     .loss = [&](int64_t step, int64_t micro, Rng& rng) {
//                       const at::Tensor fake = gen->forward(rng.randn({8, 64})).detach();
//                       return hinge_d(disc->forward(data.batch(step, micro)), disc->forward(fake));
//                     }},
//                    {.name = "generator", .module = gen.get(), .config = g_opt,
//                     .loss = [&](int64_t, int64_t, Rng& rng) {
//                       return -disc->forward(gen->forward(rng.randn({8, 64}))).mean();
//                     }}},
//                   {{"discriminator", 1}, {"generator", 2}},  // the turns: order, every N steps
//                   config, "runs/gan");
//   trainer.resume_if_present();
//   trainer.run([&](int64_t step) { write_samples(*gen, step); });  // generator EMA applied
//
// A step s (0-based) runs, in schedule order, each group whose `every` divides s + 1 (every 2:
// steps 2, 4, ... counted from 1, so the generator's first turn follows two discriminator
// turns). A turn zeroes the gradients of every parameter of every group's module, sums the
// group's loss over grad_accum micro-batches (each divided by grad_accum, then backward), clips
// the group's own gradients, steps the group's own AdamW at its own lr(s) and updates its own
// EMA. So a generator loss that backpropagates through the discriminator leaves the
// discriminator untouched, and no turn sees another turn's gradients. Micro-batch m of step s
// draws from its own generator Rng(micro_seed(seed, s, m)) (micro 0: Rng(step_seed(seed, s))),
// shared by the step's turns in order.
//
// Data parallel (core/distributed.h): with W processes, each runs grad_accum / W of every step's
// micro-batches (rank r: micro-batches r * grad_accum / W onwards, with their own generators), the
// group's gradients and loss are summed over processes before clipping, and every process takes
// the same update, which equals one process running all grad_accum micro-batches (up to the order
// of float additions). grad_accum must be a multiple of W. Rank 0 alone writes checkpoints,
// metrics and loss plots and runs validation (the others wait); every rank resumes from rank 0's
// checkpoint, so a run resumes exactly at any W that divides grad_accum.
//
// Checkpoints: <out>/checkpoints/step-NNNNNNNN/{model,optimizer,ema}.safetensors + state.json,
// written into a temporary folder and renamed into place, then <out>/checkpoints/latest is
// replaced atomically. A kill -9 at any moment leaves `latest` naming a complete checkpoint.
// Grouped runs use the same files with every tensor name prefixed "<group>/" (ema.safetensors
// holds the groups that keep an EMA, and is absent when none does); their state.json has
// "optimizer_steps": {group: count} and the groups' settings and turns under config "groups"
// and "schedule". Randomness for step s comes from Rng(seed, s) alone, so resuming needs no
// generator state and N steps + resume + N steps equals 2N steps in one run, bit for bit.
//
// Metrics: a single-model run logs {step, loss, lr, grad_norm, seconds} per step and plots
// loss.png; a grouped run logs {step, seconds, groups: {name: {loss, lr, grad_norm}}} with the
// groups that took a turn, and plots loss-<group>.png per group.
#pragma once
#include "core/rng.h"
#include "train/optim.h"

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <torch/nn/module.h>

namespace genvis::train {

// The optimiser, schedule, clipping and EMA settings of one parameter group: the matching half
// of TrainConfig (a single-model Trainer is one group with TrainConfig::group_config()).
struct GroupConfig {
  double lr = 1e-4, min_lr = 0.0;
  int64_t warmup_steps = 0;
  double weight_decay = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double grad_clip = 1.0;  // <= 0: off
  double ema_decay = 0.0;  // 0: no EMA

  // The keys above; absent ones keep `defaults` (the values above when not given). Every unknown
  // key, wrong type and invalid value in one UsageError naming `source`.
  static GroupConfig from_json(const nlohmann::json& json, const std::string& source, const GroupConfig& defaults);
  static GroupConfig from_json(const nlohmann::json& json, const std::string& source = "group config");
  nlohmann::json to_json() const;
  // Each invalid value, worded as from_json words it (empty when valid).
  std::vector<std::string> problems() const;
  // Warmup + cosine over the run's `total_steps` (the group's turns follow the run's step).
  LRSchedule lr_schedule(int64_t total_steps) const { return {lr, min_lr, warmup_steps, total_steps}; }
};

struct TrainConfig {
  int64_t steps = 0;  // required
  int64_t grad_accum = 1;
  // The optimiser half (group_config()); a grouped Trainer uses each group's own instead.
  double lr = 1e-4, min_lr = 0.0;
  int64_t warmup_steps = 0;
  double weight_decay = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double grad_clip = 1.0;  // <= 0: off
  double ema_decay = 0.0;  // 0: no EMA
  int64_t checkpoint_every = 500;
  int64_t keep_checkpoints = 2;
  int64_t log_every = 10;
  int64_t validate_every = 0;  // 0: only at the end
  uint64_t seed = 0;
  std::string autocast = "none";  // "none" or "bf16"

  // Every unknown key, wrong type and invalid value in one UsageError naming `source`.
  static TrainConfig from_json(const nlohmann::json& json, const std::string& source = "training config");
  nlohmann::json to_json() const;
  LRSchedule lr_schedule() const { return {lr, min_lr, warmup_steps, steps}; }
  GroupConfig group_config() const;
};

// A 64-bit seed for step `step` of a run seeded with `seed` (splitmix64 of both).
uint64_t step_seed(uint64_t seed, int64_t step);
// The seed of micro-batch `micro` of that step: step_seed(seed, step) for micro 0 (so a run without
// accumulation draws as it always has), another splitmix64 stream for each further one.
uint64_t micro_seed(uint64_t seed, int64_t step, int64_t micro);

// One group's turn in a step of a grouped run.
struct GroupMetrics {
  std::string group;
  double loss = 0, lr = 0, grad_norm = 0;
};

struct StepMetrics {
  int64_t step = 0;  // steps completed
  double loss = 0, lr = 0, grad_norm = 0, seconds = 0;  // single-model runs (0 in grouped runs)
  std::vector<GroupMetrics> groups;  // grouped runs: the groups that took a turn, in turn order
};

class Trainer {
public:
  // loss for micro-batch `micro` of step `step`; the trainer divides by grad_accum and calls
  // backward(). `rng` is the micro-batch's own generator (shared by the step's turns).
  using LossFn = std::function<at::Tensor(int64_t step, int64_t micro, Rng& rng)>;
  // Called every validate_every steps and at the end (steps completed, EMA weights applied where
  // the run keeps an EMA; restored afterwards).
  using ValidateFn = std::function<void(int64_t step)>;

  // A parameter group of a grouped run.
  struct Group {
    std::string name;  // letters, digits, '_' and '-'; prefixes the group's tensors in checkpoints
    torch::nn::Module* module = nullptr;  // in train() mode during the run, eval() otherwise
    // Names of the module's parameters to train, each a parameter or a submodule path ("a" takes
    // "a.weight" and "a.b.bias"); empty: all of them. A tensor may belong to one group only.
    std::vector<std::string> parameters;
    GroupConfig config;
    LossFn loss;
  };
  // A group's place in every step: turns run in schedule order, each on the steps s where
  // (s + 1) % every == 0.
  struct Turn {
    std::string group;
    int64_t every = 1;
  };

  // One model, config's optimiser half; checkpoints and metrics as they have always been.
  Trainer(torch::nn::Module& model, TrainConfig config, std::string out_dir);
  // Several groups; config's steps, grad_accum, cadences, seed and autocast apply to all of them,
  // its optimiser half to none. One UsageError names every problem: no groups, a duplicate or
  // malformed name, a group without module, loss or parameters, a parameter name that matches
  // nothing, a tensor in two groups, an invalid GroupConfig, a turn for an unknown group, a group
  // with no turn or two, every < 1.
  Trainer(std::vector<Group> groups, std::vector<Turn> schedule, TrainConfig config, std::string out_dir);
  ~Trainer();

  // Loads <out>/checkpoints/latest: weights, optimizer moments, EMA, step. UsageError when the
  // checkpoint's config differs (other than steps and logging/checkpoint cadence), naming each
  // difference; LoadError when there is no checkpoint or it is damaged.
  void resume();
  bool resume_if_present();
  // The recipes' rule: with `allowed`, resume_if_present(); without it, existing checkpoints are
  // a UsageError naming `what` and their folder (nothing is overwritten).
  bool resume_if_allowed(bool allowed, const std::string& what);
  // Copies the EMA weights into the model for good (what a recipe exports): every group that
  // keeps an EMA; no-op without one.
  void apply_ema();

  enum class Outcome { Finished, Interrupted };
  // Trains to config.steps. SIGINT/SIGTERM finish the current step, write a checkpoint and
  // return Interrupted. The first form is for single-model trainers, the second for grouped ones
  // (their losses are in the groups); each refuses the other kind with a UsageError.
  Outcome run(const LossFn& loss, const ValidateFn& validate = {});
  Outcome run(const ValidateFn& validate = {});

  // Writes a checkpoint of the current state now (atomic). `extra` is stored in state.json.
  void save_checkpoint();
  std::string latest_checkpoint() const;  // folder, or "" when none

  int64_t step() const { return step_; }
  const TrainConfig& config() const { return config_; }
  const std::vector<StepMetrics>& history() const { return history_; }
  // The EMA of a single-model run (nullptr without one); UsageError for a grouped run.
  EMA* ema();
  // A group's EMA (nullptr when it keeps none), optimiser and parameters; UsageError for an
  // unknown group. A single-model trainer's one group is "model".
  EMA* ema(const std::string& group);
  const AdamW& optimizer(const std::string& group) const;
  const NamedTensors& parameters(const std::string& group) const;
  // Recipe data kept in state.json (e.g. dataset and model configs). resume() refuses a checkpoint
  // whose extra state differs in any key both have (naming each differing leaf), then keeps the
  // union (keys only this run has are added).
  nlohmann::json extra_state;

  // Test hook: called after the checkpoint files are written, before they are committed.
  std::function<void()> before_commit;

private:
  struct GroupState;

  Outcome run_steps(const ValidateFn& validate);
  void check_world() const;  // grad_accum divides over the processes (core/distributed.h)
  void sync_replicas();      // rank 0's state on every process, after checking they run alike
  GroupState& group(const std::string& name);
  const GroupState& group(const std::string& name) const;
  nlohmann::json run_json() const;  // the settings a resumed run must share (state.json "config")
  void write_metrics(const StepMetrics& m);
  void write_loss_plot() const;

  std::vector<torch::nn::Module*> modules_;
  // The modules' buffers (batch-norm running statistics, ...), checkpointed beside the weights
  // so that a resumed run continues exactly; named as the weights are.
  std::vector<std::pair<std::string, at::Tensor>> buffers_;
  TrainConfig config_;
  std::string out_dir_;
  bool grouped_;                        // built from groups: prefixed checkpoint names, per-group metrics
  std::vector<GroupState> groups_;      // in schedule order
  std::vector<at::Tensor> all_params_;  // every parameter of every module, zeroed before each turn
  int64_t step_ = 0;
  std::vector<StepMetrics> history_;
};

// Every leaf where `after` differs from `before`, as "/json/pointer before -> after" (values as
// JSON, "(absent)" for a side without it): how a refused run or model names what changed.
std::vector<std::string> json_differences(const nlohmann::json& before, const nlohmann::json& after);

// Renders a loss curve (raw and smoothed) to a PNG.
void write_loss_curve_png(const std::string& path, const std::vector<StepMetrics>& history);

}  // namespace genvis::train
