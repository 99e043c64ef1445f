#include "train/trainer.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/torch_compat.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "io/weights.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <torch/torch.h>
#include <unistd.h>

namespace genvis::train {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

// Reads `key` into `field` when present, recording a type problem otherwise.
template <typename T>
void read_key(const nlohmann::json& j, const char* key, T& field, std::vector<std::string>& problems) {
  if (!j.contains(key) || j[key].is_null()) return;
  const auto& v = j[key];
  bool ok;
  if constexpr (std::is_same_v<T, std::string>)
    ok = v.is_string();
  else if constexpr (std::is_integral_v<T>)
    ok = v.is_number_integer() || v.is_number_unsigned();
  else
    ok = v.is_number();
  if (!ok) {
    problems.push_back(std::string(key) + " has the wrong type (" + v.type_name() + ")");
    return;
  }
  field = v.get<T>();
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

NamedTensors load_all(const std::string& path) {
  auto reader = io::open_weights(path);
  NamedTensors out;
  for (const auto& info : reader->tensors()) out.emplace_back(info.name, reader->load(info.name, at::kFloat).clone());
  return out;
}

NamedTensors to_cpu_f32(const NamedTensors& tensors) {
  NamedTensors out;
  for (const auto& [name, t] : tensors) out.emplace_back(name, t.detach().to(at::kFloat).cpu().contiguous());
  return out;
}

// Keys whose values may differ between a checkpoint and the config resuming it.
bool may_differ(const std::string& key) {
  return key == "steps" || key == "checkpoint_every" || key == "keep_checkpoints" || key == "log_every" ||
         key == "validate_every";
}

}  // namespace

uint64_t step_seed(uint64_t seed, int64_t step) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (static_cast<uint64_t>(step) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw UsageError(source + ": expected a JSON object");
  TrainConfig c;
  std::vector<std::string> problems;
  static const std::vector<std::string> known = {
      "steps",        "grad_accum", "lr",        "min_lr",          "warmup_steps",    "weight_decay", "beta1",
      "beta2",        "eps",        "grad_clip", "ema_decay",       "checkpoint_every", "keep_checkpoints",
      "log_every",    "validate_every", "seed",  "autocast"};
  for (const auto& [key, value] : j.items())
    if (std::find(known.begin(), known.end(), key) == known.end()) problems.push_back("unknown key '" + key + "'");
  if (!j.contains("steps")) problems.push_back("missing key 'steps'");
  read_key(j, "steps", c.steps, problems);
  read_key(j, "grad_accum", c.grad_accum, problems);
  read_key(j, "lr", c.lr, problems);
  read_key(j, "min_lr", c.min_lr, problems);
  read_key(j, "warmup_steps", c.warmup_steps, problems);
  read_key(j, "weight_decay", c.weight_decay, problems);
  read_key(j, "beta1", c.beta1, problems);
  read_key(j, "beta2", c.beta2, problems);
  read_key(j, "eps", c.eps, problems);
  read_key(j, "grad_clip", c.grad_clip, problems);
  read_key(j, "ema_decay", c.ema_decay, problems);
  read_key(j, "checkpoint_every", c.checkpoint_every, problems);
  read_key(j, "keep_checkpoints", c.keep_checkpoints, problems);
  read_key(j, "log_every", c.log_every, problems);
  read_key(j, "validate_every", c.validate_every, problems);
  read_key(j, "seed", c.seed, problems);
  read_key(j, "autocast", c.autocast, problems);
  if (j.contains("steps") && c.steps < 1) problems.push_back("steps must be >= 1");
  if (c.grad_accum < 1) problems.push_back("grad_accum must be >= 1");
  if (!(c.lr > 0) || !std::isfinite(c.lr)) problems.push_back("lr must be > 0");
  if (c.min_lr < 0 || c.min_lr > c.lr) problems.push_back("min_lr must be in [0, lr]");
  if (c.warmup_steps < 0) problems.push_back("warmup_steps must be >= 0");
  if (c.weight_decay < 0) problems.push_back("weight_decay must be >= 0");
  if (!(c.beta1 >= 0 && c.beta1 < 1) || !(c.beta2 >= 0 && c.beta2 < 1)) problems.push_back("beta1/beta2 must be in [0, 1)");
  if (!(c.eps > 0)) problems.push_back("eps must be > 0");
  if (!(c.ema_decay >= 0 && c.ema_decay < 1)) problems.push_back("ema_decay must be in [0, 1)");
  if (c.checkpoint_every < 1) problems.push_back("checkpoint_every must be >= 1");
  if (c.keep_checkpoints < 1) problems.push_back("keep_checkpoints must be >= 1");
  if (c.log_every < 1) problems.push_back("log_every must be >= 1");
  if (c.validate_every < 0) problems.push_back("validate_every must be >= 0");
  if (c.autocast != "none" && c.autocast != "bf16") problems.push_back("autocast must be \"none\" or \"bf16\"");
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    throw UsageError(source + ": " + all);
  }
  return c;
}

