#include "commands.h"

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "train/distributed.h"
#include "train/personalize_recipe.h"
#include "train/recipes.h"
#include "default_model.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <netinet/in.h>
#include <optional>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace genvis::cli {
namespace {

// A TCP port that was free a moment ago on 127.0.0.1 (the rendezvous of a local launch).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw RuntimeError(std::string("--nproc: cannot open a socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw RuntimeError(std::string("--nproc: cannot find a free port on 127.0.0.1: ") + std::strerror(errno));
  return ntohs(addr.sin_port);
}

volatile std::sig_atomic_t g_forward = 0;
void remember_signal(int sig) { g_forward = sig; }

// `genvis train ... --nproc N`: the same command line N times as ranks 0..N-1 of one process
// group on this machine (torchrun's variables), each with threads / N CPU threads unless
// --threads is given, ranks > 0 quiet. Returns when all have exited; the first failure (in exit
// order) becomes this process's error. A rank that stays alive 30 s after another failed is
// terminated (SIGTERM, then SIGKILL 10 s later); SIGINT/SIGTERM here are passed on to every rank.
void launch_local(int nproc) {
  const std::vector<std::string>& args = invocation();
  bool threads_given = false;
  std::vector<std::string> rest;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--nproc") {
      ++i;
      continue;
    }
    if (a.rfind("--nproc=", 0) == 0) continue;
    threads_given = threads_given || a == "--threads" || a.rfind("--threads=", 0) == 0;
    rest.push_back(a);
  }
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const int threads = std::max(1, static_cast<int>(hw) / nproc);
  const char* exe_env = std::getenv("GENVIS_EXECUTABLE");
  const std::string exe = exe_env && *exe_env ? exe_env : "/proc/self/exe";
  const int port = free_port();
  log_info("launching " + std::to_string(nproc) + " training processes on 127.0.0.1:" + std::to_string(port) +
           (threads_given ? std::string() : ", " + std::to_string(threads) + " thread(s) each"));

  std::vector<std::string> base_env;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (key != "RANK" && key != "WORLD_SIZE" && key != "LOCAL_RANK" && key != "LOCAL_WORLD_SIZE" &&
        key != "MASTER_ADDR" && key != "MASTER_PORT")
      base_env.push_back(kv);
  }
  std::vector<pid_t> pids;
  const auto kill_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(p, sig);
  };
  for (int r = 0; r < nproc; ++r) {
    std::vector<std::string> argv_s = {exe};
    if (!threads_given) argv_s.insert(argv_s.end(), {"--threads", std::to_string(threads)});
    if (r > 0) argv_s.push_back("-q");
    argv_s.insert(argv_s.end(), rest.begin(), rest.end());
    std::vector<std::string> env_s = base_env;
    env_s.insert(env_s.end(), {"RANK=" + std::to_string(r), "LOCAL_RANK=" + std::to_string(r),
                               "WORLD_SIZE=" + std::to_string(nproc), "LOCAL_WORLD_SIZE=" + std::to_string(nproc),
                               "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)});
    std::vector<char*> argv_c, env_c;
    for (auto& a : argv_s) argv_c.push_back(a.data());
    argv_c.push_back(nullptr);
    for (auto& e : env_s) env_c.push_back(e.data());
    env_c.push_back(nullptr);
    pid_t pid = 0;
    const int err = ::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv_c.data(), env_c.data());
    if (err != 0) {
      kill_all(SIGTERM);
      throw RuntimeError("--nproc: cannot start " + exe + ": " + std::strerror(err));
    }
    pids.push_back(pid);
  }

  auto previous_int = std::signal(SIGINT, remember_signal);
  auto previous_term = std::signal(SIGTERM, remember_signal);
  std::string failure;
  int failure_code = 1;
  std::optional<std::chrono::steady_clock::time_point> failed_at;
  bool termed = false, killed = false;
  for (size_t alive = pids.size(); alive > 0;) {
    if (g_forward) {
      kill_all(g_forward);
      g_forward = 0;
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      const auto it = std::find(pids.begin(), pids.end(), pid);
      if (it == pids.end()) continue;
      const int r = static_cast<int>(it - pids.begin());
      *it = -1;
      --alive;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok && failure.empty() && !killed) {
        failure = "training process rank " + std::to_string(r) + " of " + std::to_string(nproc) +
                  (WIFEXITED(status) ? " exited with status " + std::to_string(WEXITSTATUS(status)) + " (its error is above)"
                                     : " was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
                                           strsignal(WTERMSIG(status)) + ")");
        if (WIFEXITED(status)) failure_code = WEXITSTATUS(status);
        failed_at = std::chrono::steady_clock::now();
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    if (failed_at) {
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - *failed_at).count();
      if (!termed && waited > 30) {
        kill_all(SIGTERM);
        termed = true;
      } else if (!killed && waited > 40) {
        kill_all(SIGKILL);
        killed = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::signal(SIGINT, previous_int);
  std::signal(SIGTERM, previous_term);
  if (!failure.empty()) {
    if (failure_code == static_cast<int>(ErrorKind::Usage)) throw UsageError(failure);
    if (failure_code == static_cast<int>(ErrorKind::Load)) throw LoadError("--nproc", failure);
    throw RuntimeError(failure);
  }
}

// Runs `train` (a recipe or a personalisation) as this process's share of a distributed run when
// the environment names one (WORLD_SIZE > 1), else as it is. Returns what `train` returns.
// `primary` is set to whether this process is rank 0 (or alone): the one that prints the result.
template <typename Train>
auto run_maybe_distributed(const std::string& out_dir, bool& primary, Train train) {
  const auto world = train::dist::settings_from_env();
  primary = !world || world->rank == 0;
  if (!world) return train(out_dir);
  train::dist::init(*world);
  if (!primary) {
    set_log_level(LogLevel::Warn);
    set_progress_quiet(true);
  }
  const std::string mine = train::dist::rank_folder(out_dir);
  auto result = train(mine);
  train::dist::finalize();
  if (!primary) {  // this rank's working copy; the next launch recreates it
    std::error_code ec;
    std::filesystem::remove_all(mine, ec);
    std::filesystem::remove(std::filesystem::path(out_dir) / ".ranks", ec);  // when it is empty
  }
  return result;
}

}  // namespace

static void add_nproc_option(CLI::App* sub, int& nproc) {
  sub->add_option("--nproc", nproc,
                  "Train data-parallel in N processes on this machine (grad_accum must be a multiple of N; "
                  "or launch with torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT variables)")
      ->check(CLI::Range(1, 1024));
}

Command add_train_command(CLI::App& app) {
  struct Options {
    std::string config, out;
    bool resume = false;
    int nproc = 1;
  };
  auto o = std::make_shared<Options>();
  std::string recipe_list;
  for (const auto& name : train::recipe_names()) recipe_list += (recipe_list.empty() ? "" : ", ") + name;
  CLI::App* cmd = app.add_subcommand("train", "Train a model from scratch (" + recipe_list +
                                                   ") or personalise one (dreambooth, lora, textual-inversion)");
  cmd->require_subcommand(1);
  // The config-file recipes, one subcommand per table entry.
  std::vector<CLI::App*> recipe_commands;
  for (const auto& recipe : train::recipes()) {
    CLI::App* sub = cmd->add_subcommand(recipe.name, recipe.description);
    sub->add_option("--config", o->config, "Recipe JSON (see " + recipe.example_config + ")")->required();
    sub->add_option("--out", o->out, "Output folder (default: runs/<config file name>)");
    sub->add_flag("--resume", o->resume, recipe.resume_help);
    add_nproc_option(sub, o->nproc);
    recipe_commands.push_back(sub);
  }

  // Personalisation: the three methods share their options.
  auto pc = std::make_shared<train::PersonalizeConfig>();
  pc->train.lr = 1e-4;
  pc->train.steps = 400;
  pc->train.checkpoint_every = 100;
  pc->train.weight_decay = 0.01;
  const auto personalize = [&](const std::string& name, const std::string& what) {
    CLI::App* sub = cmd->add_subcommand(name, what);
    sub->add_option("--model", pc->model, "Base SD 1.x/2.x model: diffusers folder or single file (default: the built-in model)");
    sub->add_option("--instance-dir", pc->instance_dir, "PNG images of the subject (optional same-named .txt captions)")
        ->required();
    sub->add_option("--instance-prompt", pc->instance_prompt, "Caption for the instance images, e.g. \"a photo of sks dog\"")
        ->required();
    sub->add_option("--out", o->out, "Output folder (default: runs/<method>-<instance folder name>)");
    sub->add_flag("--resume", o->resume, "Continue from the latest checkpoint in --out");
    add_nproc_option(sub, o->nproc);
    sub->add_option("--steps", pc->train.steps, "Training steps")->capture_default_str();
    sub->add_option("--lr", pc->train.lr, "Peak learning rate (AdamW; default 1e-4, textual-inversion 5e-3)");
    sub->add_option("--warmup-steps", pc->train.warmup_steps, "Linear warmup steps")->capture_default_str();
    sub->add_option("--batch", pc->batch_size, "Instance images per step (as many class images are added)")
        ->capture_default_str();
    sub->add_option("--grad-accum", pc->train.grad_accum, "Gradient accumulation steps")->capture_default_str();
    sub->add_option("--resolution", pc->resolution, "Training size in pixels (default: the model's native size)");
    sub->add_flag("--random-flip", pc->random_flip, "Also train on mirrored instance images");
    sub->add_option("--seed", pc->train.seed, "Seed (adapter init, noise, class image seeds)")->capture_default_str();
    sub->add_option("--checkpoint-every", pc->train.checkpoint_every, "Checkpoint interval in steps")->capture_default_str();
    sub->add_option("--validate-every", pc->train.validate_every, "Sample grid interval in steps (0: at the end)")
        ->capture_default_str();
    sub->add_option("--validation-prompt", pc->validation_prompts, "Prompt for the sample grids (repeatable; default: "
                                                                   "the instance prompt)");
    sub->add_option("--sample-steps", pc->class_steps, "Sampling steps for class images and sample grids")->capture_default_str();
    sub->add_option("--sample-cfg", pc->class_cfg_scale, "CFG scale for class images and sample grids")->capture_default_str();
    sub->add_option("--autocast", pc->train.autocast, "none or bf16")->capture_default_str();
    sub->add_option("--save-dtype", pc->save_dtype, "Exported weights: f16 or f32")->capture_default_str();
    return sub;
  };
  const auto prior_options = [&](CLI::App* sub) {
    sub->add_option("--class-prompt", pc->class_prompt, "Prior preservation: the subject's class, e.g. \"a photo of a dog\"");
    sub->add_option("--class-dir", pc->class_dir, "Class images (generated when missing; default <out>/class_images)");
    sub->add_option("--num-class-images", pc->num_class_images, "Class images to use (generated with the frozen model)")
        ->capture_default_str();
    sub->add_option("--prior-loss-weight", pc->prior_loss_weight, "Weight of the class-prior loss (0: no prior preservation)")
        ->capture_default_str();
    sub->add_flag("--train-text-encoder", pc->train_text_encoder, "Also train the text encoder");
  };
  const auto lora_options = [&](CLI::App* sub) {
    sub->add_option("--rank", pc->lora_rank, "LoRA rank")->capture_default_str();
    sub->add_option("--alpha", pc->lora_alpha, "LoRA alpha (scale alpha/rank; 0: alpha = rank)")->capture_default_str();
    sub->add_option("--lora-targets", pc->lora_targets, "transformer (attention + feed-forward + proj_in/out, kohya's "
                                                        "default) or attention (to_q/k/v/out only)")
        ->capture_default_str();
    sub->add_option("--output-name", pc->output_name, "LoRA file name without extension (default: the --out folder name)");
  };
  CLI::App* dreambooth = personalize(
      "dreambooth", "DreamBooth with prior preservation: fine-tunes the UNet (or a LoRA with --lora) on a subject; "
                    "writes <out>/model (diffusers) or <out>/<name>.safetensors");
  prior_options(dreambooth);
  dreambooth->add_flag("--lora", pc->lora, "Train a LoRA instead of the full UNet");
  lora_options(dreambooth);
  CLI::App* lora = personalize("lora", "LoRA on the UNet's attention layers (and the text encoder's with "
                                       "--train-text-encoder); writes <out>/<name>.safetensors (kohya format)");
  prior_options(lora);
  lora_options(lora);
  CLI::App* ti = personalize("textual-inversion", "Textual inversion: learns new token vectors for a placeholder word; "
                                                  "writes <out>/<placeholder>.safetensors (A1111 embedding)");
  ti->add_option("--placeholder", pc->placeholder, "The new word, used in prompts (e.g. sks-face)")->required();
  ti->add_option("--initializer", pc->initializer, "Text whose token embeddings start the vectors (e.g. face)")->required();
  ti->add_option("--num-vectors", pc->num_vectors, "Vectors per token")->capture_default_str();

  return {cmd, [o, recipe_commands, dreambooth, lora, ti, pc] {
    bool primary = true;
    const auto finish = [&primary](bool interrupted, const std::string& output, const std::string& out_dir) {
      if (interrupted)
        throw RuntimeError("interrupted: a checkpoint was written; continue with --resume --out " + out_dir);
      if (primary) std::cout << output << "\n";
    };
    if (o->nproc > 1) {
      if (train::dist::settings_from_env())
        throw UsageError("--nproc starts the training processes itself; this process is one already (WORLD_SIZE "
                         "is set): drop --nproc, or launch without the torchrun variables");
      launch_local(o->nproc);
      return;
    }
    for (CLI::App* sub : {dreambooth, lora, ti}) {
      if (!sub->parsed()) continue;
      pc->method = sub == dreambooth ? train::PersonalizeMethod::DreamBooth
                   : sub == lora     ? train::PersonalizeMethod::LoRA
                                     : train::PersonalizeMethod::TextualInversion;
      if (pc->model.empty()) pc->model = find_default_model();
      if (sub == ti && ti->count("--lr") == 0) pc->train.lr = 5e-3;  // vectors alone take a larger step
      const std::string out_dir =
          o->out.empty() ? (std::filesystem::path("runs") /
                            (std::string(train::method_name(pc->method)) + "-" +
                             std::filesystem::path(pc->instance_dir).filename().string()))
                               .string()
                         : o->out;
      const auto result = run_maybe_distributed(out_dir, primary, [&](const std::string& dir) {
        return train::run_personalize(*pc, {.out_dir = dir, .resume = o->resume});
      });
      finish(result.interrupted, result.output, out_dir);
      return;
    }
    for (CLI::App* sub : recipe_commands) {
      if (!sub->parsed()) continue;
      const std::string out_dir =
          o->out.empty() ? (std::filesystem::path("runs") / std::filesystem::path(o->config).stem()).string() : o->out;
      const auto recipe = train::find_recipe(sub->get_name());
      const auto result = run_maybe_distributed(
          out_dir, primary, [&](const std::string& dir) { return recipe.run(o->config, {.out_dir = dir, .resume = o->resume}); });
      finish(result.interrupted, result.output, out_dir);
      return;
    }
  }};
}

}  // namespace genvis::cli
