#include "core/distributed.h"

#include "core/error.h"

#include <filesystem>
#include <memory>
#include <mutex>

// c10d's Gloo backend is declared only under USE_C10D_GLOO (src/CMakeLists.txt sets it for this
// file), and its header includes Gloo's own (Debian: libgloo-dev). Debian's libtorch 1.13 and the
// CUDA libtorch 2.x builds both ship the backend; without Gloo's headers this file still builds,
// and a world of more than one process is refused with a message saying what to install.
#if __has_include(<gloo/algorithm.h>) && !defined(GENVIS_NO_GLOO)
#define GENVIS_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#define GENVIS_HAVE_GLOO 0
#endif

namespace fs = std::filesystem;

namespace genvis::dist {
namespace {

struct World {
  Settings settings;
#if GENVIS_HAVE_GLOO
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
#endif
  std::string primary_root, rank_root;  // rank_folder(): rank 0's folder and this rank's
};

std::mutex g_mutex;
std::unique_ptr<World> g_world;

World* world() { return g_world && g_world->settings.world_size > 1 ? g_world.get() : nullptr; }

[[maybe_unused]] std::string message_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

[[maybe_unused]] [[noreturn]] void fail(const std::string& what, const std::exception& e) {
  const World* w = world();
  throw RuntimeError("distributed training: " + what + " failed on rank " + std::to_string(w ? w->settings.rank : 0) +
                     " of " + std::to_string(w ? w->settings.world_size : 1) + ": " + message_of(e) +
                     " (another process stopped, or did not answer within " +
                     std::to_string(static_cast<int64_t>(w ? w->settings.timeout_seconds : 0)) +
                     " s; GENVIS_DIST_TIMEOUT sets the limit)");
}

int64_t env_int(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used != std::string(v).size() || n < lo || n > hi) throw std::out_of_range(name);
    return n;
  } catch (const std::exception&) {
    throw UsageError(std::string("environment variable ") + name + "='" + v + "' must be an integer in [" +
                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
}

// The same tensors, gathered into CPU buckets of one dtype and at most kBucketBytes each.
constexpr int64_t kBucketBytes = 16 << 20;
struct Bucket {
  std::vector<at::Tensor> tensors;
  at::Tensor flat;  // CPU, contiguous
};
[[maybe_unused]] std::vector<Bucket> buckets_of(const std::vector<at::Tensor>& tensors) {
  std::vector<Bucket> out;
  int64_t bytes = 0;
  for (const auto& t : tensors) {
    if (!t.defined()) throw UsageError("distributed: an undefined tensor cannot be communicated");
    const int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
    if (out.empty() || out.back().tensors.front().scalar_type() != t.scalar_type() || bytes + b > kBucketBytes) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().tensors.push_back(t);
    bytes += b;
  }
  for (auto& bucket : out) {
    std::vector<at::Tensor> parts;
    for (const auto& t : bucket.tensors) parts.push_back(t.detach().reshape(-1).to(at::kCPU));
    bucket.flat = at::cat(parts).contiguous();
  }
  return out;
}
[[maybe_unused]] void scatter_back(const std::vector<Bucket>& buckets) {
  at::NoGradGuard no_grad;
  for (const auto& bucket : buckets) {
    int64_t offset = 0;
    for (const auto& t : bucket.tensors) {
      const at::Tensor part = bucket.flat.narrow(0, offset, t.numel()).view(t.sizes());
      t.detach().copy_(part);
      offset += t.numel();
    }
  }
}

void link_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  if (!fs::is_directory(from)) return;
  for (const auto& e : fs::directory_iterator(from)) {
    const fs::path name = e.path().filename();
    if (name == ".ranks") continue;
    const fs::path target = to / name;
    if (e.is_directory()) {
      link_tree(e.path(), target);
    } else if (e.is_regular_file()) {
      // Appended logs are copied: an append would write through a link into rank 0's file.
      std::error_code ec;
      if (e.path().extension() != ".jsonl") fs::create_hard_link(e.path(), target, ec);
      if (e.path().extension() == ".jsonl" || ec) fs::copy_file(e.path(), target, fs::copy_options::overwrite_existing);
    }
  }
}

}  // namespace

std::optional<Settings> settings_from_env() {
  const int64_t world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  if (world_size <= 1) return std::nullopt;
  Settings s;
  s.world_size = static_cast<int>(world_size);
  if (!std::getenv("RANK")) throw UsageError("environment variable WORLD_SIZE=" + std::to_string(world_size) +
                                             " needs RANK (this process's rank, 0 .. WORLD_SIZE-1)");
  s.rank = static_cast<int>(env_int("RANK", 0, 0, world_size - 1));
  s.local_rank = static_cast<int>(env_int("LOCAL_RANK", s.rank, 0, world_size - 1));
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) s.master_addr = a;
  s.master_port = static_cast<int>(env_int("MASTER_PORT", 29500, 1, 65535));
  s.timeout_seconds = static_cast<double>(env_int("GENVIS_DIST_TIMEOUT", 1800, 1, 7 * 24 * 3600));
  return s;
}