nlohmann::json TrainConfig::to_json() const {
  return {{"steps", steps},
          {"grad_accum", grad_accum},
          {"lr", lr},
          {"min_lr", min_lr},
          {"warmup_steps", warmup_steps},
          {"weight_decay", weight_decay},
          {"beta1", beta1},
          {"beta2", beta2},
          {"eps", eps},
          {"grad_clip", grad_clip},
          {"ema_decay", ema_decay},
          {"checkpoint_every", checkpoint_every},
          {"keep_checkpoints", keep_checkpoints},
          {"log_every", log_every},
          {"validate_every", validate_every},
          {"seed", seed},
          {"autocast", autocast}};
}

Trainer::Trainer(torch::nn::Module& model, TrainConfig config, std::string out_dir)
    : model_(model),
      config_(std::move(config)),
      out_dir_(std::move(out_dir)),
      params_(named(model.named_parameters(/*recurse=*/true))),
      optimizer_(params_, AdamWOptions{config_.beta1, config_.beta2, config_.eps, config_.weight_decay}) {
  if (config_.ema_decay > 0) ema_.emplace(params_, config_.ema_decay);
  fs::create_directories(fs::path(out_dir_) / "checkpoints");
}

Trainer::~Trainer() = default;

std::string Trainer::latest_checkpoint() const {
  const fs::path latest = fs::path(out_dir_) / "checkpoints" / "latest";
  if (!fs::exists(latest)) return "";
  std::string name = read_text_file(latest.string(), 4096);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  if (name.empty() || name.find('/') != std::string::npos)
    throw LoadError(latest.string(), "not a checkpoint name: '" + name + "'");
  return (fs::path(out_dir_) / "checkpoints" / name).string();
}

void Trainer::save_checkpoint() {
  const fs::path root = fs::path(out_dir_) / "checkpoints";
  const std::string name = step_dir_name(step_);
  const fs::path tmp = root / (name + ".tmp");
  const fs::path final_dir = root / name;
  // Saved already (an interrupt right after a scheduled checkpoint): the state is the same.
  if (latest_checkpoint() == final_dir.string() && fs::exists(final_dir / "state.json")) return;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  io::save_safetensors((tmp / "model.safetensors").string(), to_cpu_f32(params_));
  io::save_safetensors((tmp / "optimizer.safetensors").string(), to_cpu_f32(optimizer_.state()));
  if (ema_) io::save_safetensors((tmp / "ema.safetensors").string(), to_cpu_f32(ema_->weights()));
  nlohmann::json state = {{"format", "genvis-train-checkpoint"},
                          {"version", 1},
                          {"step", step_},
                          {"optimizer_steps", optimizer_.steps_taken()},
                          {"config", config_.to_json()},
                          {"extra", extra_state.is_null() ? nlohmann::json::object() : extra_state}};
  write_file_atomic((tmp / "state.json").string(), state.dump(2));
  if (before_commit) before_commit();
  fsync_path(tmp.string());
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  fsync_path(root.string());
  write_file_atomic((root / "latest").string(), name + "\n");
  // Older checkpoints beyond keep_checkpoints, and leftovers of interrupted saves.
  std::vector<fs::path> complete;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string n = e.path().filename().string();
    if (!e.is_directory() || n.rfind("step-", 0) != 0) continue;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp")
      fs::remove_all(e.path());
    else
      complete.push_back(e.path());
  }
  std::sort(complete.begin(), complete.end());
  for (size_t i = 0; i + static_cast<size_t>(config_.keep_checkpoints) < complete.size(); ++i)
    if (complete[i] != final_dir) fs::remove_all(complete[i]);
  write_loss_plot();
}

