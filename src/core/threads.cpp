#include "core/threads.h"

#include "core/error.h"

#include <ATen/Parallel.h>
#include <thread>

namespace genvis {

void set_num_threads(int n) {
  if (n < 0) throw UsageError("--threads must be >= 0 (0 = automatic), got " + std::to_string(n));
  if (n == 0) return;  // libtorch's default already matches the machine
  const int limit = 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (n > limit) throw UsageError("--threads " + std::to_string(n) + " is more than 4x the " +
                                  std::to_string(limit / 4) + " hardware threads");
  at::set_num_threads(n);
}

int num_threads() { return at::get_num_threads(); }

}  // namespace genvis
