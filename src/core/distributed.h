// Data-parallel training across processes on libtorch's own c10d (ProcessGroupGloo over TCP,
// rendezvous through c10d's TCPStore), joined the way torchrun-style launchers and cluster
// schedulers expect: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT in the environment.
//
//   if (auto s = dist::settings_from_env()) dist::init(*s);     // WORLD_SIZE > 1: join the group
//   const std::string out = dist::rank_folder("runs/ldm");       // rank 0: runs/ldm, others a
//   run_recipe(config, out);                                     //   private copy (see below)
//   dist::finalize();
//
// The Trainer does the rest (train/trainer.h): every process runs its share of each step's
// micro-batches, gradients are summed over processes, and rank 0 alone writes checkpoints,
// metrics and validation samples. A recipe runs unchanged on every rank; what it writes outside
// the Trainer (exports, reports, caches) lands in the rank's own folder, so ranks never write
// the same file.
//
// Rank folders: rank 0 writes the run folder itself; rank r > 0 writes <out>/.ranks/<r>, which
// rank_folder() recreates from the run folder with hard links (copies for the append-only .jsonl
// logs) before any rank starts, so that every rank finds the same finished stages and caches.
// Every genvis file write is write-to-temporary-then-rename, so a rank replacing a linked file
// never changes rank 0's. Checkpoints are read from rank 0's folder (primary_path()). The run
// folder must therefore be one shared filesystem for all ranks (one machine, or NFS on several).
//
// Errors: a collective that fails (another process died: its sockets close) or waits longer than
// the timeout (GENVIS_DIST_TIMEOUT seconds, default 1800) throws a RuntimeError naming the
// operation and the rank, so a dead peer stops the others instead of hanging them.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace genvis::dist {

struct Settings {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double timeout_seconds = 1800;
};

// The settings in the environment; nullopt when WORLD_SIZE is unset or 1. A malformed or
// inconsistent variable (RANK >= WORLD_SIZE, a port out of range, ...) is a UsageError naming it.
std::optional<Settings> settings_from_env();

// Joins the process group (blocks until all world_size processes have joined or the timeout
// passes). One group per process; a second init is a UsageError.
void init(const Settings& settings);
// Leaves the group (idempotent; also at exit).
void finalize();

bool active();       // init() was called and the world has more than one process
int rank();          // 0 when not active
int world_size();    // 1 when not active
bool primary();      // rank 0, or not active

// Sums each tensor over all processes in place (floating tensors on any device; reduced in
// buckets of at most 16 MB on the CPU). Every process passes the same shapes in the same order.
void all_reduce_sum(const std::vector<at::Tensor>& tensors, const std::string& what);
// Starts summing one contiguous CPU tensor over all processes in place and returns at once; the
// returned function waits for the sum (RuntimeError as all_reduce_sum). Every process starts the
// same sums in the same order. Not active: the function does nothing.
std::function<void()> all_reduce_sum_async(const at::Tensor& flat, const std::string& what);
// Copies root's tensors into every other process's (same shapes in the same order).
void broadcast(const std::vector<at::Tensor>& tensors, const std::string& what, int root = 0);
// Waits for every process.
void barrier(const std::string& what);

// The folder this rank writes for a run in `out` (see above); `out` itself when not active.
std::string rank_folder(const std::string& out);
// `path` inside this rank's folder mapped to the same place in rank 0's folder (checkpoints are
// read from there); `path` itself on rank 0, when not active, or outside the rank folder.
std::string primary_path(const std::string& path);

}  // namespace genvis::dist