bool Trainer::resume_if_present() {
  if (latest_checkpoint().empty()) return false;
  resume();
  return true;
}

bool Trainer::resume_if_allowed(bool allowed, const std::string& what) {
  if (latest_checkpoint().empty()) return false;
  if (!allowed)
    throw UsageError(what + " has checkpoints in " + latest_checkpoint() +
                     "; pass --resume to continue it or choose another --out");
  resume();
  return true;
}

void Trainer::apply_ema() {
  if (!ema_) return;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) params_[i].second.copy_(ema_->weights()[i].second);
}

void Trainer::resume() {
  const std::string dir = latest_checkpoint();
  if (dir.empty()) throw LoadError(out_dir_, "no checkpoint to resume from (checkpoints/latest is missing)");
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(read_text_file((fs::path(dir) / "state.json").string(), 64 << 20));
  } catch (const nlohmann::json::exception& e) {
    throw LoadError(dir + "/state.json", std::string("not valid JSON: ") + e.what());
  }
  if (state.value("format", "") != "genvis-train-checkpoint")
    throw LoadError(dir + "/state.json", "not a genvis training checkpoint");
  // The run must be the same run: every setting but the length and the cadences.
  const nlohmann::json saved = state["config"], now = config_.to_json();
  std::vector<std::string> diffs;
  for (const auto& [key, value] : now.items()) {
    if (may_differ(key)) continue;
    if (!saved.contains(key) || saved[key] != value)
      diffs.push_back(key + " " + (saved.contains(key) ? saved[key].dump() : std::string("(absent)")) + " -> " +
                      value.dump());
  }
  // And the recipe's own description of the run (model configs, stage, initialisation): every
  // key both the checkpoint and this run state, compared leaf by leaf (keys added to a recipe
  // later are absent from older checkpoints and not compared).
  const nlohmann::json saved_extra = state.value("extra", nlohmann::json::object());
  if (extra_state.is_object() && saved_extra.is_object())
    for (const auto& [key, value] : extra_state.items()) {
      if (!saved_extra.contains(key)) continue;
      for (const auto& d : json_differences(saved_extra[key], value)) diffs.push_back(key + d);
    }
  if (!diffs.empty()) {
    std::string all;
    for (const auto& d : diffs) all += (all.empty() ? "" : ", ") + d;
    throw UsageError("cannot resume " + dir + " with a different configuration: " + all);
  }
  const NamedTensors weights = load_all((fs::path(dir) / "model.safetensors").string());
  {
    std::vector<std::string> problems;
    std::map<std::string, at::Tensor> by_name(weights.begin(), weights.end());
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : params_) {
      const auto it = by_name.find(name);
      if (it == by_name.end())
        problems.push_back("missing " + name);
      else if (it->second.sizes() != p.sizes())
        problems.push_back(name + " has shape " + c10::str(it->second.sizes()));
    }
    if (!problems.empty()) {
      std::string all;
      for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
      throw LoadError(dir + "/model.safetensors", all);
    }
    for (auto& [name, p] : params_) p.copy_(by_name.at(name));
  }
  optimizer_.load_state(load_all((fs::path(dir) / "optimizer.safetensors").string()),
                        state.value("optimizer_steps", int64_t{0}));
  if (ema_) ema_->load(load_all((fs::path(dir) / "ema.safetensors").string()));
  step_ = state.value("step", int64_t{0});
  // The checkpoint's extra state, with the keys it lacks added from this run's.
  if (saved_extra.is_object() && extra_state.is_object()) {
    nlohmann::json merged = extra_state;
    merged.update(saved_extra);
    extra_state = merged;
  } else {
    extra_state = saved_extra;
  }
  // The metrics log continues from the checkpoint: drop lines written after it.
  history_.clear();
  const fs::path log = fs::path(out_dir_) / "metrics.jsonl";
  if (fs::exists(log)) {
    std::ifstream in(log);
    std::string line, kept;
    while (std::getline(in, line)) {
      try {
        const auto j = nlohmann::json::parse(line);
        if (j.value("step", int64_t{0}) > step_) continue;
        history_.push_back({j.value("step", int64_t{0}), j.value("loss", 0.0), j.value("lr", 0.0),
                            j.value("grad_norm", 0.0), j.value("seconds", 0.0)});
        kept += line + "\n";
      } catch (const nlohmann::json::exception&) {
        // a torn last line from a killed run
      }
    }
    write_file_atomic(log.string(), kept);
  }
  log_info("resumed " + dir + " at step " + std::to_string(step_));
}

