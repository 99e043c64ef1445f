// The folder dataset on a temporary directory of PNGs with captions, a corrupt file and an
// orphan caption; buckets and the resampler.
#include "data/folder.h"

#include "core/error.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <string>

namespace genvis::data {
namespace {

// 96x32 RGB, red left half, blue right half.
io::Image wide_image() {
  io::Image img = io::Image::blank(96, 32, 3);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 96; ++x) img.at(x, y, x < 48 ? 0 : 2) = 255;
  return img;
}

// The folder used by most tests:
//   a/wide.png (96x32) + a/wide.txt        b/tall.png (30x90 gray) + b/tall.txt
//   broken.png (not a PNG)                  c/photo_of_cat.png (64x48, no caption)
//   square.png (50x50 RGBA) + blank square.txt
//   orphan.txt (no image), .hidden.png, notes.jpg, .git/x.png (ignored)
struct Fixture {
  test::TempDir dir;
  Fixture() {
    namespace fs = std::filesystem;
    for (const char* sub : {"a", "b", "c", ".git"}) fs::create_directories(dir.file(sub));
    io::write_png(dir.file("a/wide.png"), wide_image());
    test::write_bytes(dir.file("a/wide.txt"), "a banner, red on the left\n");
    io::Image tall = io::Image::blank(30, 90, 1);
    for (int y = 0; y < 90; ++y)
      for (int x = 0; x < 30; ++x) tall.at(x, y, 0) = static_cast<uint16_t>(y * 2);
    io::write_png(dir.file("b/tall.png"), tall);
    test::write_bytes(dir.file("b/tall.txt"), "  a tall tower \r\n");
    test::write_bytes(dir.file("broken.png"), "\x89PNG\r\n\x1a\n this is not a png");
    io::write_png(dir.file("c/photo_of_cat.png"), io::Image::blank(64, 48, 3, 8, 128));
    io::write_png(dir.file("square.png"), io::Image::blank(50, 50, 4, 8, 0));  // fully transparent
    test::write_bytes(dir.file("square.txt"), "  \n");
    test::write_bytes(dir.file("orphan.txt"), "a caption without an image");
    io::write_png(dir.file(".hidden.png"), io::Image::blank(8, 8, 3));
    io::write_png(dir.file(".git/x.png"), io::Image::blank(8, 8, 3));
    test::write_bytes(dir.file("notes.jpg"), "jpeg bytes");
  }
  FolderOptions options() const {
    FolderOptions o;
    o.path = dir.path();
    o.resolution = 64;
    o.bucket_step = 8;
    return o;
  }
};

TEST(Buckets, AreaStepOrderAndSquare) {
  const std::vector<Bucket> b = make_buckets(64, 8);
  ASSERT_FALSE(b.empty());
  EXPECT_NE(std::find(b.begin(), b.end(), Bucket{64, 64}), b.end());
  EXPECT_EQ(b.front(), (Bucket{32, 128}));
  EXPECT_EQ(b.back(), (Bucket{128, 32}));
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_LE(b[i].width * b[i].height, 64 * 64);
    EXPECT_EQ(b[i].width % 8, 0);
    EXPECT_EQ(b[i].height % 8, 0);
    EXPECT_GE(std::min(b[i].width, b[i].height), 32);
    if (i) {
      EXPECT_LT(b[i - 1].aspect(), b[i].aspect());
    }
    // Mirror-symmetric list.
    EXPECT_NE(std::find(b.begin(), b.end(), Bucket{b[i].height, b[i].width}), b.end());
  }
  // kohya's list for 512x512, step 64, sides 256..1024 (train_util.make_bucket_resolutions).
  const std::vector<Bucket> k = make_buckets(512, 64, 256, 1024);
  const std::vector<Bucket> expected = {
      {256, 1024}, {256, 960}, {256, 896}, {256, 832}, {320, 768}, {320, 704},
      {384, 640},  {448, 576}, {512, 512}, {576, 448}, {640, 384}, {704, 320},
      {768, 320},  {832, 256}, {896, 256}, {960, 256}, {1024, 256}};
  EXPECT_EQ(k, expected);
  EXPECT_THROW(make_buckets(60, 8), UsageError);
  EXPECT_THROW(make_buckets(64, 0), UsageError);
  EXPECT_EQ(b[nearest_bucket(b, 3000, 1000)], (Bucket{104, 32}));
  EXPECT_EQ(b[nearest_bucket(b, 1000, 3000)], (Bucket{32, 104}));
  EXPECT_EQ(b[nearest_bucket(b, 7, 7)], (Bucket{64, 64}));
}

