#include "core/threads.h"

#include "core/error.h"

#include <ATen/Parallel.h>
#include <cstdlib>
#include <fstream>
#include <sched.h>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace genvis {
namespace {

// Physical cores among the CPUs this process may run on, from sysfs (0 if unknown). libtorch
// counts cores through cpuid, which on some VMs reports one core for two vCPUs that sysfs (and
// the hypervisor) expose as two cores: libtorch 1.13 then defaults to 1 thread on a 2-core VM.
int physical_cores() {
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof mask, &mask) != 0) return 0;
  std::set<std::pair<int, int>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &mask)) continue;
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    int package = -1, core = -1;
    std::ifstream(dir + "physical_package_id") >> package;
    std::ifstream(dir + "core_id") >> core;
    if (core < 0) return 0;
    cores.insert({package, core});
  }
  return static_cast<int>(cores.size());
}

}  // namespace

void set_num_threads(int n) {
  if (n < 0) throw UsageError("--threads must be >= 0 (0 = automatic), got " + std::to_string(n));
  if (n == 0) {  // libtorch's default (physical cores), unless sysfs sees more
    if (std::getenv("OMP_NUM_THREADS") || std::getenv("MKL_NUM_THREADS")) return;
    const int cores = physical_cores();
    if (cores > at::get_num_threads()) at::set_num_threads(cores);
    return;
  }
  const int limit = 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (n > limit) throw UsageError("--threads " + std::to_string(n) + " is more than 4x the " +
                                  std::to_string(limit / 4) + " hardware threads");
  at::set_num_threads(n);
}

int num_threads() { return at::get_num_threads(); }

}  // namespace genvis
