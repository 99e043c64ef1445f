// Batches for training: a deterministic, seedable order, augmentation, and decoding in background
// threads ahead of the training loop.
//
//   DataLoader loader(dataset, {.batch_size = 32, .resolution = 64, .seed = 1, .hflip = true});
//   Batch b = loader.batch(step);   // images [32,3,64,64] in [-1,1], captions
//
// batch(step) is a pure function of (dataset, options, step): epoch e = step*B / N uses the
// permutation drawn from (seed, e), and a sample's crop and flip come from (seed, e, index). A
// resumed run therefore sees exactly the batches an uninterrupted one would, with no loader state
// in the checkpoint. Batches after the requested one are prepared in the background.
#pragma once
#include "data/dataset.h"

#include <ATen/ATen.h>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace genvis::data {

struct LoaderOptions {
  int64_t batch_size = 16;
  int64_t resolution = 64;  // output images are resolution x resolution
  uint64_t seed = 0;
  bool shuffle = true;
  bool random_crop = false;  // else center crop (after scaling the short side to `resolution`)
  bool hflip = false;        // random horizontal flips where the dataset allows them
  int64_t prefetch = 2;      // batches prepared ahead in background threads (0: none)
};

struct Batch {
  at::Tensor images;  // [B,3,R,R] float32 in [-1,1]
  std::vector<std::string> captions;
  std::vector<size_t> indices;  // dataset indices
  std::vector<nlohmann::json> meta;
};

// Scales so the short side is `size` (area averaging down, bilinear up), then crops size x size
// at (x, y) offsets in [0, 1] of the slack (0.5 = centre). [1,3,H,W] -> [1,3,size,size].
at::Tensor resize_and_crop(const at::Tensor& image, int64_t size, double x = 0.5, double y = 0.5);

class DataLoader {
public:
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~DataLoader();

  Batch batch(int64_t step);
  // Dataset indices of the batch for `step` (the order alone, no decoding).
  std::vector<size_t> indices(int64_t step) const;
  int64_t steps_per_epoch() const;
  const LoaderOptions& options() const { return options_; }

private:
  Batch build(int64_t step) const;
  std::vector<size_t> permutation(int64_t epoch) const;

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  mutable std::mutex mutex_;
  mutable std::map<int64_t, std::vector<size_t>> permutations_;
  std::map<int64_t, std::shared_future<Batch>> pending_;
};

}  // namespace genvis::data