TEST(Resize, IdentityAndConstantAndAverage) {
  io::Image img = wide_image();
  EXPECT_EQ(resize_image(img, 96, 32).pixels, img.pixels);
  io::Image flat = io::Image::blank(17, 9, 3, 8, 77);
  for (auto [w, h] : {std::pair{5, 3}, std::pair{64, 40}, std::pair{17, 100}}) {
    io::Image r = resize_image(flat, w, h);
    EXPECT_EQ(r.width, w);
    EXPECT_EQ(r.height, h);
    for (uint16_t v : r.pixels) EXPECT_EQ(v, 77);
  }
  // Halving a 0/255 checkerboard averages it (within 3 at the corners, where the kernel is cut).
  io::Image check = io::Image::blank(32, 32, 1);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) check.at(x, y, 0) = ((x + y) % 2) ? 255 : 0;
  for (uint16_t v : resize_image(check, 16, 16).pixels) EXPECT_NEAR(v, 127.5, 3);
  // A box picks a region: [60, 96) is blue, and the filter (support 2 * 3.6 px) reads no red.
  io::Image right = resize_image(img, 10, 10, 60, 0, 96, 32);
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 10; ++x) {
      EXPECT_EQ(right.at(x, y, 0), 0);
      EXPECT_EQ(right.at(x, y, 2), 255);
    }
  EXPECT_THROW(resize_image(img, 0, 5), UsageError);
  EXPECT_THROW(resize_image(img, 5, 5, 0, 0, 97, 32), UsageError);
}

TEST(Folder, OrderCaptionsAndSkipped) {
  Fixture f;
  FolderDataset ds(f.options());
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_EQ(ds.item(0).path, "a/wide.png");
  EXPECT_EQ(ds.item(1).path, "b/tall.png");
  EXPECT_EQ(ds.item(2).path, "c/photo_of_cat.png");
  EXPECT_EQ(ds.item(3).path, "square.png");
  EXPECT_EQ(ds.get(0).caption, "a banner, red on the left");
  EXPECT_EQ(ds.get(1).caption, "a tall tower");
  EXPECT_EQ(ds.get(2).caption, "photo of cat");
  EXPECT_EQ(ds.get(3).caption, "square");  // blank caption file -> stem
  EXPECT_TRUE(ds.item(0).caption_file);
  EXPECT_FALSE(ds.item(2).caption_file);
  EXPECT_FALSE(ds.item(3).caption_file);
  EXPECT_EQ(ds.get(1).meta["path"], "b/tall.png");

  ASSERT_EQ(ds.skipped().size(), 1u);
  EXPECT_EQ(ds.skipped()[0].path, "broken.png");
  EXPECT_NE(ds.skipped()[0].reason.find("broken.png"), std::string::npos) << ds.skipped()[0].reason;

  FolderOptions o = f.options();
  o.default_caption = "sks thing";
  FolderDataset d2(o);
  EXPECT_EQ(d2.get(2).caption, "sks thing");
  EXPECT_EQ(d2.get(0).caption, "a banner, red on the left");
  EXPECT_THROW(ds.get(4), UsageError);

  o.path = f.dir.file("missing");
  EXPECT_THROW(FolderDataset{o}, LoadError);
}

