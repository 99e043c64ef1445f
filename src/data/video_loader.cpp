#include "data/video_loader.h"

#include "core/error.h"
#include "data/splitmix.h"

#include <algorithm>
#include <cmath>

namespace genvis::data {

VideoLoader::VideoLoader(DatasetSpec spec, VideoLoaderOptions options) : options_(std::move(options)) {
  if (options_.batch_size < 1) throw UsageError("video loader: batch_size must be >= 1");
  if (options_.buckets.empty()) throw UsageError("video loader: give at least one (frames, height, width) bucket");
  double total = 0;
  for (const VideoBucket& b : options_.buckets) {
    if (!(b.weight > 0) || !std::isfinite(b.weight))
      throw UsageError("video loader: bucket weights must be positive, got " + std::to_string(b.weight));
    if (b.frames < 1 || b.height < 1 || b.width < 1)
      throw UsageError("video loader: bucket " + std::to_string(b.frames) + "x" + std::to_string(b.height) + "x" +
                       std::to_string(b.width) + " (frames x height x width) must be positive");
    total += b.weight;
  }
  for (const VideoBucket& b : options_.buckets) {
    DatasetSpec s = spec;
    s.num_frames = b.frames;
    s.resolution = std::max(b.height, b.width);
    datasets_.push_back(make_video_dataset(s));
    cumulative_.push_back((cumulative_.empty() ? 0.0 : cumulative_.back()) + b.weight / total);
  }
  cumulative_.back() = 1.0;
}

size_t VideoLoader::bucket_of(int64_t step) const {
  if (step < 0) throw UsageError("video loader: step must be >= 0");
  SplitMix rng(options_.seed, 0x300, static_cast<uint64_t>(step));
  const double u = rng.uniform();
  return static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin());
}

std::vector<size_t> VideoLoader::indices(int64_t step) const {
  if (step < 0) throw UsageError("video loader: step must be >= 0");
  SplitMix rng(options_.seed, 0x301, static_cast<uint64_t>(step));
  const size_t n = dataset_size();
  std::vector<size_t> out(static_cast<size_t>(options_.batch_size));
  for (auto& i : out) i = std::min(n - 1, static_cast<size_t>(rng.uniform() * static_cast<double>(n)));
  return out;
}

VideoBatch VideoLoader::batch(int64_t step) const { return clips(bucket_of(step), indices(step)); }

VideoBatch VideoLoader::clips(size_t bucket_index, const std::vector<size_t>& indices) const {
  if (bucket_index >= options_.buckets.size())
    throw UsageError("video loader: no bucket " + std::to_string(bucket_index) + " (there are " +
                     std::to_string(options_.buckets.size()) + ")");
  VideoBatch b;
  b.bucket = bucket_index;
  b.indices = indices;
  const VideoBucket& bucket = options_.buckets[b.bucket];
  const VideoDataset& ds = *datasets_[b.bucket];
  const int side = std::max(bucket.height, bucket.width);
  const int top = (side - bucket.height) / 2, left = (side - bucket.width) / 2;
  b.videos = at::empty({static_cast<int64_t>(b.indices.size()), 3, bucket.frames, bucket.height, bucket.width});
  auto out = b.videos.accessor<float, 5>();
  for (size_t k = 0; k < b.indices.size(); ++k) {
    VideoSample clip = ds.get(b.indices[k]);
    for (int t = 0; t < bucket.frames; ++t) {
      const io::Image& f = clip.frames.at(static_cast<size_t>(t));
      const double scale = 2.0 / f.max_value();
      for (int y = 0; y < bucket.height; ++y)
        for (int x = 0; x < bucket.width; ++x)
          for (int c = 0; c < 3; ++c)
            out[static_cast<int64_t>(k)][c][t][y][x] =
                static_cast<float>(f.at(left + x, top + y, f.channels >= 3 ? c : 0) * scale - 1.0);
    }
    b.captions.push_back(std::move(clip.caption));
    b.meta.push_back(std::move(clip.meta));
  }
  return b;
}

}  // namespace genvis::data