void Trainer::write_metrics(const StepMetrics& m) {
  const nlohmann::json j = {{"step", m.step}, {"loss", m.loss}, {"lr", m.lr}, {"grad_norm", m.grad_norm},
                            {"seconds", m.seconds}};
  std::ofstream out(fs::path(out_dir_) / "metrics.jsonl", std::ios::app);
  out << j.dump() << "\n";
}

void Trainer::write_loss_plot() const {
  if (history_.size() >= 2) write_loss_curve_png((fs::path(out_dir_) / "loss.png").string(), history_);
}

Trainer::Outcome Trainer::run(const LossFn& loss_fn, const ValidateFn& validate) {
  g_stop = false;
  auto previous_int = std::signal(SIGINT, on_signal);
  auto previous_term = std::signal(SIGTERM, on_signal);
  struct Restore {
    decltype(previous_int) i, t;
    ~Restore() {
      std::signal(SIGINT, i);
      std::signal(SIGTERM, t);
    }
  } restore{previous_int, previous_term};

  const auto with_ema = [&](int64_t step) {
    if (!validate) return;
    if (!ema_) {
      validate(step);
      return;
    }
    NamedTensors saved = to_cpu_f32(params_);
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < params_.size(); ++i) params_[i].second.copy_(ema_->weights()[i].second);
    }
    validate(step);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) params_[i].second.copy_(saved[i].second);
  };

  model_.train();
  Progress progress("training", config_.steps);
  progress.update(step_);
  const auto device = params_.empty() ? at::kCPU : params_.front().second.device().type();
  const auto start = std::chrono::steady_clock::now();
  while (step_ < config_.steps) {
    Rng rng(step_seed(config_.seed, step_));
    optimizer_.zero_grad();
    double loss_sum = 0;
    for (int64_t micro = 0; micro < config_.grad_accum; ++micro) {
      at::Tensor loss;
      {
        compat::AutocastGuard autocast(device, at::kBFloat16, config_.autocast == "bf16");
        loss = loss_fn(step_, micro, rng);
      }
      if (!loss.defined() || loss.numel() != 1) throw RuntimeError("training loss must be a scalar tensor");
      const double value = loss.item<double>();
      if (!std::isfinite(value))
        throw RuntimeError("training loss is " + std::to_string(value) + " at step " + std::to_string(step_) +
                           " (lower lr, check the data; the last checkpoint is intact)");
      (loss / static_cast<double>(config_.grad_accum)).backward();
      loss_sum += value;
    }
    StepMetrics m;
    m.grad_norm = clip_grad_norm(params_, config_.grad_clip);
    m.lr = learning_rate(config_.lr_schedule(), step_);
    optimizer_.step(m.lr);
    if (ema_) ema_->update(params_);
    ++step_;
    m.step = step_;
    m.loss = loss_sum / static_cast<double>(config_.grad_accum);
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    history_.push_back(m);
    write_metrics(m);
    progress.update(step_);
    if (step_ % config_.log_every == 0)
      log_debug("step " + std::to_string(step_) + " loss " + std::to_string(m.loss) + " lr " + std::to_string(m.lr));
    const bool last = step_ == config_.steps;
    if (config_.validate_every > 0 && step_ % config_.validate_every == 0 && !last) {
      model_.eval();
      with_ema(step_);
      model_.train();
    }
    if (step_ % config_.checkpoint_every == 0 || last) save_checkpoint();
    if (g_stop && !last) {
      progress.finish();
      save_checkpoint();
      log_info("interrupted: checkpoint written at step " + std::to_string(step_) + "; continue with --resume");
      model_.eval();
      return Outcome::Interrupted;
    }
  }
  progress.finish();
  model_.eval();
  with_ema(step_);
  return Outcome::Finished;
}