TEST(Folder, BucketsAndOutputSizes) {
  Fixture f;
  FolderDataset ds(f.options());
  EXPECT_EQ(ds.bucket_of(0), (Bucket{104, 32}));  // 3:1 -> 3.25:1
  EXPECT_EQ(ds.bucket_of(1), (Bucket{32, 104}));
  EXPECT_EQ(ds.bucket_of(2), (Bucket{72, 56}));   // 4:3 -> 9:7
  EXPECT_EQ(ds.bucket_of(3), (Bucket{64, 64}));
  EXPECT_GT(ds.bucket_of(0).aspect(), 1.5);
  for (size_t i = 0; i < ds.size(); ++i) {
    Sample s = ds.get(i);
    EXPECT_EQ(s.image.width, ds.bucket_of(i).width);
    EXPECT_EQ(s.image.height, ds.bucket_of(i).height);
    EXPECT_EQ(s.image.channels, 3);
    EXPECT_EQ(s.image.bit_depth, 8);
    EXPECT_EQ(s.meta["bucket"][0].get<int>(), ds.bucket_of(i).width);
  }
  // Cover + centre crop keeps the halves: red at the left edge, blue at the right.
  Sample wide = ds.get(0);
  EXPECT_EQ(wide.image.at(0, 16, 0), 255);
  EXPECT_EQ(wide.image.at(0, 16, 2), 0);
  EXPECT_EQ(wide.image.at(103, 16, 2), 255);
  // Transparent composited over white; gray expanded to RGB.
  for (uint16_t v : ds.get(3).image.pixels) EXPECT_EQ(v, 255);
  Sample tall = ds.get(1);
  EXPECT_EQ(tall.image.at(5, 50, 0), tall.image.at(5, 50, 2));

  auto groups = ds.indices_by_bucket();
  ASSERT_EQ(groups.size(), ds.buckets().size());
  size_t total = 0;
  for (size_t b = 0; b < groups.size(); ++b)
    for (size_t i : groups[b]) {
      EXPECT_EQ(ds.item(i).bucket, b);
      ++total;
    }
  EXPECT_EQ(total, ds.size());

  FolderOptions o = f.options();
  o.bucketing = false;
  FolderDataset square(o);
  for (size_t i = 0; i < square.size(); ++i) {
    EXPECT_EQ(square.bucket_of(i), (Bucket{64, 64}));
    EXPECT_EQ(square.get(i).image.width, 64);
  }
}

TEST(Folder, BatchesShareABucketAndAreDeterministic) {
  Fixture f;
  for (int k = 0; k < 6; ++k)  // 6 more wide images -> 7 in bucket 104x32
    io::write_png(f.dir.file("w" + std::to_string(k) + ".png"), io::Image::blank(90 + k, 30, 3));
  FolderDataset ds(f.options());
  ASSERT_EQ(ds.size(), 10u);
  auto batches = ds.bucket_batches(3, 42);
  EXPECT_EQ(batches, ds.bucket_batches(3, 42));
  std::set<size_t> seen;
  for (const auto& batch : batches) {
    EXPECT_LE(batch.size(), 3u);
    for (size_t i : batch) {
      EXPECT_EQ(ds.bucket_of(i), ds.bucket_of(batch[0]));
      EXPECT_TRUE(seen.insert(i).second);
    }
  }
  EXPECT_EQ(seen.size(), ds.size());
  for (const auto& batch : ds.bucket_batches(3, 42, true)) EXPECT_EQ(batch.size(), 3u);
  EXPECT_EQ(ds.bucket_batches(3, 42, true).size(), 2u);  // 7 wide -> 2 full batches
}

TEST(Folder, CropsAreDeterministic) {
  Fixture f;
  FolderOptions o = f.options();
  FolderDataset centre(o);
  o.random_crop = true;
  o.seed = 1;
  FolderDataset r1(o), r1b(o);
  o.seed = 2;
  FolderDataset r2(o);
  bool moved = false, differs = false;
  for (size_t i = 0; i < centre.size(); ++i) {
    Sample a = r1.get(i);
    EXPECT_EQ(a.image.pixels, r1.get(i).image.pixels);
    EXPECT_EQ(a.image.pixels, r1b.get(i).image.pixels);
    EXPECT_EQ(a.meta["crop"], r1b.get(i).meta["crop"]);
    moved |= a.meta["crop"] != centre.get(i).meta["crop"];
    differs |= a.meta["crop"] != r2.get(i).meta["crop"];
    EXPECT_EQ(a.image.width, centre.bucket_of(i).width);
  }
  EXPECT_TRUE(moved);
  EXPECT_TRUE(differs);
  EXPECT_EQ(centre.get(0).image.pixels, FolderDataset(f.options()).get(0).image.pixels);
}

TEST(Folder, FlipRule) {
  Fixture f;
  FolderDataset ds(f.options());
  EXPECT_FALSE(ds.flip_allowed(ds.get(0)));  // "red on the left"
  EXPECT_TRUE(ds.flip_allowed(ds.get(1)));
  EXPECT_TRUE(FolderDataset::caption_mentions_side("Left-handed guitar"));
  EXPECT_TRUE(FolderDataset::caption_mentions_side("the rightmost tree"));
  EXPECT_FALSE(FolderDataset::caption_mentions_side("a bright light, leaves"));
  EXPECT_FALSE(FolderDataset::caption_mentions_side("copyright"));
  FolderOptions o = f.options();
  o.allow_flip = false;
  FolderDataset no_flip(o);
  EXPECT_FALSE(no_flip.flip_allowed(no_flip.get(1)));
}

}  // namespace
}  // namespace genvis::data
