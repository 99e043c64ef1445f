#include "data/loader.h"

#include "core/error.h"
#include "io/image_tensor.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <torch/torch.h>

namespace genvis::data {

namespace {

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double unit(uint64_t h) { return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0); }

}  // namespace

at::Tensor resize_and_crop(const at::Tensor& image, int64_t size, double x, double y) {
  if (image.dim() != 4 || image.size(0) != 1) throw UsageError("resize_and_crop: expected [1,C,H,W]");
  if (size < 1) throw UsageError("resize_and_crop: size must be >= 1");
  const int64_t h = image.size(2), w = image.size(3);
  const double scale = static_cast<double>(size) / static_cast<double>(std::min(h, w));
  const int64_t nh = std::max<int64_t>(size, std::llround(h * scale));
  const int64_t nw = std::max<int64_t>(size, std::llround(w * scale));
  at::Tensor scaled = image;
  if (nh != h || nw != w) {
    if (nh <= h && nw <= w)
      scaled = at::adaptive_avg_pool2d(image, {nh, nw});  // area averaging: no aliasing
    else
      scaled = at::upsample_bilinear2d(image, {nh, nw}, /*align_corners=*/false);
  }
  const int64_t top = std::llround(static_cast<double>(nh - size) * std::clamp(y, 0.0, 1.0));
  const int64_t left = std::llround(static_cast<double>(nw - size) * std::clamp(x, 0.0, 1.0));
  return scaled.narrow(2, top, size).narrow(3, left, size).contiguous();
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  if (!dataset_) throw UsageError("DataLoader: no dataset");
  if (dataset_->size() == 0) throw UsageError("dataset '" + dataset_->name() + "' is empty");
  if (options_.batch_size < 1) throw UsageError("batch_size must be >= 1");
  if (options_.resolution < 8 || options_.resolution > 4096) throw UsageError("resolution must be in 8..4096");
  if (options_.prefetch < 0) throw UsageError("prefetch must be >= 0");
}

DataLoader::~DataLoader() {
  for (auto& [step, f] : pending_) f.wait();
}

int64_t DataLoader::steps_per_epoch() const {
  return std::max<int64_t>(1, static_cast<int64_t>(dataset_->size()) / options_.batch_size);
}

std::vector<size_t> DataLoader::permutation(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = permutations_.find(epoch);
  if (it != permutations_.end()) return it->second;
  std::vector<size_t> order(dataset_->size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (options_.shuffle) {
    // Fisher-Yates with our own hash stream: the same order with every standard library.
    for (size_t i = order.size(); i > 1; --i) {
      const size_t j = static_cast<size_t>(mix(mix(options_.seed, static_cast<uint64_t>(epoch)), i) % i);
      std::swap(order[i - 1], order[j]);
    }
  }
  if (permutations_.size() > 4) permutations_.erase(permutations_.begin());
  return permutations_[epoch] = order;
}

std::vector<size_t> DataLoader::indices(int64_t step) const {
  if (step < 0) throw UsageError("DataLoader: negative step");
  // Sample k of the run (k = step*B + i) is position k mod N of epoch k / N's permutation.
  const auto n = static_cast<int64_t>(dataset_->size());
  std::vector<size_t> out;
  for (int64_t i = 0; i < options_.batch_size; ++i) {
    const int64_t k = step * options_.batch_size + i;
    out.push_back(permutation(k / n)[static_cast<size_t>(k % n)]);
  }
  return out;
}

Batch DataLoader::build(int64_t step) const {
  torch::NoGradGuard no_grad;
  Batch b;
  b.indices = indices(step);
  const int64_t epoch = step * options_.batch_size / static_cast<int64_t>(dataset_->size());
  std::vector<at::Tensor> images;
  for (size_t idx : b.indices) {
    Sample s = dataset_->get(idx);
    const uint64_t h = mix(mix(options_.seed ^ 0x5bd1e995ull, static_cast<uint64_t>(epoch)), idx);
    const double x = options_.random_crop ? unit(mix(h, 1)) : 0.5;
    const double y = options_.random_crop ? unit(mix(h, 2)) : 0.5;
    at::Tensor t = resize_and_crop(io::image_to_tensor(s.image.to_8bit().with_channels(3)), options_.resolution, x, y);
    if (options_.hflip && unit(mix(h, 3)) < 0.5 && dataset_->flip_allowed(s)) t = t.flip({3});
    images.push_back(t);
    b.captions.push_back(std::move(s.caption));
    b.meta.push_back(std::move(s.meta));
  }
  b.images = at::cat(images);
  return b;
}

Batch DataLoader::batch(int64_t step) {
  std::shared_future<Batch> current;
  auto it = pending_.find(step);
  if (it != pending_.end()) {
    current = it->second;
  } else {
    current = std::async(std::launch::deferred, [this, step] { return build(step); }).share();
  }
  // Drop what is behind, schedule what is ahead.
  for (auto p = pending_.begin(); p != pending_.end();) {
    if (p->first <= step || p->first > step + options_.prefetch) {
      p->second.wait();
      p = pending_.erase(p);
    } else {
      ++p;
    }
  }
  for (int64_t s = step + 1; s <= step + options_.prefetch; ++s)
    if (!pending_.count(s)) pending_[s] = std::async(std::launch::async, [this, s] { return build(s); }).share();
  return current.get();
}

}  // namespace genvis::data