std::vector<std::string> json_differences(const nlohmann::json& before, const nlohmann::json& after) {
  std::vector<std::string> out;
  for (const auto& op : nlohmann::json::diff(before, after)) {
    const std::string path = op.value("path", "");
    const nlohmann::json::json_pointer ptr(path);
    out.push_back(path + " " + (before.contains(ptr) ? before[ptr].dump() : "(absent)") + " -> " +
                  (after.contains(ptr) ? after[ptr].dump() : "(absent)"));
  }
  return out;
}

void write_loss_curve_png(const std::string& path, const std::vector<StepMetrics>& history) {
  const int W = 640, H = 320, margin = 20;
  io::Image img = io::Image::blank(W, H, 3, 8, 255);
  double lo = 1e300, hi = -1e300;
  for (const auto& m : history) {
    lo = std::min(lo, m.loss);
    hi = std::max(hi, m.loss);
  }
  if (!(hi > lo)) hi = lo + 1;
  const int64_t first = history.front().step, last = std::max(history.back().step, first + 1);
  const auto px = [&](int64_t step) {
    return margin + static_cast<int>((W - 2 * margin - 1) * static_cast<double>(step - first) / (last - first));
  };
  const auto py = [&](double loss) {
    return H - margin - 1 - static_cast<int>((H - 2 * margin - 1) * (loss - lo) / (hi - lo));
  };
  const auto put = [&](int x, int y, int r, int g, int b) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    img.at(x, y, 0) = static_cast<uint16_t>(r);
    img.at(x, y, 1) = static_cast<uint16_t>(g);
    img.at(x, y, 2) = static_cast<uint16_t>(b);
  };
  for (int x = margin; x < W - margin; ++x) put(x, H - margin, 0, 0, 0);
  for (int y = margin; y <= H - margin; ++y) put(margin - 1, y, 0, 0, 0);
  // Raw losses as light dots, an exponential moving average as a dark line.
  double smooth = history.front().loss;
  int prev_x = -1, prev_y = -1;
  for (const auto& m : history) {
    put(px(m.step), py(m.loss), 170, 190, 230);
    smooth = 0.9 * smooth + 0.1 * m.loss;
    const int x = px(m.step), y = py(smooth);
    if (prev_x >= 0) {
      const int n = std::max(std::abs(x - prev_x), std::abs(y - prev_y)) + 1;
      for (int k = 0; k <= n; ++k) put(prev_x + (x - prev_x) * k / n, prev_y + (y - prev_y) * k / n, 20, 60, 160);
    }
    prev_x = x;
    prev_y = y;
  }
  io::write_png(path, img, {{"Title", "loss " + std::to_string(lo) + " .. " + std::to_string(hi)}});
}

}  // namespace genvis::train
