#include "nn/cpu_kernels.h"

#include <ATen/Parallel.h>
#include <c10/core/thread_pool.h>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <pthread.h>

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

}  // namespace genvis::nn::cpu
