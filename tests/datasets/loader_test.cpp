// DataLoader: deterministic order (a permutation per epoch), resume = jump to a step, crops,
// flips only where the dataset allows them, background prefetch giving the same batches.
#include "core/error.h"
#include "data/loader.h"
#include "support/test_support.h"

#include <set>

namespace genvis::data {
namespace {

// Sample i: a 12x8 (w x h) image whose left half has value i and right half 255 - i.
class Stripes : public Dataset {
public:
  explicit Stripes(size_t n, bool flips = true) : n_(n), flips_(flips) {}
  std::string name() const override { return "stripes"; }
  size_t size() const override { return n_; }
  Sample get(size_t i) const override {
    Sample s;
    s.image = io::Image::blank(12, 8, 3);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 12; ++x)
        for (int c = 0; c < 3; ++c) s.image.at(x, y, c) = static_cast<uint16_t>(x < 6 ? i : 255 - i);
    s.caption = "stripes " + std::to_string(i);
    s.meta = {{"i", i}};
    return s;
  }
  bool flip_allowed(const Sample&) const override { return flips_; }

private:
  size_t n_;
  bool flips_;
};

LoaderOptions options(uint64_t seed) {
  LoaderOptions o;
  o.batch_size = 4;
  o.resolution = 8;
  o.seed = seed;
  return o;
}

TEST(DataLoader, EachEpochIsAPermutationAndSeedsDiffer) {
  auto ds = std::make_shared<Stripes>(20);
  DataLoader a(ds, options(1));
  std::multiset<size_t> epoch0, epoch1;
  for (int64_t s = 0; s < 5; ++s)
    for (size_t i : a.indices(s)) epoch0.insert(i);
  for (int64_t s = 5; s < 10; ++s)
    for (size_t i : a.indices(s)) epoch1.insert(i);
  EXPECT_EQ(epoch0.size(), 20u);
  EXPECT_EQ(std::set<size_t>(epoch0.begin(), epoch0.end()).size(), 20u);
  EXPECT_EQ(std::set<size_t>(epoch1.begin(), epoch1.end()).size(), 20u);
  EXPECT_NE(a.indices(0), a.indices(5));  // a new order each epoch
  DataLoader b(ds, options(2));
  EXPECT_NE(a.indices(0), b.indices(0));
  LoaderOptions ordered = options(1);
  ordered.shuffle = false;
  EXPECT_EQ(DataLoader(ds, ordered).indices(1), (std::vector<size_t>{4, 5, 6, 7}));
}

TEST(DataLoader, JumpingToAStepGivesTheSameBatchAsRunningThrough) {
  auto ds = std::make_shared<Stripes>(10);
  LoaderOptions o = options(3);
  o.random_crop = true;
  o.hflip = true;
  DataLoader sequential(ds, o);
  std::vector<Batch> seen;
  for (int64_t s = 0; s < 7; ++s) seen.push_back(sequential.batch(s));
  DataLoader resumed(ds, o);
  for (int64_t s : {5, 6, 2}) {
    const Batch b = resumed.batch(s);
    EXPECT_EQ(b.indices, seen[static_cast<size_t>(s)].indices) << s;
    EXPECT_TRUE(at::equal(b.images, seen[static_cast<size_t>(s)].images)) << s;
    EXPECT_EQ(b.captions, seen[static_cast<size_t>(s)].captions);
  }
  EXPECT_EQ(seen[0].images.sizes(), (std::vector<int64_t>{4, 3, 8, 8}));
  EXPECT_EQ(seen[0].captions[0], "stripes " + std::to_string(seen[0].indices[0]));
}

TEST(DataLoader, FlipsOnlyWhereAllowedAndAboutHalfTheTime) {
  // 12x8 -> short side 8 already; the 8x8 centre crop spans columns 2..9: left 4 columns value i.
  const auto left_is_i = [](const Batch& b, size_t k) {
    const float expected = static_cast<float>(b.indices[k]) / 255.f * 2 - 1;
    return std::abs(b.images[static_cast<int64_t>(k)][0][0][0].item<float>() - expected) < 1e-5;
  };
  LoaderOptions o = options(4);
  o.hflip = true;
  DataLoader never(std::make_shared<Stripes>(40, false), o);
  DataLoader sometimes(std::make_shared<Stripes>(40, true), o);
  int flipped = 0, total = 0;
  for (int64_t s = 0; s < 10; ++s) {
    const Batch n = never.batch(s), y = sometimes.batch(s);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_TRUE(left_is_i(n, k));
      flipped += !left_is_i(y, k);
      ++total;
    }
  }
  EXPECT_GT(flipped, total / 5);
  EXPECT_LT(flipped, total * 4 / 5);
}

TEST(ResizeAndCrop, AreaAveragesDownAndCropsTheCentre) {
  // A 2x2 checkerboard of 0/1 pixels averaged down by 2 is 0.5 everywhere.
  at::Tensor board = (at::arange(8).view({1, 8}) + at::arange(8).view({8, 1})).remainder(2).to(at::kFloat);
  board = board.view({1, 1, 8, 8}).expand({1, 3, 8, 8}).contiguous();
  const at::Tensor down = resize_and_crop(board, 4);
  EXPECT_EQ(down.sizes(), (std::vector<int64_t>{1, 3, 4, 4}));
  EXPECT_NEAR(down.min().item<float>(), 0.5, 1e-6);
  EXPECT_NEAR(down.max().item<float>(), 0.5, 1e-6);
  // A wide image keeps its middle; x = 0 keeps its left edge.
  const at::Tensor wide = at::arange(16, at::kFloat).view({1, 1, 1, 16}).expand({1, 3, 8, 16}).contiguous();
  EXPECT_EQ(resize_and_crop(wide, 8)[0][0][0][0].item<float>(), 4.f);
  EXPECT_EQ(resize_and_crop(wide, 8, 0.0)[0][0][0][0].item<float>(), 0.f);
  EXPECT_EQ(resize_and_crop(wide, 16).sizes(), (std::vector<int64_t>{1, 3, 16, 16}));  // upscaled
}

TEST(DataLoader, BadOptionsAreRefused) {
  auto ds = std::make_shared<Stripes>(4);
  LoaderOptions o = options(0);
  o.batch_size = 0;
  EXPECT_THROW(DataLoader(ds, o), UsageError);
  o = options(0);
  o.resolution = 3;
  EXPECT_THROW(DataLoader(ds, o), UsageError);
  EXPECT_THROW(DataLoader(std::make_shared<Stripes>(0), options(0)), UsageError);
  EXPECT_THROW(DataLoader(ds, options(0)).indices(-1), UsageError);
}

}  // namespace
}  // namespace genvis::data
