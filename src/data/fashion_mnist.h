// The `fashion-mnist` dataset: Zalando's 70,000 28x28 grayscale garment images in 10 classes,
// read from Debian's dataset-fashion-mnist, captioned from the class name.
//
//   genvis::data::FashionMnistOptions options;           // Split::Train, 28 px, white on black
//   options.resolution = 32;
//   genvis::data::FashionMnistDataset fm(options);       // LoadError if the package is missing
//   genvis::data::Sample s = fm.get(0);                  // "a photo of an ankle boot", 32x32 RGB
//   s.meta["label"];                                     // 9
//
// Source: /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
// (IDX format, gzip; a plain uncompressed file under the same name is read too).
// Split::Train is the 60,000 `train` images, Split::HeldOut the 10,000 `t10k` images,
// Split::All both (train first, then t10k).
//
// Validation. Magic 2051 (images) / 2049 (labels), 28x28 images, equal counts in the two files,
// exactly header + count * size bytes (no more, no less), labels 0..9, and an intact gzip stream.
// Anything else is a LoadError naming the file and what is wrong. Files are read once per
// process and shared.
//
// Image. The raw byte v (0 = background) becomes background + (foreground - background) * v/255
// on each RGB channel: by default white garments on black, 3 equal channels, exactly v at 28 px.
// `invert` swaps the two colours. Other resolutions are resampled with a bicubic (Keys, a = -0.5)
// filter, antialiased when shrinking (resize_image in folder.h).
//
// Caption. One of kFashionMnistTemplates, picked by a hash of (source file, index within it),
// filled with the class's caption name (kFashionMnistCaptionNames) and its article:
// "a photo of a sandal", "a grayscale picture of an ankle boot", "a pair of trousers".
// meta: {"dataset": "fashion-mnist", "source": "train" | "t10k", "index": i (within the source),
//        "label": 0..9, "class": "Ankle boot", "template": k}.
#pragma once
#include "data/dataset.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace genvis::data {

inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* kFashionMnistPackage = "dataset-fashion-mnist";

// The official class names, by label.
inline constexpr std::array<const char*, 10> kFashionMnistClasses = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
// The names as they appear in captions (with the article a/an chosen by the first letter).
inline constexpr std::array<const char*, 10> kFashionMnistCaptionNames = {
    "t-shirt", "pair of trousers", "pullover", "dress", "coat",
    "sandal",  "shirt",            "sneaker",  "bag",   "ankle boot"};
// "{}" is replaced by article + caption name ("a sandal", "an ankle boot").
inline constexpr std::array<const char*, 8> kFashionMnistTemplates = {
    "a photo of {}",          "a grayscale picture of {}", "{}",
    "a low-resolution photo of {}", "a product photo of {}", "an image of {}",
    "a small picture of {}",  "a centered photo of {}"};

struct FashionMnistOptions {
  Split split = Split::Train;  // Train: train-*, HeldOut: t10k-*, All: both
  int resolution = 28;         // output is resolution x resolution (1..1024)
  std::array<uint8_t, 3> background = {0, 0, 0};        // sRGB, where the raw byte is 0
  std::array<uint8_t, 3> foreground = {255, 255, 255};  // sRGB, where the raw byte is 255
  bool invert = false;         // swap background and foreground (dark garment on white)
  std::string dir = kDefaultFashionMnistDir;
};

// One validated pair of IDX files.
struct IdxImages {
  std::string images_path, labels_path;
  int rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major, 0 = background
  std::vector<uint8_t> labels;  // count, each 0..9
  size_t size() const { return labels.size(); }
};

// Reads and validates an images/labels pair (gzip or plain). LoadError naming the file and the
// fault; a missing file names the package dataset-fashion-mnist.
IdxImages read_idx_pair(const std::string& images_path, const std::string& labels_path);

// read_idx_pair, cached per path pair for the life of the process.
std::shared_ptr<const IdxImages> load_idx_pair(const std::string& images_path,
                                               const std::string& labels_path);

class FashionMnistDataset : public Dataset {
public:
  explicit FashionMnistDataset(FashionMnistOptions options = {});

  std::string name() const override { return "fashion-mnist"; }
  size_t size() const override;
  // Thread-safe; UsageError for index >= size().
  Sample get(size_t index) const override;
  // Garments stay garments in a mirror.
  bool flip_allowed(const Sample& sample) const override { return true; }

  const FashionMnistOptions& options() const { return options_; }
  int label(size_t index) const;  // 0..9, without decoding the image

  // The caption of (source, index within source); pure, so tests and tools can predict it.
  static std::string caption_for(int label, bool test_source, size_t source_index,
                                 size_t* template_out = nullptr);

private:
  // index -> (source, index within it)
  std::pair<const IdxImages*, size_t> locate(size_t index) const;

  FashionMnistOptions options_;
  std::shared_ptr<const IdxImages> train_, test_;  // null when the split does not use it
};

}  // namespace genvis::data