void init(const Settings& settings) {
  const std::lock_guard lock(g_mutex);
  if (g_world) throw UsageError("distributed: this process has joined a group already");
  if (settings.world_size < 1 || settings.rank < 0 || settings.rank >= settings.world_size)
    throw UsageError("distributed: rank " + std::to_string(settings.rank) + " is not in a world of " +
                     std::to_string(settings.world_size));
  auto w = std::make_unique<World>();
  w->settings = settings;
#if !GENVIS_HAVE_GLOO
  if (settings.world_size > 1)
    throw UsageError("distributed: this genvis was built without Gloo's headers (Debian: libgloo-dev), so it cannot "
                     "join " + std::to_string(settings.world_size) + " processes; rebuild with them");
#else
  if (settings.world_size > 1) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(settings.timeout_seconds * 1000));
    try {
      c10d::TCPStoreOptions options;
      options.port = static_cast<uint16_t>(settings.master_port);
      options.isServer = settings.rank == 0;
      options.numWorkers = static_cast<size_t>(settings.world_size);
      options.waitWorkers = true;
      options.timeout = timeout;
      w->store = c10::make_intrusive<c10d::TCPStore>(settings.master_addr, options);
      auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
      const std::string& a = settings.master_addr;
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (a == "localhost" || a.rfind("127.", 0) == 0)
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      w->group = c10::make_intrusive<c10d::ProcessGroupGloo>(w->store, settings.rank, settings.world_size, gloo);
    } catch (const std::exception& e) {
      throw RuntimeError("distributed training: rank " + std::to_string(settings.rank) + " could not join the " +
                         std::to_string(settings.world_size) + " processes at " + settings.master_addr + ":" +
                         std::to_string(settings.master_port) + ": " + message_of(e));
    }
  }
#endif
  g_world = std::move(w);
}

void finalize() {
  const std::lock_guard lock(g_mutex);
  g_world.reset();
}

bool active() { return world() != nullptr; }
int rank() { return world() ? world()->settings.rank : 0; }
int world_size() { return world() ? world()->settings.world_size : 1; }
bool primary() { return rank() == 0; }

#if GENVIS_HAVE_GLOO
namespace {

// Runs `op` on every bucket of `tensors` at once (Gloo's worker threads take them in order), waits
// for all, and copies the results back into the tensors.
template <typename Op>
void over_buckets(const std::vector<at::Tensor>& tensors, const std::string& what, Op op) {
  World* w = world();
  if (!w || tensors.empty()) return;
  std::vector<Bucket> buckets = buckets_of(tensors);
  try {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& b : buckets) {
      std::vector<at::Tensor> one{b.flat};
      works.push_back(op(*w->group, one));
    }
    for (auto& work : works) work->wait();
  } catch (const std::exception& e) {
    fail(what, e);
  }
  scatter_back(buckets);
}

}  // namespace

void all_reduce_sum(const std::vector<at::Tensor>& tensors, const std::string& what) {
  over_buckets(tensors, what, [](c10d::ProcessGroupGloo& group, std::vector<at::Tensor>& one) {
    return group.allreduce(one, c10d::AllreduceOptions{});
  });
}

std::function<void()> all_reduce_sum_async(const at::Tensor& flat, const std::string& what) {
  World* w = world();
  if (!w) return [] {};
  if (!flat.is_contiguous() || flat.device().type() != at::kCPU)
    throw UsageError("distributed: an asynchronous sum takes a contiguous CPU tensor");
  c10::intrusive_ptr<c10d::Work> work;
  try {
    std::vector<at::Tensor> one{flat};
    work = w->group->allreduce(one, c10d::AllreduceOptions{});
  } catch (const std::exception& e) {
    fail(what, e);
  }
  return [work, what] {
    try {
      work->wait();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  };
}

void broadcast(const std::vector<at::Tensor>& tensors, const std::string& what, int root) {
  over_buckets(tensors, what, [root](c10d::ProcessGroupGloo& group, std::vector<at::Tensor>& one) {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    return group.broadcast(one, options);
  });
}

void barrier(const std::string& what) {
  World* w = world();
  if (!w) return;
  try {
    w->group->barrier(c10d::BarrierOptions{})->wait();
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

#else
// Without Gloo no world has more than one process: the collectives have nothing to do.
void all_reduce_sum(const std::vector<at::Tensor>&, const std::string&) {}
std::function<void()> all_reduce_sum_async(const at::Tensor&, const std::string&) { return [] {}; }
void broadcast(const std::vector<at::Tensor>&, const std::string&, int) {}
void barrier(const std::string&) {}
#endif

std::string rank_folder(const std::string& out) {
  World* w = world();
  if (!w) return out;
  std::string mine = out;
  if (w->settings.rank != 0) {
    const fs::path folder = fs::path(out) / ".ranks" / std::to_string(w->settings.rank);
    try {
      fs::remove_all(folder);
      link_tree(out, folder);
    } catch (const fs::filesystem_error& e) {
      throw RuntimeError("distributed training: rank " + std::to_string(w->settings.rank) +
                         " cannot prepare its folder " + folder.string() + ": " + e.what());
    }
    mine = folder.string();
  } else {
    fs::create_directories(out);
  }
  // Nobody writes the run folder before every rank has copied it.
  barrier("preparing the rank folders");
  w->primary_root = fs::weakly_canonical(out).string();
  w->rank_root = fs::weakly_canonical(mine).string();
  return mine;
}

std::string primary_path(const std::string& path) {
  World* w = world();
  if (!w || w->settings.rank == 0 || w->rank_root.empty()) return path;
  const fs::path rel = fs::weakly_canonical(path).lexically_relative(w->rank_root);
  if (rel.empty() || *rel.begin() == "..") return path;
  return (fs::path(w->primary_root) / rel).lexically_normal().string();
}

}  // namespace genvis::dist
