#include "train/trainer.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/torch_compat.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "train/grad_sync.h"
#include "train/gradient_watch.h"
#include "core/distributed.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <torch/torch.h>
#include <unistd.h>

namespace genvis::train {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

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

std::string joined(const std::vector<std::string>& parts, const std::string& separator) {
  std::string all;
  for (const auto& p : parts) all += (all.empty() ? "" : separator) + p;
  return all;
}

// GroupConfig's keys (those of its to_json), which TrainConfig accepts too.
const std::set<std::string>& group_config_keys() {
  static const std::set<std::string> keys = [] {
    std::set<std::string> k;
    const nlohmann::json defaults = GroupConfig{}.to_json();
    for (const auto& [key, value] : defaults.items()) k.insert(key);
    return k;
  }();
  return keys;
}

// The GroupConfig keys, read in TrainConfig's order into `c`.
void read_group_keys(const nlohmann::json& j, GroupConfig& c, std::vector<std::string>& problems) {
  config::read(j, "", "lr", c.lr, problems);
  config::read(j, "", "min_lr", c.min_lr, problems);
  config::read(j, "", "warmup_steps", c.warmup_steps, problems);
  config::read(j, "", "weight_decay", c.weight_decay, problems);
  config::read(j, "", "beta1", c.beta1, problems);
  config::read(j, "", "beta2", c.beta2, problems);
  config::read(j, "", "eps", c.eps, problems);
  config::read(j, "", "grad_clip", c.grad_clip, problems);
  config::read(j, "", "ema_decay", c.ema_decay, problems);
}

bool valid_group_name(const std::string& name) {
  if (name.empty()) return false;
  for (const char ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') return false;
  return true;
}

// `name` is `wanted` or lies under it ("a" takes "a.weight", not "ab.weight").
bool under(const std::string& name, const std::string& wanted) {
  return name == wanted ||
         (name.size() > wanted.size() && name.compare(0, wanted.size(), wanted) == 0 && name[wanted.size()] == '.');
}

// The parameters of `all` named by `wanted` (all of them when empty), in module order; a name that
// matches nothing is a problem of `who`.
NamedTensors select_parameters(const NamedTensors& all, const std::vector<std::string>& wanted, const std::string& who,
                               std::vector<std::string>& problems) {
  if (wanted.empty()) return all;
  NamedTensors out;
  for (const auto& [name, t] : all)
    if (std::any_of(wanted.begin(), wanted.end(), [&](const std::string& w) { return under(name, w); }))
      out.emplace_back(name, t);
  for (const auto& w : wanted)
    if (std::none_of(all.begin(), all.end(), [&](const auto& entry) { return under(entry.first, w); }))
      problems.push_back(who + ": its module has no parameter named '" + w + "' or under it");
  return out;
}

NamedTensors prefixed(const std::string& prefix, const NamedTensors& tensors) {
  NamedTensors out;
  for (const auto& [name, t] : tensors) out.emplace_back(prefix + name, t);
  return out;
}

// Zeroes gradients in place, as AdamW::zero_grad does.
void zero_grads(const std::vector<at::Tensor>& parameters) {
  for (const auto& p : parameters) {
    if (p.grad().defined()) {
      p.mutable_grad().detach_();
      p.mutable_grad().zero_();
    }
  }
}

}  // namespace

// One parameter group and its optimiser state (a single-model Trainer has one, named "model").
struct Trainer::GroupState {
  std::string name;
  NamedTensors params;
  GroupConfig config;
  int64_t every;
  LossFn loss;
  AdamW optimizer;
  std::optional<EMA> ema;

