#include "data/fashion_mnist.h"

#include "core/error.h"
#include "data/folder.h"
#include "data/splitmix.h"

#include <zlib.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <utility>

namespace genvis::data {
namespace {

constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned byte, 1 dimension
constexpr int kSide = 28;

uint32_t big_endian32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// gzip (or plain) file reader; every zlib failure is a LoadError naming the file.
class GzFile {
public:
  explicit GzFile(const std::string& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
      throw LoadError(path, std::string("Fashion-MNIST file not found: install the Debian package ") +
                                kFashionMnistPackage);
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) throw LoadError(path, "cannot open");
  }
  ~GzFile() {
    if (file_) gzclose(file_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads up to n bytes into out; returns how many (fewer only at the end of the data).
  size_t read(uint8_t* out, size_t n) {
    size_t done = 0;
    while (done < n) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      int got = gzread(file_, out + done, chunk);
      check();
      if (got <= 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

  // Throws when the bytes after the expected end exist, i.e. the file is longer than declared.
  void expect_end(size_t declared_bytes) {
    uint8_t extra;
    if (read(&extra, 1) != 0)
      throw LoadError(path_, "trailing data after the " + std::to_string(declared_bytes) +
                                 " bytes that the header declares");
  }

private:
  void check() {
    int err = Z_OK;
    const char* message = gzerror(file_, &err);
    if (err == Z_OK) return;
    if (err == Z_BUF_ERROR) throw LoadError(path_, "truncated gzip stream (unexpected end of file)");
    throw LoadError(path_, std::string("corrupt gzip stream: ") + (message ? message : "zlib error"));
  }

  std::string path_;
  gzFile file_ = nullptr;
};

// Reads the header and body of one IDX file: `header_words` 32-bit words, then `body` bytes
// computed from them by `body_size`.
template <typename BodySize>
std::vector<uint8_t> read_idx(const std::string& path, uint32_t magic, size_t header_words,
                              std::vector<uint32_t>& header, BodySize body_size) {
  GzFile file(path);
  std::vector<uint8_t> head(header_words * 4);
  size_t got = file.read(head.data(), head.size());
  if (got < head.size())
    throw LoadError(path, "truncated IDX header: " + std::to_string(got) + " of " +
                              std::to_string(head.size()) + " bytes");
  header.clear();
  for (size_t w = 0; w < header_words; ++w) header.push_back(big_endian32(&head[w * 4]));
  if (header[0] != magic)
    throw LoadError(path, "bad IDX magic " + std::to_string(header[0]) + " (expected " +
                              std::to_string(magic) + ")");
  const size_t body = body_size(header);
  std::vector<uint8_t> data(body);
  got = file.read(data.data(), body);
  if (got < body)
    throw LoadError(path, "truncated: the header declares " + std::to_string(body) +
                              " bytes of data, the file holds " + std::to_string(got));
  file.expect_end(head.size() + body);
  return data;
}

bool starts_with_vowel(const char* s) {
  char c = s[0];
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

}  // namespace

IdxImages read_idx_pair(const std::string& images_path, const std::string& labels_path) {
  IdxImages out;
  out.images_path = images_path;
  out.labels_path = labels_path;
  std::vector<uint32_t> ih, lh;
  out.pixels = read_idx(images_path, kImagesMagic, 4, ih, [&](const std::vector<uint32_t>& h) {
    if (h[2] != kSide || h[3] != kSide)
      throw LoadError(images_path, "images are " + std::to_string(h[2]) + "x" + std::to_string(h[3]) +
                                       " (expected 28x28)");
    if (h[1] == 0) throw LoadError(images_path, "the header declares 0 images");
    return static_cast<size_t>(h[1]) * kSide * kSide;
  });
  out.rows = out.cols = kSide;
  out.labels = read_idx(labels_path, kLabelsMagic, 2, lh,
                        [](const std::vector<uint32_t>& h) { return static_cast<size_t>(h[1]); });
  if (lh[1] != ih[1])
    throw LoadError(labels_path, "holds " + std::to_string(lh[1]) + " labels but " + images_path +
                                     " holds " + std::to_string(ih[1]) + " images");
  for (size_t i = 0; i < out.labels.size(); ++i)
    if (out.labels[i] >= kFashionMnistClasses.size())
      throw LoadError(labels_path, "label " + std::to_string(out.labels[i]) + " at index " +
                                       std::to_string(i) + " is not a class (0..9)");
  return out;
}

std::shared_ptr<const IdxImages> load_idx_pair(const std::string& images_path,
                                               const std::string& labels_path) {
  static std::mutex mutex;
  static std::map<std::pair<std::string, std::string>, std::shared_ptr<const IdxImages>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_pair(images_path, labels_path);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  auto loaded = std::make_shared<const IdxImages>(read_idx_pair(images_path, labels_path));
  cache.emplace(key, loaded);
  return loaded;
}

FashionMnistDataset::FashionMnistDataset(FashionMnistOptions options) : options_(std::move(options)) {
  if (options_.resolution < 1 || options_.resolution > 1024)
    throw UsageError("fashion-mnist: resolution must be 1..1024, got " +
                     std::to_string(options_.resolution));
  auto load = [&](const char* prefix) {
    return load_idx_pair(options_.dir + "/" + prefix + "-images-idx3-ubyte.gz",
                         options_.dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  };
  if (options_.split != Split::HeldOut) train_ = load("train");
  if (options_.split != Split::Train) test_ = load("t10k");
}

size_t FashionMnistDataset::size() const {
  return (train_ ? train_->size() : 0) + (test_ ? test_->size() : 0);
}

std::pair<const IdxImages*, size_t> FashionMnistDataset::locate(size_t index) const {
  if (index >= size())
    throw UsageError("fashion-mnist: index " + std::to_string(index) + " out of range (size " +
                     std::to_string(size()) + ")");
  if (train_ && index < train_->size()) return {train_.get(), index};
  return {test_.get(), index - (train_ ? train_->size() : 0)};
}

int FashionMnistDataset::label(size_t index) const {
  auto [source, i] = locate(index);
  return source->labels[i];
}

std::string FashionMnistDataset::caption_for(int label, bool test_source, size_t source_index,
                                             size_t* template_out) {
  if (label < 0 || label >= static_cast<int>(kFashionMnistClasses.size()))
    throw UsageError("fashion-mnist: label " + std::to_string(label) + " is not a class (0..9)");
  const uint64_t h = mix64(((static_cast<uint64_t>(test_source) << 40) ^ source_index) + 0x9E3779B97F4A7C15ull);
  const size_t k = h % kFashionMnistTemplates.size();
  if (template_out) *template_out = k;
  const char* noun = kFashionMnistCaptionNames[label];
  const std::string phrase = std::string(starts_with_vowel(noun) ? "an " : "a ") + noun;
  std::string caption = kFashionMnistTemplates[k];
  caption.replace(caption.find("{}"), 2, phrase);
  return caption;
}

Sample FashionMnistDataset::get(size_t index) const {
  auto [source, i] = locate(index);
  const bool test_source = source == test_.get();
  const int label = source->labels[i];

  std::array<uint8_t, 3> bg = options_.background, fg = options_.foreground;
  if (options_.invert) std::swap(bg, fg);
  io::Image image = io::Image::blank(source->cols, source->rows, 3);
  const uint8_t* raw = &source->pixels[i * source->rows * source->cols];
  for (int p = 0; p < source->rows * source->cols; ++p)
    for (int c = 0; c < 3; ++c) {
      const int v = bg[c] * 255 + (fg[c] - bg[c]) * raw[p];  // exact when (bg, fg) = (0, 255)
      image.pixels[static_cast<size_t>(p) * 3 + c] = static_cast<uint16_t>((v + 127) / 255);
    }
  if (options_.resolution != source->cols)
    image = resize_image(image, options_.resolution, options_.resolution);

  Sample s;
  size_t template_index = 0;
  s.caption = caption_for(label, test_source, i, &template_index);
  s.image = std::move(image);
  s.meta = {{"dataset", "fashion-mnist"},
            {"source", test_source ? "t10k" : "train"},
            {"index", i},
            {"label", label},
            {"class", kFashionMnistClasses[label]},
            {"template", template_index}};
  return s;
}

}  // namespace genvis::data
