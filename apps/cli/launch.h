// Several processes of one command: `genvis train|eval ... --nproc N` starts N copies of its own
// command line as ranks of one c10d process group on this machine (core/distributed.h), and a
// process started that way (or by torchrun, a cluster scheduler, ...) joins the group that its
// environment names.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace genvis::cli {

// --nproc N on a subcommand; `what` starts its help ("Train", "Evaluate").
void add_nproc_option(CLI::App* sub, int& nproc, const std::string& what);

// Runs invocation() N times without --nproc as ranks 0..N-1 on 127.0.0.1 (RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT set; threads / N CPU threads each unless --threads is
// given; ranks > 0 quiet) and waits for all. The first failure (in exit order) becomes this
// process's error, with the rank's exit code kind; a rank still alive 30 s after another failed
// is terminated (SIGTERM, SIGKILL 10 s later); SIGINT/SIGTERM here are passed on to every rank.
// UsageError when this process is itself a rank (WORLD_SIZE is set).
void launch_local(int nproc);

// Joins the process group that the environment names (WORLD_SIZE > 1; ranks > 0 then log only
// warnings and draw no progress) or does nothing. Returns whether this process is rank 0 or alone:
// the one that prints and writes the result. dist::finalize() leaves.
bool join_from_env();

}  // namespace genvis::cli
