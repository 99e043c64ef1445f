#include "train/grad_sync.h"

#include "core/distributed.h"

#include <climits>
#include <torch/torch.h>

namespace genvis::train {

namespace {
constexpr unsigned kNoHook = UINT_MAX;

// A gradient as the buckets hold it: flat, f32, on the CPU.
at::Tensor flat_f32(const at::Tensor& t) { return t.detach().reshape(-1).to(at::kCPU, at::kFloat); }
}  // namespace

at::Tensor GradientSync::slot(size_t k) const {
  return flat_[bucket_of_[k]].narrow(0, offset_[k], params_[k].second.numel());
}

GradientSync::GradientSync(NamedTensors params, int64_t bucket_bytes)
    : params_(std::move(params)), bucket_bytes_(bucket_bytes) {
  const size_t n = params_.size();
  have_.assign(n, 0);
  std::vector<size_t> reverse(n);
  for (size_t k = 0; k < n; ++k) reverse[k] = n - 1 - k;
  build_buckets(reverse);
  for (size_t k = 0; k < n; ++k) {
    const at::Tensor& p = params_[k].second;
    hooks_.push_back(p.requires_grad() ? p.register_hook([this, k](const at::Tensor& g) { on_gradient(k, g); })
                                       : kNoHook);
  }
}

void GradientSync::build_buckets(const std::vector<size_t>& order) {
  const size_t n = params_.size();
  buckets_.clear();
  flat_.clear();
  bucket_of_.assign(n, 0);
  offset_.assign(n, 0);
  int64_t bytes = 0;
  for (const size_t k : order) {
    const int64_t b = params_[k].second.numel() * 4;
    if (buckets_.empty() || (bytes > 0 && bytes + b > bucket_bytes_)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    bucket_of_[k] = buckets_.size() - 1;
    offset_[k] = bytes / 4;
    buckets_.back().push_back(k);
    bytes += b;
  }
  for (const auto& bucket : buckets_) {
    int64_t numel = 0;
    for (const size_t k : bucket) numel += params_[k].second.numel();
    flat_.push_back(at::zeros({numel}, at::kFloat));
  }
  missing_.assign(buckets_.size(), 0);
}

GradientSync::~GradientSync() {
  for (size_t k = 0; k < hooks_.size(); ++k)
    if (hooks_[k] != kNoHook) params_[k].second.remove_hook(hooks_[k]);
}

void GradientSync::arm() {
  armed_ = true;
  have_.assign(have_.size(), 0);
  for (size_t b = 0; b < buckets_.size(); ++b) missing_[b] = static_cast<int64_t>(buckets_[b].size());
  waits_.clear();
  started_early_ = 0;
  what_ = "the gradient sum";
}

void GradientSync::on_gradient(size_t k, const at::Tensor& grad) {
  if (!armed_ || !grad.defined()) return;
  torch::NoGradGuard no_grad;
  const at::Tensor& p = params_[k].second;
  const size_t b = bucket_of_[k];
  at::Tensor into = slot(k);
  const at::Tensor g = flat_f32(grad);
  if (have_[k]) {  // a second gradient for the same tensor in one backward
    into.add_(g);
    return;
  }
  // The final gradient: what earlier micro-batches accumulated plus this one.
  if (p.grad().defined())
    into.copy_(flat_f32(p.grad())).add_(g);
  else
    into.copy_(g);
  have_[k] = 1;
  if (!ordered_) ready_order_.push_back(k);
  if (--missing_[b] == 0) start_ready_buckets();
}

void GradientSync::start_ready_buckets() {
  // Strictly in bucket order: bucket i starts only after buckets 0 .. i-1.
  while (waits_.size() < buckets_.size() && missing_[waits_.size()] == 0) {
    waits_.push_back(dist::all_reduce_sum_async(flat_[waits_.size()], what_));
    ++started_early_;
  }
}

double GradientSync::finish(double local_loss, const std::string& what) {
  armed_ = false;
  what_ = what;
  torch::NoGradGuard no_grad;
  const size_t n = params_.size();
  // The rest: parameters whose gradient did not come through the hook hold what earlier
  // micro-batches accumulated, or nothing (zeros here, and a 0 flag).
  at::Tensor flags = at::zeros({static_cast<int64_t>(n) + 1}, at::kDouble);
  auto f = flags.accessor<double, 1>();
  for (size_t k = 0; k < n; ++k) {
    const at::Tensor& p = params_[k].second;
    f[k] = have_[k] || p.grad().defined() ? 1.0 : 0.0;
    if (have_[k]) continue;
    if (p.grad().defined())
      slot(k).copy_(flat_f32(p.grad()));
    else
      slot(k).zero_();
  }
  f[n] = local_loss;
  for (size_t b = waits_.size(); b < buckets_.size(); ++b) waits_.push_back(dist::all_reduce_sum_async(flat_[b], what));
  dist::all_reduce_sum({flags}, what);
  for (auto& wait : waits_) wait();
  waits_.clear();
  for (size_t k = 0; k < n; ++k) {
    if (f[k] == 0) continue;
    at::Tensor p = params_[k].second;
    const at::Tensor sum = slot(k).view(p.sizes());
    if (p.grad().defined())
      p.mutable_grad().copy_(sum);
    else
      p.mutable_grad() = sum.to(p.options()).clone();
  }
  if (!ordered_) reorder(what);
  return f[n];
}

void GradientSync::reorder(const std::string& what) {
  // After the first sum, as DistributedDataParallel rebuilds its buckets: the order in which rank
  // 0's gradients became ready, then the parameters that got none (last, so that they hold no
  // bucket back), the same on every process.
  const size_t n = params_.size();
  std::vector<size_t> order = ready_order_;
  std::vector<char> seen(n, 0);
  for (const size_t k : order) seen[k] = 1;
  for (size_t k = n; k-- > 0;)
    if (!seen[k]) order.push_back(k);
  at::Tensor shared = at::empty({static_cast<int64_t>(n)}, at::kLong);
  for (size_t i = 0; i < n; ++i) shared[static_cast<int64_t>(i)] = static_cast<int64_t>(order[i]);
  dist::broadcast({shared}, what + ": rank 0's bucket order");
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<size_t>(shared[static_cast<int64_t>(i)].item<int64_t>());
  build_buckets(order);
  ordered_ = true;
  ready_order_.clear();
}

}  // namespace genvis::train
