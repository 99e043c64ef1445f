// The gradient sum of a data-parallel run (core/distributed.h), overlapped with the backward pass
// as PyTorch's DistributedDataParallel does it: a group's parameters are cut into buckets (at
// first in reverse registration order; after the first sum in the order rank 0's gradients became
// ready, parameters without one last, as DDP rebuilds its buckets); during the
// turn's last local backward a hook on each parameter copies its final gradient into its bucket,
// and a bucket whose gradients are all there starts its sum over the processes at once, while
// backward goes on. Buckets start strictly in order on every process (collectives must match),
// so a bucket waits for the ones before it. After backward, finish() starts what is left (a
// parameter without a gradient here counts as zeros, with a flag so that one no process touched
// keeps no gradient), waits, and writes the sums into .grad.
//
//   GradientSync sync(group_params);        // hooks registered, removed by the destructor
//   ... backward of all but the last local micro-batch ...
//   sync.arm();  last_loss.backward();       // sums start during this backward
//   double global_loss = sync.finish(local_loss_sum, "step 12");
#pragma once
#include "train/optim.h"

#include <functional>
#include <string>
#include <vector>

namespace genvis::train {

class GradientSync {
public:
  explicit GradientSync(NamedTensors params, int64_t bucket_bytes = 4 << 20);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // The next backward is the turn's last local one: gradients reaching the parameters from now on
  // are final (added to what earlier micro-batches accumulated).
  void arm();
  // Sums the rest, waits, leaves every parameter's .grad the sum over processes, disarms; returns
  // `local_loss` summed over processes.
  double finish(double local_loss, const std::string& what);

  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t started_during_backward() const { return started_early_; }  // of the last finish()

private:
  void on_gradient(size_t param, const at::Tensor& grad);
  void start_ready_buckets();
  void build_buckets(const std::vector<size_t>& order);
  at::Tensor slot(size_t param) const;  // the parameter's place in its bucket's flat buffer
  void reorder(const std::string& what);

  NamedTensors params_;
  int64_t bucket_bytes_;
  bool ordered_ = false;              // buckets follow the observed order
  std::vector<size_t> ready_order_;   // the first armed backward's order
  std::vector<std::vector<size_t>> buckets_;  // parameter indices
  std::vector<size_t> bucket_of_;
  std::vector<int64_t> offset_;  // in its bucket's flat buffer
  std::vector<at::Tensor> flat_;  // f32, CPU
  std::vector<char> have_;        // parameter's final gradient is in its bucket
  std::vector<int64_t> missing_;  // per bucket
  std::vector<std::function<void()>> waits_;  // the started buckets' waits, in order
  std::vector<unsigned> hooks_;
  bool armed_ = false;
  int64_t started_early_ = 0;
  std::string what_;
};

}  // namespace genvis::train
