// What the CPU benchmarks (bench_sd, bench_wan) measure with: wall and CPU clocks, the process's
// resident memory and its peak, the load average, an op-level profile, and child processes (one
// per measurement, so that every peak belongs to one model and size).
#pragma once
#include "core/torch_compat.h"
#include "nn/attention.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace genvis::bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A "Key:   123 kB" line of /proc/self/status in MB (-1 when absent).
inline double status_mb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::strlen(key))) / 1024.0;
  return -1;
}
inline double rss_mb() { return status_mb("VmRSS:"); }
// Peak RSS since the last reset_peak_rss() (VmHWM).
inline double peak_rss_mb() { return status_mb("VmHWM:"); }
// Resets VmHWM (the peak RSS) to the current RSS.
inline void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// ru_maxrss: the peak RSS of the whole process life.
inline double process_peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

// User + system CPU seconds of the whole process (all threads).
inline double cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// "1.02 0.87 0.65": the 1, 5 and 15 minute load averages.
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Wall seconds of f(): the middle of `runs` timed calls after one untimed warm-up (the upper of
// the two middle ones for an even count).
inline double timed_runs_s(int64_t runs, const std::function<void()>& f) {
  std::vector<double> times;
  for (int64_t r = 0; r <= runs; ++r) {
    const double t0 = now_s();
    f();
    if (r > 0) times.push_back(now_s() - t0);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// Op-level time of f() from libtorch's legacy profiler (a chrome trace): top-level ops (not inside
// another op on the same thread) and the genvis:: scopes (RECORD_FUNCTION in src/nn).
template <typename F>
nlohmann::json profile(F&& f) {
  using json = nlohmann::json;
#if GENVIS_TORCH_AT_LEAST(2, 0)
  f();
  return {{"error", "the profile uses the legacy profiler of libtorch 1.x"}};
#else
  const std::string path = "/tmp/genvis_bench_profile_" + std::to_string(::getpid()) + ".json";
  {
    torch::autograd::profiler::RecordProfile guard(path);
    f();
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(path.c_str());
  json events;
  try {
    events = json::parse(ss.str());
  } catch (const json::exception& e) {
    return {{"error", std::string("cannot parse profiler trace: ") + e.what()}};
  }
  struct Ev {
    std::string name;
    double ts, dur;
  };
  std::map<std::string, std::vector<Ev>> by_thread;
  for (const auto& e : events) {
    if (!e.contains("dur")) continue;
    by_thread[e.value("tid", json(0)).dump()].push_back({e.value("name", ""), e["ts"].get<double>(), e["dur"].get<double>()});
  }
  std::map<std::string, double> top, scope;
  double total = 0;
  for (auto& [tid, evs] : by_thread) {
    std::sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) { return a.ts < b.ts || (a.ts == b.ts && a.dur > b.dur); });
    double end = -1;
    for (const auto& e : evs) {
      if (e.name.rfind("genvis::", 0) == 0) scope[e.name] += e.dur / 1e6;
      if (e.ts >= end) {
        top[e.name] += e.dur / 1e6;
        total += e.dur / 1e6;
        end = e.ts + e.dur;
      }
    }
  }
  std::vector<std::pair<std::string, double>> sorted(top.begin(), top.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  json ops = json::array();
  for (const auto& [name, s] : sorted) ops.push_back({{"op", name}, {"s", s}});
  return {{"top_level_s", total}, {"top_level_ops", ops}, {"scopes_s", scope}};
#endif
}

// Runs this executable again with `args` and parses its stdout as JSON; {"error": ...} when it
// fails or prints something else.
inline nlohmann::json run_child(const std::vector<std::string>& args) {
  using json = nlohmann::json;
  std::vector<std::string> all = {"/proc/self/exe"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : all) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int fds[2];
  if (::pipe(fds) != 0) return {{"error", "pipe failed"}};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return {{"error", std::string("spawn failed: ") + std::strerror(rc)}};
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return {{"error", "child failed"}, {"status", status}, {"args", args}};
  try {
    return json::parse(out);
  } catch (const json::exception& e) {
    return {{"error", std::string("bad child output: ") + e.what()}};
  }
}

// Builds a module with its parameters created directly in `dtype` (the default dtype while
// constructing: no f32 copy ever exists), in eval mode.
template <typename M, typename Config>
M build_in_dtype(const Config& config, at::ScalarType dtype) {
  const auto previous = c10::get_default_dtype();
  c10::set_default_dtype(c10::scalarTypeToTypeMeta(dtype == at::kHalf ? at::kFloat : dtype));
  M m(config);
  c10::set_default_dtype(previous);
  m->to(dtype);
  m->eval();
  return m;
}

// Best of a few square 2048^3 GEMMs in GFLOP/s: bf16 through at::mm (oneDNN), f32 through
// nn::linear (oneDNN; the path the models use; at::mm may be the reference BLAS).
inline double gemm_peak_gflops(at::ScalarType dtype) {
  const int64_t n = 2048;
  torch::NoGradGuard no_grad;
  const at::Tensor a = at::randn({n, n}).to(dtype), b = at::randn({n, n}).to(dtype);
  double best = 0;
  for (int i = 0; i < 4; ++i) {
    const double t0 = now_s();
    const at::Tensor c = dtype == at::kBFloat16 ? at::mm(a, b) : nn::linear(a, b);
    (void)c.sum().item<float>();
    if (i > 0) best = std::max(best, 2.0 * n * n * n / (now_s() - t0) / 1e9);
  }
  return best;
}

// A model folder's JSON file; exit 3 with "<program>: cannot read PATH (...)" when it is missing.
inline nlohmann::json read_model_json(const std::string& path, const char* program) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read %s (train the model or pass --model DIR)\n", program, path.c_str());
    std::exit(3);
  }
  return nlohmann::json::parse(in);
}

}  // namespace genvis::bench
