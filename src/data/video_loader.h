// Video training batches in native sizes: each step draws one bucket (frames, height, width) by
// weight and a batch of clips rendered at that size, so a model sees several durations and
// aspect ratios instead of one crop (Sora's "native sizes").
//
//   VideoLoader loader({.name = "shapes-video", .size = 2000},
//                      {.batch_size = 8, .buckets = {{9, 32, 32}, {5, 32, 48}, {17, 32, 32, 0.5}}, .seed = 1});
//   VideoBatch b = loader.batch(step);   // b.videos [8,3,T,H,W] in [-1,1] for the step's bucket
//
// batch(step) is a pure function of (dataset spec, options, step): the bucket comes from
// splitmix(seed, step) against the normalised weights, the clip indices uniformly (with
// replacement) from another stream of the same pair, so a resumed run sees the same batches.
// A bucket's clips are rendered at max(height, width) and centre-cropped to height x width.
#pragma once
#include "data/registry.h"
#include "data/video_dataset.h"

#include <ATen/ATen.h>
#include <memory>
#include <string>
#include <vector>

namespace genvis::data {

struct VideoBucket {
  int frames = 9;
  int height = 32, width = 32;
  double weight = 1.0;  // relative frequency (> 0)
};

struct VideoLoaderOptions {
  int64_t batch_size = 8;
  std::vector<VideoBucket> buckets;
  uint64_t seed = 0;
};

struct VideoBatch {
  at::Tensor videos;  // [B, 3, T, H, W] float32 in [-1, 1]
  std::vector<std::string> captions;
  std::vector<size_t> indices;
  std::vector<nlohmann::json> meta;
  size_t bucket = 0;  // index into options.buckets
};

class VideoLoader {
public:
  // `spec` names a video dataset; its resolution and num_frames are set per bucket. UsageError
  // for no buckets, a bad weight, batch size < 1, or a size the dataset cannot render.
  VideoLoader(DatasetSpec spec, VideoLoaderOptions options);

  VideoBatch batch(int64_t step) const;  // clips(bucket_of(step), indices(step))
  // Clips `indices` of the dataset rendered at bucket `bucket` (any number of them; a latent
  // cache renders the whole set bucket by bucket). UsageError for an unknown bucket or index.
  VideoBatch clips(size_t bucket, const std::vector<size_t>& indices) const;
  size_t bucket_of(int64_t step) const;
  std::vector<size_t> indices(int64_t step) const;
  size_t dataset_size() const { return datasets_.front()->size(); }
  std::string dataset_name() const { return datasets_.front()->name(); }
  const VideoLoaderOptions& options() const { return options_; }

private:
  std::vector<std::shared_ptr<const VideoDataset>> datasets_;  // one per bucket
  VideoLoaderOptions options_;
  std::vector<double> cumulative_;  // normalised cumulative weights
};

}  // namespace genvis::data
