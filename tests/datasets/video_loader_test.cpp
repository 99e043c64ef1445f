// Bucketed video batches: shapes per bucket (non-square ones centre-cropped), bucket frequencies
// following the weights, determinism across loader instances, and clear errors.
#include "data/video_loader.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <map>

namespace genvis::data {
namespace {

const DatasetSpec kSpec{.name = "shapes-video", .size = 500};

TEST(VideoLoader, BatchesHaveTheirBucketsShapesAndCaptions) {
  const VideoLoader loader(kSpec, {.batch_size = 3, .buckets = {{5, 16, 16}, {3, 16, 32}, {9, 24, 16}}, .seed = 4});
  std::map<size_t, int> seen;
  for (int64_t step = 0; step < 30; ++step) {
    const VideoBatch b = loader.batch(step);
    const VideoBucket& bucket = loader.options().buckets[b.bucket];
    ASSERT_EQ(b.videos.sizes(), at::IntArrayRef({3, 3, bucket.frames, bucket.height, bucket.width}));
    EXPECT_GE(b.videos.min().item<float>(), -1.0f);
    EXPECT_LE(b.videos.max().item<float>(), 1.0f);
    ASSERT_EQ(b.captions.size(), 3u);
    EXPECT_EQ(b.meta[0]["num_frames"], bucket.frames);
    // Frames move: the clip is not one image repeated.
    EXPECT_GT((b.videos.select(2, 0) - b.videos.select(2, bucket.frames - 1)).abs().max().item<float>(), 0.1f);
    ++seen[b.bucket];
  }
  EXPECT_EQ(seen.size(), 3u);
  // A 16x32 bucket is the centre of the 32x32 rendering.
  size_t step = 0;
  while (loader.bucket_of(static_cast<int64_t>(step)) != 1) ++step;
  const VideoBatch b = loader.batch(static_cast<int64_t>(step));
  const VideoSample full = make_video_dataset({.name = "shapes-video", .resolution = 32, .num_frames = 3, .size = 500})
                               ->get(b.indices[0]);
  EXPECT_FLOAT_EQ(b.videos[0][1][2][0][5].item<float>(), full.frames[2].at(5, 8, 1) * 2.0f / 255.0f - 1.0f);
  EXPECT_EQ(b.captions[0], full.caption);
}

TEST(VideoLoader, BucketFrequenciesFollowTheWeightsAndStepsAreReproducible) {
  const VideoLoaderOptions o{.batch_size = 2, .buckets = {{3, 16, 16, 3.0}, {5, 16, 16, 1.0}}, .seed = 9};
  const VideoLoader a(kSpec, o), b(kSpec, o);
  int first = 0;
  const int steps = 4000;
  for (int64_t s = 0; s < steps; ++s) {
    EXPECT_EQ(a.bucket_of(s), b.bucket_of(s));
    first += a.bucket_of(s) == 0;
  }
  EXPECT_NEAR(static_cast<double>(first) / steps, 0.75, 0.03);
  EXPECT_EQ(a.indices(17), b.indices(17));
  EXPECT_NE(a.indices(17), a.indices(18));
  EXPECT_TRUE(at::equal(a.batch(5).videos, b.batch(5).videos));
  const VideoLoader other_seed(kSpec, {.batch_size = 2, .buckets = o.buckets, .seed = 10});
  EXPECT_NE(other_seed.indices(17), a.indices(17));
}

TEST(VideoLoader, BadOptionsAreUsageErrors) {
  EXPECT_THROW(VideoLoader(kSpec, {.batch_size = 2}), UsageError);                                   // no buckets
  EXPECT_THROW(VideoLoader(kSpec, {.batch_size = 0, .buckets = {{3, 16, 16}}}), UsageError);
  EXPECT_THROW(VideoLoader(kSpec, {.batch_size = 2, .buckets = {{3, 16, 16, 0.0}}}), UsageError);  // weight
  EXPECT_THROW(VideoLoader(kSpec, {.batch_size = 2, .buckets = {{300, 16, 16}}}), UsageError);     // shapes: <= 256 frames
  EXPECT_THROW(VideoLoader(kSpec, {.batch_size = 2, .buckets = {{3, 8, 8}}}), UsageError);         // too small
  EXPECT_THROW(VideoLoader({.name = "shapes"}, {.batch_size = 2, .buckets = {{3, 16, 16}}}), UsageError);
  const VideoLoader ok(kSpec, {.batch_size = 2, .buckets = {{3, 16, 16}}});
  EXPECT_THROW(ok.batch(-1), UsageError);
}

}  // namespace
}  // namespace genvis::data
