#include "launch.h"

#include "commands.h"
#include "core/distributed.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
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

}  // namespace

void launch_local(int nproc) {
  if (dist::settings_from_env())
    throw UsageError("--nproc starts the processes itself; this process is one already (WORLD_SIZE is set): drop "
                     "--nproc, or launch without the torchrun variables");
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


void add_nproc_option(CLI::App* sub, int& nproc, const std::string& what) {
  sub->add_option("--nproc", nproc,
                  what + " data-parallel in N processes on this machine (or launch with torchrun's "
                         "RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT variables; docs: README, distributed)")
      ->check(CLI::Range(1, 1024));
}

bool join_from_env() {
  const auto world = dist::settings_from_env();
  if (!world) return true;
  dist::init(*world);
  if (world->rank != 0) {
    set_log_level(LogLevel::Warn);
    set_progress_quiet(true);
  }
  return world->rank == 0;
}

}  // namespace genvis::cli
