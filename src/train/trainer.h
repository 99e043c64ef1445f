// The training loop every recipe shares: AdamW with warmup + cosine decay, gradient clipping and
// accumulation, EMA weights, bf16 autocast, per-step deterministic randomness, a JSONL metrics
// log and loss-curve PNG, a progress bar, and atomic checkpoints that resume exactly.
//
//   TrainConfig config = TrainConfig::from_json(json);              // unknown keys: one error
//   Trainer trainer(model, config, "runs/ldm");
//   trainer.resume_if_present();                                     // or resume() to insist
//   trainer.run([&](int64_t step, int64_t micro, Rng& rng) {         // returns a scalar loss
//     return recipe_loss(model, data.batch(step, micro), rng);
//   });
//
// Checkpoints: <out>/checkpoints/step-NNNNNNNN/{model,optimizer,ema}.safetensors + state.json,
// written into a temporary folder and renamed into place, then <out>/checkpoints/latest is
// replaced atomically. A kill -9 at any moment leaves `latest` naming a complete checkpoint.
// Randomness for step s comes from Rng(seed, s) alone, so resuming needs no generator state and
// N steps + resume + N steps equals 2N steps in one run, bit for bit.
#pragma once
#include "core/rng.h"
#include "train/optim.h"

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <torch/nn/module.h>

namespace genvis::train {

struct TrainConfig {
  int64_t steps = 0;  // required
  int64_t grad_accum = 1;
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
};

// A 64-bit seed for step `step` of a run seeded with `seed` (splitmix64 of both).
uint64_t step_seed(uint64_t seed, int64_t step);

struct StepMetrics {
  int64_t step = 0;  // steps completed
  double loss = 0, lr = 0, grad_norm = 0, seconds = 0;
};

class Trainer {
public:
  // loss for micro-batch `micro` of step `step`; the trainer divides by grad_accum and calls
  // backward(). `rng` is the step's own generator (shared by its micro-batches).
  using LossFn = std::function<at::Tensor(int64_t step, int64_t micro, Rng& rng)>;
  // Called every validate_every steps and at the end (steps completed, EMA weights applied when
  // the run keeps an EMA; restored afterwards).
  using ValidateFn = std::function<void(int64_t step)>;

  Trainer(torch::nn::Module& model, TrainConfig config, std::string out_dir);
  ~Trainer();

  // Loads <out>/checkpoints/latest: weights, optimizer moments, EMA, step. UsageError when the
  // checkpoint's config differs (other than steps and logging/checkpoint cadence), naming each
  // difference; LoadError when there is no checkpoint or it is damaged.
  void resume();
  bool resume_if_present();
  // The recipes' rule: with `allowed`, resume_if_present(); without it, existing checkpoints are
  // a UsageError naming `what` and their folder (nothing is overwritten).
  bool resume_if_allowed(bool allowed, const std::string& what);
  // Copies the EMA weights into the model for good (what a recipe exports); no-op without an EMA.
  void apply_ema();

  enum class Outcome { Finished, Interrupted };
  // Trains to config.steps. SIGINT/SIGTERM finish the current step, write a checkpoint and
  // return Interrupted.
  Outcome run(const LossFn& loss, const ValidateFn& validate = {});

  // Writes a checkpoint of the current state now (atomic). `extra` is stored in state.json.
  void save_checkpoint();
  std::string latest_checkpoint() const;  // folder, or "" when none

  int64_t step() const { return step_; }
  const TrainConfig& config() const { return config_; }
  const std::vector<StepMetrics>& history() const { return history_; }
  EMA* ema() { return ema_ ? &*ema_ : nullptr; }
  // Recipe data kept in state.json (e.g. dataset and model configs). resume() refuses a checkpoint
  // whose extra state differs in any key both have (naming each differing leaf), then keeps the
  // union (keys only this run has are added).
  nlohmann::json extra_state;

  // Test hook: called after the checkpoint files are written, before they are committed.
  std::function<void()> before_commit;

private:
  void write_metrics(const StepMetrics& m);
  void write_loss_plot() const;

  torch::nn::Module& model_;
  TrainConfig config_;
  std::string out_dir_;
  NamedTensors params_;
  AdamW optimizer_;
  std::optional<EMA> ema_;
  int64_t step_ = 0;
  std::vector<StepMetrics> history_;
};

// Every leaf where `after` differs from `before`, as "/json/pointer before -> after" (values as
// JSON, "(absent)" for a side without it): how a refused run or model names what changed.
std::vector<std::string> json_differences(const nlohmann::json& before, const nlohmann::json& after);

// Renders a loss curve (raw and smoothed) to a PNG.
void write_loss_curve_png(const std::string& path, const std::vector<StepMetrics>& history);

}  // namespace genvis::train
