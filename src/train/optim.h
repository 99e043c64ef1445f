// Optimisation pieces shared by every training recipe, as pure tensor code with named state so
// that checkpoints hold exactly what resuming needs.
//
//   genvis::train::AdamW opt(model->named_parameters(), {.lr = 1e-4, .weight_decay = 0.01});
//   double norm = genvis::train::clip_grad_norm(opt.parameters(), 1.0);
//   opt.step(genvis::train::learning_rate(schedule, step));
//   ema.update(model->named_parameters());
#pragma once
#include <ATen/ATen.h>
#include <torch/ordered_dict.h>

#include <string>
#include <utility>
#include <vector>

namespace genvis::train {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
NamedTensors named(const torch::OrderedDict<std::string, at::Tensor>& dict);

// Learning rate at `step` (0-based): linear warmup from 0 over `warmup_steps`, then cosine decay
// from `lr` to `min_lr` at `total_steps` (constant after). A pure function of the step.
struct LRSchedule {
  double lr = 1e-4;
  double min_lr = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
};
double learning_rate(const LRSchedule& schedule, int64_t step);

// torch.optim.AdamW (decoupled weight decay, bias-corrected moments), f32 moments.
struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};
class AdamW {
public:
  AdamW(NamedTensors parameters, AdamWOptions options);
  // One update with learning rate `lr` from the parameters' .grad() (a missing grad skips the
  // parameter, as PyTorch does).
  void step(double lr);
  void zero_grad();
  const NamedTensors& parameters() const { return params_; }
  int64_t steps_taken() const { return t_; }
  // "<prefix>exp_avg.<name>", "<prefix>exp_avg_sq.<name>" for every parameter (the step count is
  // steps_taken()).
  NamedTensors state(const std::string& prefix = "") const;
  // Reads what state(prefix) wrote (other tensors in `state` are ignored). Throws LoadError
  // naming missing or mis-shaped moments.
  void load_state(const NamedTensors& state, int64_t steps_taken, const std::string& prefix = "");

private:
  NamedTensors params_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
  AdamWOptions options_;
  int64_t t_ = 0;
};

// Scales all gradients so that their global L2 norm is at most max_norm (<= 0: no clipping);
// returns the norm before clipping (torch.nn.utils.clip_grad_norm_).
double clip_grad_norm(const NamedTensors& parameters, double max_norm);

// Exponential moving average of parameters: ema = decay * ema + (1 - decay) * param.
class EMA {
public:
  EMA(const NamedTensors& parameters, double decay);
  void update(const NamedTensors& parameters);
  const NamedTensors& weights() const { return shadow_; }
  // Reads "<prefix><name>" for every parameter (other tensors are ignored); LoadError on a mismatch.
  void load(const NamedTensors& weights, const std::string& prefix = "");
  double decay() const { return decay_; }

private:
  NamedTensors shadow_;
  double decay_;
};

}  // namespace genvis::train
