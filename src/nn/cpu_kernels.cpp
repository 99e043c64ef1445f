#include "nn/cpu_kernels.h"

#include <ATen/Parallel.h>
#include <c10/core/thread_pool.h>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <cstdlib>
#include <string>
#include <pthread.h>
#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace genvis::nn::cpu {
namespace {

std::unique_ptr<c10::ThreadPool> pool_instance;

// One pool for the process, grown when more threads are configured. A forked child has none of
// the parent's threads: it forgets (leaks) the parent's pool and starts its own.
c10::ThreadPool& pool(int workers) {
  static std::mutex mutex;
  static const bool at_fork = [] { return pthread_atfork(nullptr, nullptr, [] { (void)pool_instance.release(); }) == 0; }();
  (void)at_fork;
  std::lock_guard<std::mutex> lock(mutex);
  if (!pool_instance || static_cast<int>(pool_instance->size()) < workers)
    pool_instance = std::make_unique<c10::ThreadPool>(workers);
  return *pool_instance;
}

thread_local bool in_worker = false;  // nested calls run serially (the pool would wait on itself)

}  // namespace

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t parts = std::min<int64_t>(at::get_num_threads(), n / std::max<int64_t>(grain, 1));
  if (parts <= 1 || in_worker) {
    if (n > 0) fn(0, n);
    return;
  }
  std::mutex mutex;
  std::condition_variable done;
  int64_t pending = parts - 1;
  std::exception_ptr error;
  const auto range = [&](int64_t i) { return std::make_pair(n * i / parts, n * (i + 1) / parts); };
  c10::ThreadPool& workers = pool(static_cast<int>(parts - 1));
  for (int64_t i = 1; i < parts; ++i)
    workers.run([&, i] {
      std::exception_ptr e;
      in_worker = true;
      try {
        const auto [begin, end] = range(i);
        fn(begin, end);
      } catch (...) {
        e = std::current_exception();
      }
      in_worker = false;
      std::lock_guard<std::mutex> lock(mutex);
      if (e && !error) error = e;
      if (--pending == 0) done.notify_one();
    });
  try {
    const auto [begin, end] = range(0);
    fn(begin, end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!error) error = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mutex);
  done.wait(lock, [&] { return pending == 0; });
  if (error) std::rethrow_exception(error);
}

#if GENVIS_HAS_AVX512_KERNELS
namespace {

// CPUID leaf 7 EDX bit `feature` (22 AMX-BF16, 25 AMX-INT8) with AMX-TILE (bit 24), the kernel's
// permission for the tile state, and GENVIS_NO_AMX unset.
bool amx_supported(unsigned feature) {
#if defined(__linux__)
  if (const char* off = std::getenv("GENVIS_NO_AMX"); off && *off && std::string(off) != "0") return false;
  if (!avx512_supported()) return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!((d >> 24) & 1u) || !((d >> feature) & 1u)) return false;
  static const bool permitted = [] {
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return permitted;
#else
  (void)feature;
  return false;
#endif
}

}  // namespace

bool amx_bf16_supported() {
  static const bool ok = avx512bf16_supported() && amx_supported(22);
  return ok;
}

bool amx_int8_supported() {
  static const bool ok = amx_supported(25);
  return ok;
}
#endif

}  // namespace genvis::nn::cpu
