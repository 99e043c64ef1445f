// The fashion-mnist dataset against Debian's dataset-fashion-mnist (skipped where it is not
// installed), and the IDX validation against corrupt copies.
#include "data/fashion_mnist.h"

#include "core/error.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cctype>
#include <functional>
#include <vector>
#include <filesystem>
#include <set>
#include <string>

namespace genvis::data {
namespace {

const std::string kDir = kDefaultFashionMnistDir;

bool package_present() {
  return std::filesystem::exists(kDir + "/train-images-idx3-ubyte.gz") &&
         std::filesystem::exists(kDir + "/t10k-labels-idx1-ubyte.gz");
}

#define REQUIRE_PACKAGE()                                                                 \
  if (!package_present())                                                                 \
  GTEST_SKIP() << "needs the Debian package dataset-fashion-mnist (" << kDir << ")"

// The whole decompressed file, read independently of the library.
std::string gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  std::string out;
  char buf[1 << 16];
  for (int n; (n = gzread(f, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

std::string be32(uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

// A small valid plain (uncompressed) IDX pair of n images in `dir` under the train-* names.
void write_pair(const std::string& dir, uint32_t n_images, uint32_t n_labels, uint8_t label = 3,
                uint32_t magic = 2051, size_t pixel_bytes = SIZE_MAX) {
  std::string images = be32(magic) + be32(n_images) + be32(28) + be32(28);
  images += std::string(pixel_bytes == SIZE_MAX ? size_t(n_images) * 784 : pixel_bytes, char(7));
  test::write_bytes(dir + "/train-images-idx3-ubyte.gz", images);
  std::string labels = be32(2049) + be32(n_labels) + std::string(n_labels, char(label));
  test::write_bytes(dir + "/train-labels-idx1-ubyte.gz", labels);
}

FashionMnistOptions in(const std::string& dir) {
  FashionMnistOptions o;
  o.dir = dir;
  return o;
}

// The LoadError message of constructing a dataset on `dir` ("" if it loads).
std::string load_error(const std::string& dir) {
  try {
    FashionMnistDataset ds(in(dir));
  } catch (const LoadError& e) {
    return e.what();
  }
  return "";
}

TEST(FashionMnist, SplitSizes) {
  REQUIRE_PACKAGE();
  FashionMnistOptions o;
  EXPECT_EQ(FashionMnistDataset(o).size(), 60000u);
  o.split = Split::HeldOut;
  EXPECT_EQ(FashionMnistDataset(o).size(), 10000u);
  o.split = Split::All;
  EXPECT_EQ(FashionMnistDataset(o).size(), 70000u);
}

TEST(FashionMnist, LabelsAndPixelsEqualTheRawFiles) {
  REQUIRE_PACKAGE();
  const std::string labels = gunzip(kDir + "/train-labels-idx1-ubyte.gz");
  const std::string images = gunzip(kDir + "/train-images-idx3-ubyte.gz");
  ASSERT_EQ(labels.size(), 8u + 60000u);
  ASSERT_EQ(images.size(), 16u + 60000u * 784u);
  // The well-known start of the training labels: ankle boot, t-shirt, t-shirt, dress, t-shirt.
  EXPECT_EQ(std::string(labels.data() + 8, 5), std::string("\x09\x00\x00\x03\x00", 5));

  FashionMnistDataset ds;
  for (size_t i : {size_t(0), size_t(1), size_t(2), size_t(3), size_t(4), size_t(12345), size_t(59999)}) {
    EXPECT_EQ(ds.label(i), static_cast<uint8_t>(labels[8 + i])) << i;
    Sample s = ds.get(i);
    EXPECT_EQ(s.meta["label"].get<int>(), static_cast<uint8_t>(labels[8 + i]));
    EXPECT_EQ(s.meta["source"], "train");
    ASSERT_EQ(s.image.width, 28);
    ASSERT_EQ(s.image.height, 28);
    ASSERT_EQ(s.image.channels, 3);
    for (int p = 0; p < 784; ++p)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(s.image.pixels[size_t(p) * 3 + c], static_cast<uint8_t>(images[16 + i * 784 + size_t(p)]))
            << "index " << i << " pixel " << p;
  }
  // Held-out is t10k, and All puts it after train.
  const std::string test_labels = gunzip(kDir + "/t10k-labels-idx1-ubyte.gz");
  FashionMnistOptions all;
  all.split = Split::All;
  FashionMnistDataset both(all);
  FashionMnistOptions held;
  held.split = Split::HeldOut;
  FashionMnistDataset t10k(held);
  for (size_t i : {size_t(0), size_t(9999)}) {
    EXPECT_EQ(t10k.label(i), static_cast<uint8_t>(test_labels[8 + i]));
    EXPECT_EQ(both.label(60000 + i), t10k.label(i));
    EXPECT_EQ(both.get(60000 + i).image.pixels, t10k.get(i).image.pixels);
    EXPECT_EQ(t10k.get(i).meta["source"], "t10k");
  }
  EXPECT_THROW(ds.get(60000), UsageError);
}

TEST(FashionMnist, CaptionsNameTheClassAndVary) {
  REQUIRE_PACKAGE();
  FashionMnistDataset ds;
  std::set<size_t> templates;
  for (size_t i = 0; i < 500; ++i) {
    Sample s = ds.get(i);
    const int label = s.meta["label"].get<int>();
    EXPECT_NE(s.caption.find(kFashionMnistCaptionNames[label]), std::string::npos) << s.caption;
    EXPECT_EQ(s.meta["class"], kFashionMnistClasses[label]);
    EXPECT_EQ(s.caption, ds.get(i).caption);  // deterministic
    templates.insert(s.meta["template"].get<size_t>());
  }
  EXPECT_EQ(templates.size(), kFashionMnistTemplates.size());
  EXPECT_EQ(FashionMnistDataset::caption_for(9, false, 0).find("an ankle boot") != std::string::npos, true);
  EXPECT_NE(FashionMnistDataset::caption_for(5, true, 7).find("a sandal"), std::string::npos);
}

TEST(FashionMnist, ResizeInvertAndColours) {
  REQUIRE_PACKAGE();
  FashionMnistOptions o;
  o.resolution = 64;
  FashionMnistDataset big(o);
  Sample s = big.get(0);
  EXPECT_EQ(s.image.width, 64);
  EXPECT_EQ(s.image.height, 64);
  // Corners stay background, and channels stay equal.
  EXPECT_EQ(s.image.at(0, 0, 0), 0);
  double sum = 0;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) {
      EXPECT_EQ(s.image.at(x, y, 0), s.image.at(x, y, 1));
      EXPECT_EQ(s.image.at(x, y, 1), s.image.at(x, y, 2));
      sum += s.image.at(x, y, 0);
    }
  // The mean brightness survives the resize (to within 2%).
  FashionMnistDataset small;
  Sample r = small.get(0);
  double raw_sum = 0;
  for (size_t p = 0; p < r.image.pixels.size(); p += 3) raw_sum += r.image.pixels[p];
  EXPECT_NEAR(sum / (64 * 64), raw_sum / 784, 0.02 * raw_sum / 784);

  FashionMnistOptions inv;
  inv.invert = true;
  Sample n = FashionMnistDataset(inv).get(0);
  for (size_t p = 0; p < n.image.pixels.size(); ++p) EXPECT_EQ(n.image.pixels[p], 255 - r.image.pixels[p]);

  FashionMnistOptions red;
  red.foreground = {255, 0, 0};
  Sample c = FashionMnistDataset(red).get(0);
  for (size_t p = 0; p < c.image.pixels.size(); p += 3) {
    EXPECT_EQ(c.image.pixels[p], r.image.pixels[p]);
    EXPECT_EQ(c.image.pixels[p + 1], 0);
  }
  o.resolution = 0;
  EXPECT_THROW(FashionMnistDataset{o}, UsageError);
}

TEST(FashionMnist, MissingPackageNamesIt) {
  test::TempDir dir;
  const std::string message = load_error(dir.file("nowhere"));
  EXPECT_NE(message.find("dataset-fashion-mnist"), std::string::npos) << message;
  EXPECT_NE(message.find("train-images-idx3-ubyte.gz"), std::string::npos) << message;
}

TEST(FashionMnist, ValidSmallCopyLoads) {
  test::TempDir dir;
  write_pair(dir.path(), 5, 5);
  FashionMnistDataset ds(in(dir.path()));
  EXPECT_EQ(ds.size(), 5u);
  EXPECT_EQ(ds.get(4).image.at(27, 27, 0), 7);
  EXPECT_EQ(ds.label(4), 3);
}

TEST(FashionMnist, CorruptCopiesAreRejectedWithTheReason) {
  struct Case {
    const char* name;
    std::function<void(const std::string&)> write;
    const char* file;   // which file the error names
    const char* words;  // what it says
  };
  const std::vector<Case> cases = {
      {"wrong magic", [](const std::string& d) { write_pair(d, 5, 5, 3, 2049); },
       "train-images", "bad IDX magic 2049 (expected 2051)"},
      {"truncated pixels", [](const std::string& d) { write_pair(d, 5, 5, 3, 2051, 4 * 784 + 100); },
       "train-images", "truncated: the header declares 3920 bytes of data, the file holds 3236"},
      {"trailing data", [](const std::string& d) { write_pair(d, 5, 5, 3, 2051, 6 * 784); },
       "train-images", "trailing data"},
      {"count mismatch", [](const std::string& d) { write_pair(d, 5, 4); },
       "train-labels", "holds 4 labels but"},
      {"label out of range", [](const std::string& d) { write_pair(d, 5, 5, 10); },
       "train-labels", "label 10 at index 0 is not a class"},
      {"short header", [](const std::string& d) {
         write_pair(d, 5, 5);
         test::write_bytes(d + "/train-images-idx3-ubyte.gz", be32(2051) + be32(5));
       },
       "train-images", "truncated IDX header: 8 of 16 bytes"},
      {"wrong image size", [](const std::string& d) {
         write_pair(d, 5, 5);
         test::write_bytes(d + "/train-images-idx3-ubyte.gz",
                           be32(2051) + be32(1) + be32(32) + be32(32) + std::string(1024, 'x'));
       },
       "train-images", "images are 32x32 (expected 28x28)"},
      {"empty file", [](const std::string& d) {
         write_pair(d, 5, 5);
         test::write_bytes(d + "/train-labels-idx1-ubyte.gz", "");
       },
       "train-labels", "truncated IDX header: 0 of 8 bytes"},
  };
  for (const Case& c : cases) {
    test::TempDir dir;
    c.write(dir.path());
    const std::string message = load_error(dir.path());
    EXPECT_NE(message.find(dir.path() + "/" + c.file), std::string::npos) << c.name << ": " << message;
    EXPECT_NE(message.find(c.words), std::string::npos) << c.name << ": " << message;
  }
}

TEST(FashionMnist, TruncatedAndCorruptGzipAreRejected) {
  REQUIRE_PACKAGE();
  const std::string gz = test::read_bytes(kDir + "/t10k-labels-idx1-ubyte.gz");
  ASSERT_GT(gz.size(), 1000u);
  {
    test::TempDir dir;
    test::write_bytes(dir.file("train-images-idx3-ubyte.gz"), test::read_bytes(kDir + "/t10k-images-idx3-ubyte.gz"));
    test::write_bytes(dir.file("train-labels-idx1-ubyte.gz"), gz.substr(0, gz.size() / 2));
    const std::string message = load_error(dir.path());
    EXPECT_NE(message.find(dir.file("train-labels-idx1-ubyte.gz")), std::string::npos) << message;
    EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  }
  {
    test::TempDir dir;
    std::string bad = gz;
    for (size_t i = 100; i < 200; ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5A);  // inside the deflate data
    test::write_bytes(dir.file("train-images-idx3-ubyte.gz"), test::read_bytes(kDir + "/t10k-images-idx3-ubyte.gz"));
    test::write_bytes(dir.file("train-labels-idx1-ubyte.gz"), bad);
    const std::string message = load_error(dir.path());
    EXPECT_NE(message.find(dir.file("train-labels-idx1-ubyte.gz")), std::string::npos) << message;
    EXPECT_FALSE(message.empty());
  }
  {  // the real t10k pair under train names loads: 10000
    test::TempDir dir;
    test::write_bytes(dir.file("train-images-idx3-ubyte.gz"), test::read_bytes(kDir + "/t10k-images-idx3-ubyte.gz"));
    test::write_bytes(dir.file("train-labels-idx1-ubyte.gz"), gz);
    EXPECT_EQ(FashionMnistDataset(in(dir.path())).size(), 10000u);
  }
}

}  // namespace
}  // namespace genvis::data
