#include "train/optim.h"

#include "core/error.h"

#include <cmath>
#include <map>
#include <torch/torch.h>

namespace genvis::train {

NamedTensors named(const torch::OrderedDict<std::string, at::Tensor>& dict) {
  NamedTensors out;
  for (const auto& item : dict) out.emplace_back(item.key(), item.value());
  return out;
}

double learning_rate(const LRSchedule& s, int64_t step) {
  if (step < s.warmup_steps) return s.lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps);
  const int64_t decay_steps = s.total_steps - s.warmup_steps;
  if (decay_steps <= 0) return s.lr;
  const double progress = std::min(1.0, static_cast<double>(step - s.warmup_steps) / static_cast<double>(decay_steps));
  return s.min_lr + (s.lr - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

namespace {

std::map<std::string, at::Tensor> by_name(const NamedTensors& tensors) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, t] : tensors) out.emplace(name, t);
  return out;
}

// Copies `source[prefix + name]` into each target; one LoadError lists every problem.
void copy_named(const std::vector<std::pair<std::string, at::Tensor*>>& targets, const NamedTensors& source,
                const std::string& prefix, const char* what) {
  const auto src = by_name(source);
  std::vector<std::string> problems;
  for (const auto& [name, target] : targets) {
    const auto it = src.find(prefix + name);
    if (it == src.end()) {
      problems.push_back("missing " + prefix + name);
    } else if (it->second.sizes() != target->sizes()) {
      problems.push_back(prefix + name + " has shape " + c10::str(it->second.sizes()) + ", expected " +
                         c10::str(target->sizes()));
    }
  }
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    throw LoadError(what, all);
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, target] : targets) target->copy_(src.at(prefix + name));
}

}  // namespace

AdamW::AdamW(NamedTensors parameters, AdamWOptions options) : params_(std::move(parameters)), options_(options) {
  for (const auto& [name, p] : params_) {
    exp_avg_.push_back(at::zeros_like(p, p.options().dtype(at::kFloat)));
    exp_avg_sq_.push_back(at::zeros_like(p, p.options().dtype(at::kFloat)));
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++t_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(t_));
  const double bias2 = 1.0 - std::pow(b2, static_cast<double>(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor p = params_[i].second;
    const at::Tensor g = p.grad();
    if (!g.defined()) continue;
    const at::Tensor g32 = g.to(at::kFloat);
    exp_avg_[i].mul_(b1).add_(g32, 1.0 - b1);
    exp_avg_sq_[i].mul_(b2).addcmul_(g32, g32, 1.0 - b2);
    // PyTorch's order: decay first, then the Adam step.
    at::Tensor p32 = p.scalar_type() == at::kFloat ? p : p.to(at::kFloat);
    p32.mul_(1.0 - lr * options_.weight_decay);
    const at::Tensor denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bias2)).add_(options_.eps);
    p32.addcdiv_(exp_avg_[i], denom, -lr / bias1);
    if (p32.data_ptr() != p.data_ptr()) p.copy_(p32);
  }
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_) {
    if (p.grad().defined()) {
      p.mutable_grad().detach_();
      p.mutable_grad().zero_();
    }
  }
}

NamedTensors AdamW::state(const std::string& prefix) const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(prefix + "exp_avg." + params_[i].first, exp_avg_[i]);
    out.emplace_back(prefix + "exp_avg_sq." + params_[i].first, exp_avg_sq_[i]);
  }
  return out;
}

void AdamW::load_state(const NamedTensors& state, int64_t steps_taken, const std::string& prefix) {
  std::vector<std::pair<std::string, at::Tensor*>> m, v;
  for (size_t i = 0; i < params_.size(); ++i) {
    m.emplace_back(params_[i].first, &exp_avg_[i]);
    v.emplace_back(params_[i].first, &exp_avg_sq_[i]);
  }
  copy_named(m, state, prefix + "exp_avg.", "optimizer state");
  copy_named(v, state, prefix + "exp_avg_sq.", "optimizer state");
  t_ = steps_taken;
}

double clip_grad_norm(const NamedTensors& parameters, double max_norm) {
  torch::NoGradGuard no_grad;
  double sq = 0;
  for (const auto& [name, p] : parameters)
    if (p.grad().defined()) sq += p.grad().to(at::kDouble).pow(2).sum().item<double>();
  const double norm = std::sqrt(sq);
  const double scale = max_norm / (norm + 1e-6);
  if (max_norm > 0 && scale < 1.0) {
    for (const auto& [name, p] : parameters)
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return norm;
}

EMA::EMA(const NamedTensors& parameters, double decay) : decay_(decay) {
  if (!(decay >= 0 && decay < 1)) throw UsageError("EMA decay must be in [0, 1)");
  for (const auto& [name, p] : parameters) shadow_.emplace_back(name, p.detach().to(at::kFloat).clone());
}

void EMA::update(const NamedTensors& parameters) {
  torch::NoGradGuard no_grad;
  if (parameters.size() != shadow_.size()) throw RuntimeError("EMA: parameter list changed");
  for (size_t i = 0; i < shadow_.size(); ++i) shadow_[i].second.lerp_(parameters[i].second.to(at::kFloat), 1.0 - decay_);
}

void EMA::load(const NamedTensors& weights, const std::string& prefix) {
  std::vector<std::pair<std::string, at::Tensor*>> targets;
  for (auto& [name, t] : shadow_) targets.emplace_back(name, &t);
  copy_named(targets, weights, prefix, "EMA weights");
}

}  // namespace genvis::train