  GroupState(std::string name_, NamedTensors params_, const GroupConfig& config_, int64_t every_, LossFn loss_)
      : name(std::move(name_)),
        params(std::move(params_)),
        config(config_),
        every(every_),
        loss(std::move(loss_)),
        optimizer(params, AdamWOptions{config.beta1, config.beta2, config.eps, config.weight_decay}) {
    if (config.ema_decay > 0) ema.emplace(params, config.ema_decay);
  }
};

uint64_t step_seed(uint64_t seed, int64_t step) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (static_cast<uint64_t>(step) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t micro_seed(uint64_t seed, int64_t step, int64_t micro) {
  const uint64_t s = step_seed(seed, step);
  return micro == 0 ? s : step_seed(s ^ 0x6a09e667f3bcc909ull, micro);
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw UsageError(source + ": expected a JSON object");
  TrainConfig c;
  std::vector<std::string> problems;
  std::set<std::string> optional = {"grad_accum", "checkpoint_every", "keep_checkpoints", "log_every", "validate_every",
                                     "seed", "autocast"};
  optional.insert(group_config_keys().begin(), group_config_keys().end());
  config::check_keys(j, "", {"steps"}, optional, problems);
  config::read(j, "", "steps", c.steps, problems);
  config::read(j, "", "grad_accum", c.grad_accum, problems);
  GroupConfig g = c.group_config();
  read_group_keys(j, g, problems);
  c.lr = g.lr;
  c.min_lr = g.min_lr;
  c.warmup_steps = g.warmup_steps;
  c.weight_decay = g.weight_decay;
  c.beta1 = g.beta1;
  c.beta2 = g.beta2;
  c.eps = g.eps;
  c.grad_clip = g.grad_clip;
  c.ema_decay = g.ema_decay;
  config::read(j, "", "checkpoint_every", c.checkpoint_every, problems);
  config::read(j, "", "keep_checkpoints", c.keep_checkpoints, problems);
  config::read(j, "", "log_every", c.log_every, problems);
  config::read(j, "", "validate_every", c.validate_every, problems);
  config::read(j, "", "seed", c.seed, problems);
  config::read(j, "", "autocast", c.autocast, problems);
  if (j.contains("steps") && c.steps < 1) problems.push_back("steps must be >= 1");
  if (c.grad_accum < 1) problems.push_back("grad_accum must be >= 1");
  for (const auto& p : g.problems()) problems.push_back(p);
  if (c.checkpoint_every < 1) problems.push_back("checkpoint_every must be >= 1");
  if (c.keep_checkpoints < 1) problems.push_back("keep_checkpoints must be >= 1");
  if (c.log_every < 1) problems.push_back("log_every must be >= 1");
  if (c.validate_every < 0) problems.push_back("validate_every must be >= 0");
  if (c.autocast != "none" && c.autocast != "bf16") problems.push_back("autocast must be \"none\" or \"bf16\"");
  if (!problems.empty()) throw UsageError(source + ": " + joined(problems, "; "));
  return c;
}

GroupConfig TrainConfig::group_config() const {
  return {lr, min_lr, warmup_steps, weight_decay, beta1, beta2, eps, grad_clip, ema_decay};
}

GroupConfig GroupConfig::from_json(const nlohmann::json& j, const std::string& source, const GroupConfig& defaults) {
  if (!j.is_object()) throw UsageError(source + ": expected a JSON object");
  GroupConfig c = defaults;
  std::vector<std::string> problems;
  config::check_keys(j, "", {}, group_config_keys(), problems);
  read_group_keys(j, c, problems);
  for (const auto& p : c.problems()) problems.push_back(p);
  if (!problems.empty()) throw UsageError(source + ": " + joined(problems, "; "));
  return c;
}

GroupConfig GroupConfig::from_json(const nlohmann::json& j, const std::string& source) {
  return from_json(j, source, GroupConfig{});
}

nlohmann::json GroupConfig::to_json() const {
  return {{"lr", lr},
          {"min_lr", min_lr},
          {"warmup_steps", warmup_steps},
          {"weight_decay", weight_decay},
          {"beta1", beta1},
          {"beta2", beta2},
          {"eps", eps},
          {"grad_clip", grad_clip},
          {"ema_decay", ema_decay}};
}

std::vector<std::string> GroupConfig::problems() const {
  std::vector<std::string> out;
  if (!(lr > 0) || !std::isfinite(lr)) out.push_back("lr must be > 0");
  if (min_lr < 0 || min_lr > lr) out.push_back("min_lr must be in [0, lr]");
  if (warmup_steps < 0) out.push_back("warmup_steps must be >= 0");
  if (weight_decay < 0) out.push_back("weight_decay must be >= 0");
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) out.push_back("beta1/beta2 must be in [0, 1)");
  if (!(eps > 0)) out.push_back("eps must be > 0");
  if (!(ema_decay >= 0 && ema_decay < 1)) out.push_back("ema_decay must be in [0, 1)");
  return out;
}

nlohmann::json TrainConfig::to_json() const {
  // The optimiser half is the group's JSON (the same keys; nlohmann::json keeps keys sorted, so
  // state.json is byte-identical to writing them here).
  nlohmann::json j = group_config().to_json();
  j.update({{"steps", steps},
            {"grad_accum", grad_accum},
            {"checkpoint_every", checkpoint_every},
            {"keep_checkpoints", keep_checkpoints},
            {"log_every", log_every},
            {"validate_every", validate_every},
            {"seed", seed},
            {"autocast", autocast}});
  return j;
}

Trainer::Trainer(torch::nn::Module& model, TrainConfig config, std::string out_dir)
    : modules_{&model}, config_(std::move(config)), out_dir_(std::move(out_dir)), grouped_(false) {
  groups_.emplace_back("model", named(model.named_parameters(/*recurse=*/true)), config_.group_config(), 1, LossFn{});
  for (const auto& [name, p] : groups_.front().params) all_params_.push_back(p);
  buffers_ = named(model.named_buffers(/*recurse=*/true));
  check_world();
  fs::create_directories(fs::path(out_dir_) / "checkpoints");
}

Trainer::Trainer(std::vector<Group> groups, std::vector<Turn> schedule, TrainConfig config, std::string out_dir)
    : config_(std::move(config)), out_dir_(std::move(out_dir)), grouped_(true) {
  std::vector<std::string> problems;
  if (groups.empty()) problems.push_back("no parameter groups");
  std::map<std::string, const Group*> declared;
  std::map<std::string, NamedTensors> selected;
  std::map<const c10::TensorImpl*, std::pair<std::string, std::string>> owner;  // tensor -> group, name
  for (const auto& g : groups) {
    const std::string who = "group '" + g.name + "'";
    if (!valid_group_name(g.name)) problems.push_back(who + ": a name is letters, digits, '_' and '-'");
    if (!declared.emplace(g.name, &g).second) {
      problems.push_back(who + " is declared twice");
      continue;
    }
    if (!g.loss) problems.push_back(who + " has no loss function");
    for (const auto& p : g.config.problems()) problems.push_back(who + ": " + p);
    if (!g.module) {
      problems.push_back(who + " has no module");
      continue;
    }
    NamedTensors params =
        select_parameters(named(g.module->named_parameters(/*recurse=*/true)), g.parameters, who, problems);
    if (params.empty() && g.parameters.empty()) problems.push_back(who + " has no parameters");
    for (const auto& [name, t] : params) {
      const auto [it, fresh] = owner.emplace(t.unsafeGetTensorImpl(), std::make_pair(g.name, name));
      if (fresh) continue;
      const auto& [other_group, other_name] = it->second;
      if (other_group == g.name)
        problems.push_back(who + " holds one tensor twice, as '" + other_name + "' and '" + name + "'");
      else
        problems.push_back("parameter '" + name + "' is in group '" + other_group + "' and " + who);
    }
    selected[g.name] = std::move(params);
  }
  if (schedule.empty()) problems.push_back("the schedule has no turns");
  std::set<std::string> scheduled;
  for (const auto& turn : schedule) {
    if (!declared.count(turn.group))
      problems.push_back("the schedule names unknown group '" + turn.group + "'");
    else if (!scheduled.insert(turn.group).second)
      problems.push_back("group '" + turn.group + "' has two turns in the schedule");
    if (turn.every < 1)
      problems.push_back("group '" + turn.group + "': every must be >= 1 (is " + std::to_string(turn.every) + ")");
  }
  for (const auto& [name, g] : declared)
    if (!scheduled.count(name)) problems.push_back("group '" + name + "' has no turn in the schedule");
  if (!problems.empty()) throw UsageError("training groups: " + joined(problems, "; "));

  for (const auto& turn : schedule) {
    const Group& g = *declared.at(turn.group);
    groups_.emplace_back(g.name, selected.at(g.name), g.config, turn.every, g.loss);
    if (std::find(modules_.begin(), modules_.end(), g.module) == modules_.end()) {
      modules_.push_back(g.module);
      for (auto& t : prefixed(g.name + "/", named(g.module->named_buffers(/*recurse=*/true))))
        buffers_.push_back(std::move(t));
    }
  }
  std::set<const c10::TensorImpl*> seen;
  for (auto* module : modules_)
    for (const auto& p : module->parameters(/*recurse=*/true))
      if (seen.insert(p.unsafeGetTensorImpl()).second) all_params_.push_back(p);
  check_world();
  fs::create_directories(fs::path(out_dir_) / "checkpoints");
}

void Trainer::check_world() const {
  const int64_t ranks = dist::world_size();
  if (config_.grad_accum % ranks != 0)
    throw UsageError("grad_accum " + std::to_string(config_.grad_accum) + " is not a multiple of the " +
                     std::to_string(ranks) + " training processes: each process runs grad_accum / processes of every "
                     "step's micro-batches; set grad_accum to a multiple of " + std::to_string(ranks) +
                     " (dividing the batch size by as much keeps the global batch)");
}

Trainer::~Trainer() = default;

Trainer::GroupState& Trainer::group(const std::string& name) {
  for (auto& g : groups_)
    if (g.name == name) return g;
  std::vector<std::string> names;
  for (const auto& g : groups_) names.push_back(g.name);
  throw UsageError("unknown training group '" + name + "' (the groups: " + joined(names, ", ") + ")");
}

const Trainer::GroupState& Trainer::group(const std::string& name) const {
  return const_cast<Trainer*>(this)->group(name);
}

EMA* Trainer::ema() {
  if (grouped_) throw UsageError("Trainer::ema(): a grouped run keeps an EMA per group; ask ema(group)");
  return ema("model");
}

EMA* Trainer::ema(const std::string& name) {
  auto& g = group(name);
  return g.ema ? &*g.ema : nullptr;
}

const AdamW& Trainer::optimizer(const std::string& name) const { return group(name).optimizer; }

const NamedTensors& Trainer::parameters(const std::string& name) const { return group(name).params; }

nlohmann::json Trainer::run_json() const {
  nlohmann::json j = config_.to_json();
  if (!grouped_) return j;
  // The optimiser half is each group's own.
  const nlohmann::json group_keys = GroupConfig{}.to_json();
  for (const auto& [key, value] : group_keys.items()) j.erase(key);
  j["groups"] = nlohmann::json::object();
  j["schedule"] = nlohmann::json::array();
  for (const auto& g : groups_) {
    j["groups"][g.name] = g.config.to_json();
    j["schedule"].push_back({{"group", g.name}, {"every", g.every}});
  }
  return j;
}

std::string Trainer::latest_checkpoint() const {
  // Every rank reads rank 0's checkpoints (core/distributed.h).
  const fs::path root = fs::path(dist::primary_path(out_dir_)) / "checkpoints";
  const fs::path latest = root / "latest";
  if (!fs::exists(latest)) return "";
  std::string name = read_text_file(latest.string(), 4096);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  if (name.empty() || name.find('/') != std::string::npos)
    throw LoadError(latest.string(), "not a checkpoint name: '" + name + "'");
  return (root / name).string();
}

void Trainer::save_checkpoint() {
  if (!dist::primary()) return;  // rank 0 writes for all
  const fs::path root = fs::path(out_dir_) / "checkpoints";
  const std::string name = step_dir_name(step_);
  const fs::path tmp = root / (name + ".tmp");
  const fs::path final_dir = root / name;
  // Saved already (an interrupt right after a scheduled checkpoint): the state is the same.
  if (latest_checkpoint() == final_dir.string() && fs::exists(final_dir / "state.json")) return;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  // A single-model run's names are the module's own (the layout every older checkpoint has); a
  // grouped run's are prefixed "<group>/".
  NamedTensors weights, moments, emas;
  nlohmann::json optimizer_steps = nlohmann::json::object();
  bool any_ema = false;
  for (const auto& g : groups_) {
    const std::string prefix = grouped_ ? g.name + "/" : "";
    for (auto& t : prefixed(prefix, g.params)) weights.push_back(std::move(t));
    for (auto& t : g.optimizer.state(prefix)) moments.push_back(std::move(t));
    if (g.ema)
      for (auto& t : prefixed(prefix, g.ema->weights())) emas.push_back(std::move(t));
    any_ema = any_ema || g.ema;
    optimizer_steps[g.name] = g.optimizer.steps_taken();
  }
  io::save_safetensors((tmp / "model.safetensors").string(), to_cpu_f32(weights));
  io::save_safetensors((tmp / "optimizer.safetensors").string(), to_cpu_f32(moments));
  if (any_ema) io::save_safetensors((tmp / "ema.safetensors").string(), to_cpu_f32(emas));
  if (!buffers_.empty()) io::save_safetensors((tmp / "buffers.safetensors").string(), to_cpu_f32(buffers_));
  nlohmann::json state = {{"format", "genvis-train-checkpoint"},
                          {"version", 1},
                          {"step", step_},
                          {"optimizer_steps", grouped_ ? optimizer_steps : optimizer_steps["model"]},
                          {"config", run_json()},
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
  torch::NoGradGuard no_grad;
  for (auto& g : groups_)
    if (g.ema)
      for (size_t i = 0; i < g.params.size(); ++i) g.params[i].second.copy_(g.ema->weights()[i].second);
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
  // A grouped run compares each group's settings and turn ("groups/generator/lr 0.0001 -> 0.0002")
  // and refuses a single-model checkpoint (and the other way round) through "groups".
  const nlohmann::json saved = state["config"], now = run_json();
  std::vector<std::string> diffs;
  for (const auto& [key, value] : now.items()) {
    if (may_differ(key)) continue;
    if (saved.contains(key) && saved[key].is_structured() && value.is_structured()) {
      for (const auto& d : json_differences(saved[key], value)) diffs.push_back(key + d);
    } else if (!saved.contains(key) || saved[key] != value) {
      diffs.push_back(key + " " + (saved.contains(key) ? saved[key].dump() : std::string("(absent)")) + " -> " +
                      value.dump());
    }
  }
  if (saved.contains("groups") && !now.contains("groups"))
    diffs.push_back("groups " + saved["groups"].dump() + " -> (absent)");
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
  const auto prefix = [&](const GroupState& g) { return grouped_ ? g.name + "/" : std::string(); };
  NamedTensors params;
  for (const auto& g : groups_)
    for (auto& t : prefixed(prefix(g), g.params)) params.push_back(std::move(t));
  const NamedTensors weights = load_all((fs::path(dir) / "model.safetensors").string());
  {
    std::vector<std::string> problems;
    std::map<std::string, at::Tensor> by_name(weights.begin(), weights.end());
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : params) {
      const auto it = by_name.find(name);
      if (it == by_name.end())
        problems.push_back("missing " + name);
      else if (it->second.sizes() != p.sizes())
        problems.push_back(name + " has shape " + c10::str(it->second.sizes()));
    }
    if (!problems.empty()) throw LoadError(dir + "/model.safetensors", joined(problems, "; "));
    for (auto& [name, p] : params) p.copy_(by_name.at(name));
  }
  const NamedTensors moments = load_all((fs::path(dir) / "optimizer.safetensors").string());
  const nlohmann::json optimizer_steps = state.value("optimizer_steps", nlohmann::json(0));
  for (auto& g : groups_) {
    const nlohmann::json steps = grouped_ ? optimizer_steps.value(g.name, nlohmann::json(0)) : optimizer_steps;
    if (!steps.is_number_integer()) throw LoadError(dir + "/state.json", "optimizer_steps is not a step count");
    g.optimizer.load_state(moments, steps.get<int64_t>(), prefix(g));
  }
  if (std::any_of(groups_.begin(), groups_.end(), [](const GroupState& g) { return g.ema.has_value(); })) {
    const NamedTensors emas = load_all((fs::path(dir) / "ema.safetensors").string());
    for (auto& g : groups_)
      if (g.ema) g.ema->load(emas, prefix(g));
  }
  if (!buffers_.empty()) {
    const fs::path file = fs::path(dir) / "buffers.safetensors";
    if (!fs::exists(file)) {
      log_warn(dir + " has no buffers.safetensors (written before buffers were checkpointed): running statistics "
               "restart from their current values, so this resume is not exact");
    } else {
      const NamedTensors saved = load_all(file.string());
      std::map<std::string, at::Tensor> by_name(saved.begin(), saved.end());
      torch::NoGradGuard no_grad;
      for (auto& [name, b] : buffers_) {
        const auto it = by_name.find(name);
        if (it == by_name.end() || it->second.sizes() != b.sizes())
          throw LoadError(file.string(), "buffer " + name + (it == by_name.end() ? " is missing" : " has another shape"));
        b.copy_(it->second);
      }
    }
  }
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
  if (dist::primary() && fs::exists(log)) {
    std::ifstream in(log);
    std::string line, kept;
    while (std::getline(in, line)) {
      try {
        const auto j = nlohmann::json::parse(line);
        if (j.value("step", int64_t{0}) > step_) continue;
        StepMetrics m{j.value("step", int64_t{0}), j.value("loss", 0.0), j.value("lr", 0.0),
                      j.value("grad_norm", 0.0), j.value("seconds", 0.0), {}};
        const nlohmann::json turns = j.value("groups", nlohmann::json::object());
        for (const auto& g : groups_)  // in turn order (JSON objects are sorted by key)
          if (grouped_ && turns.contains(g.name))
            m.groups.push_back({g.name, turns[g.name].value("loss", 0.0), turns[g.name].value("lr", 0.0),
                                turns[g.name].value("grad_norm", 0.0)});
        history_.push_back(std::move(m));
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
  if (!dist::primary()) return;
  nlohmann::json j;
  if (!grouped_) {
    j = {{"step", m.step}, {"loss", m.loss}, {"lr", m.lr}, {"grad_norm", m.grad_norm}, {"seconds", m.seconds}};
  } else {
    j = {{"step", m.step}, {"seconds", m.seconds}, {"groups", nlohmann::json::object()}};
    for (const auto& g : m.groups)
      j["groups"][g.group] = {{"loss", g.loss}, {"lr", g.lr}, {"grad_norm", g.grad_norm}};
  }
  std::ofstream out(fs::path(out_dir_) / "metrics.jsonl", std::ios::app);
  out << j.dump() << "\n";
}

void Trainer::write_loss_plot() const {
  if (!dist::primary()) return;
  if (!grouped_) {
    if (history_.size() >= 2) write_loss_curve_png((fs::path(out_dir_) / "loss.png").string(), history_);
    return;
  }
  for (const auto& g : groups_) {
    std::vector<StepMetrics> curve;
    for (const auto& m : history_)
      for (const auto& turn : m.groups)
        if (turn.group == g.name) curve.push_back({m.step, turn.loss, turn.lr, turn.grad_norm, m.seconds, {}});
    if (curve.size() >= 2) write_loss_curve_png((fs::path(out_dir_) / ("loss-" + g.name + ".png")).string(), curve);
  }
}

Trainer::Outcome Trainer::run(const LossFn& loss_fn, const ValidateFn& validate) {
  if (grouped_) throw UsageError("Trainer::run(loss): a grouped trainer takes its losses from its groups; call run()");
  if (!loss_fn) throw UsageError("Trainer::run(loss): no loss function");
  groups_.front().loss = loss_fn;
  struct Forget {
    LossFn& loss;
    ~Forget() { loss = nullptr; }  // the caller's captures end with this call
  } forget{groups_.front().loss};
  return run_steps(validate);
}

Trainer::Outcome Trainer::run(const ValidateFn& validate) {
  if (!grouped_) throw UsageError("Trainer::run(): a single-model trainer needs its loss, run(loss)");
  return run_steps(validate);
}

Trainer::Outcome Trainer::run_steps(const ValidateFn& validate) {
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

  const auto set_mode = [&](bool train) {
    for (auto* module : modules_) module->train(train);
  };
  // Validation sees the EMA weights of the groups that keep one; training continues from the
  // weights (copies: to_cpu_f32 would alias f32 CPU parameters).
  const auto with_ema = [&](int64_t step) {
    if (!validate) return;
    std::vector<std::vector<at::Tensor>> saved(groups_.size());
    for (size_t k = 0; k < groups_.size(); ++k)
      if (groups_[k].ema)
        for (const auto& [name, p] : groups_[k].params) saved[k].push_back(p.detach().clone());
    apply_ema();
    validate(step);
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < groups_.size(); ++k)
      if (groups_[k].ema)
        for (size_t i = 0; i < groups_[k].params.size(); ++i) groups_[k].params[i].second.copy_(saved[k][i]);
  };

  set_mode(true);
  // Data parallel: this process runs micro-batches [first_micro, first_micro + per_rank) of every
  // step; the gradients and losses are summed over processes before each update, so every
  // process takes the same update as one process running all grad_accum micro-batches would.
  const int64_t per_rank = config_.grad_accum / dist::world_size();
  const int64_t first_micro = dist::rank() * per_rank;
  // Each group's gradient sum, overlapped with its last local backward (train/grad_sync.h).
  std::vector<std::unique_ptr<GradientSync>> syncs;
  if (dist::active()) {
    sync_replicas();
    for (const auto& g : groups_) syncs.push_back(std::make_unique<GradientSync>(g.params));
  }
  Progress progress("training", config_.steps);
  progress.update(step_);
  GradientWatch watch;  // fed the run's earlier turns too, so a resumed run keeps its reference
  for (const auto& m : history_)
    for (const auto& turn : m.groups.empty() ? std::vector<GroupMetrics>{{"model", m.loss, m.lr, m.grad_norm}} : m.groups)
      watch.observe(turn.group, turn.grad_norm);
  const auto& first = groups_.front().params;
  const auto device = first.empty() ? at::kCPU : first.front().second.device().type();
  const auto start = std::chrono::steady_clock::now();
  while (step_ < config_.steps) {
    // One generator per micro-batch, shared by the step's turns in order.
    std::vector<Rng> rngs;
    for (int64_t k = 0; k < per_rank; ++k) rngs.emplace_back(micro_seed(config_.seed, step_, first_micro + k));
    StepMetrics m;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      auto& g = groups_[gi];
      if ((step_ + 1) % g.every != 0) continue;
      zero_grads(all_params_);
      double loss_sum = 0;
      for (int64_t k = 0; k < per_rank; ++k) {
        const int64_t micro = first_micro + k;
        at::Tensor loss;
        {
          compat::AutocastGuard autocast(device, at::kBFloat16, config_.autocast == "bf16");
          loss = g.loss(step_, micro, rngs[k]);
        }
        const std::string what = grouped_ ? "training loss of group '" + g.name + "'" : "training loss";
        if (!loss.defined() || loss.numel() != 1) throw RuntimeError(what + " must be a scalar tensor");
        const double value = loss.item<double>();
        if (!std::isfinite(value))
          throw RuntimeError(what + " is " + std::to_string(value) + " at step " + std::to_string(step_) +
                             " (lower lr, check the data; the last checkpoint is intact)");
        if (!syncs.empty() && k == per_rank - 1) syncs[gi]->arm();
        (loss / static_cast<double>(config_.grad_accum)).backward();
        loss_sum += value;
      }
      if (!syncs.empty())
        loss_sum = syncs[gi]->finish(loss_sum, "the gradient sum of step " + std::to_string(step_ + 1));
      GroupMetrics turn{g.name};
      turn.grad_norm = clip_grad_norm(g.params, g.config.grad_clip);
      turn.lr = learning_rate(g.config.lr_schedule(config_.steps), step_);
      g.optimizer.step(turn.lr);
      if (g.ema) g.ema->update(g.params);
      turn.loss = loss_sum / static_cast<double>(config_.grad_accum);
      if (const auto warning = watch.observe(g.name, turn.grad_norm); warning && dist::primary())
        log_warn("step " + std::to_string(step_ + 1) + ": " + *warning);
      m.groups.push_back(std::move(turn));
    }
    ++step_;
    m.step = step_;
    if (!grouped_) {
      m.loss = m.groups.front().loss;
      m.lr = m.groups.front().lr;
      m.grad_norm = m.groups.front().grad_norm;
      m.groups.clear();
    }
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    history_.push_back(m);
    write_metrics(m);
    progress.update(step_);
    if (step_ % config_.log_every == 0) {
      std::string line = "step " + std::to_string(step_);
      if (!grouped_) line += " loss " + std::to_string(m.loss) + " lr " + std::to_string(m.lr);
      for (const auto& turn : m.groups)
        line += " " + turn.group + " loss " + std::to_string(turn.loss) + " lr " + std::to_string(turn.lr);
      log_debug(line);
    }
    const bool last = step_ == config_.steps;
    if (config_.validate_every > 0 && step_ % config_.validate_every == 0 && !last) {
      if (dist::primary()) {
        set_mode(false);
        with_ema(step_);
        set_mode(true);
      }
      dist::barrier("validation at step " + std::to_string(step_));
    }
    if (step_ % config_.checkpoint_every == 0 || last) save_checkpoint();
    if (dist::active()) {  // a signal on any process stops all of them at the same step
      const at::Tensor stop = at::full({1}, g_stop ? 1.0 : 0.0, at::kDouble);
      dist::all_reduce_sum({stop}, "the stop flag at step " + std::to_string(step_));
      g_stop = stop.item<double>() > 0;
    }
    if (g_stop && !last) {
      progress.finish();
      save_checkpoint();
      log_info("interrupted: checkpoint written at step " + std::to_string(step_) + "; continue with --resume");
      set_mode(false);
      return Outcome::Interrupted;
    }
  }
  progress.finish();
  set_mode(false);
  if (dist::primary()) with_ema(step_);
  return Outcome::Finished;
}

void Trainer::sync_replicas() {
  // The same run on every process: settings, parameter names and step, checked against rank 0's.
  std::string identity = run_json().dump() + "|" + std::to_string(step_);
  for (const auto& g : groups_)
    for (const auto& [name, p] : g.params) identity += "|" + name + c10::str(p.sizes());
  const auto hash = static_cast<int64_t>(std::hash<std::string>{}(identity) >> 1);
  const at::Tensor theirs = at::tensor({hash, step_}, at::kLong);
  dist::broadcast({theirs}, "checking the run against rank 0's");
  const bool same = theirs[0].item<int64_t>() == hash && theirs[1].item<int64_t>() == step_;
  const at::Tensor differing = at::full({1}, same ? 0.0 : 1.0, at::kDouble);
  dist::all_reduce_sum({differing}, "checking the run against rank 0's");
  if (differing.item<double>() > 0)
    throw RuntimeError("distributed training: " + std::to_string(static_cast<int64_t>(differing.item<double>())) +
                       " process(es) are not at rank 0's training stage (step " + std::to_string(step_) +
                       " here, " + std::to_string(theirs[1].item<int64_t>()) +
                       " on rank 0; another config, or a run folder that is not shared by every process)");
  // Then rank 0's weights, buffers, EMA and optimiser moments everywhere (they agree already when
  // the ranks initialised alike or resumed from the same checkpoint; this makes sure).
  std::vector<at::Tensor> state;
  for (auto& g : groups_) {
    for (const auto& [name, p] : g.params) state.push_back(p);
    if (g.ema)
      for (const auto& [name, t] : g.ema->weights()) state.push_back(t);
  }
  for (const auto& [name, b] : buffers_) state.push_back(b);
  std::vector<NamedTensors> moments;
  for (auto& g : groups_) {
    moments.push_back(g.optimizer.state());
    for (const auto& [name, t] : moments.back()) state.push_back(t);
  }
  dist::broadcast(state, "copying rank 0's weights");
  for (size_t k = 0; k < groups_.size(); ++k)
    groups_[k].optimizer.load_state(moments[k], groups_[k].optimizer.steps_taken());
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
