#include "data/folder.h"

#include "core/error.h"
#include "core/log.h"
#include "core/text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace genvis::data {
namespace {

// Keys' cubic convolution kernel with a = -0.5 (PIL's BICUBIC), support [-2, 2].
double cubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

// Filter taps resampling the source interval [b0, b1) of n_in samples to n_out samples.
// Output o is centred at b0 + (o + 0.5) * scale; shrinking widens the kernel by the scale.
struct Taps {
  std::vector<int> first;
  std::vector<std::vector<float>> weight;  // normalised
};
Taps make_taps(int n_in, double b0, double b1, int n_out) {
  Taps t;
  const double scale = (b1 - b0) / n_out, fscale = std::max(1.0, scale), support = 2.0 * fscale;
  for (int o = 0; o < n_out; ++o) {
    const double centre = b0 + (o + 0.5) * scale;
    int lo = std::max(0, static_cast<int>(std::floor(centre - support + 0.5)));
    int hi = std::min(n_in, static_cast<int>(std::floor(centre + support + 0.5)));
    std::vector<float> w;
    double sum = 0;
    for (int k = lo; k < hi; ++k) {
      double v = cubic((k + 0.5 - centre) / fscale);
      w.push_back(static_cast<float>(v));
      sum += v;
    }
    if (w.empty() || sum == 0) {  // degenerate box: nearest sample
      lo = std::clamp(static_cast<int>(std::floor(centre)), 0, n_in - 1);
      w.assign(1, 1.0f);
      sum = 1;
    }
    for (float& v : w) v = static_cast<float>(v / sum);
    t.first.push_back(lo);
    t.weight.push_back(std::move(w));
  }
  return t;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double uniform01(uint64_t& state) { return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53; }

// 8-bit RGB: alpha composited over white, gray replicated.
io::Image to_rgb8(const io::Image& decoded) {
  io::Image img = decoded.to_8bit();
  if (img.has_alpha()) {
    const int a_channel = img.channels - 1;
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x) {
        const int a = img.at(x, y, a_channel);
        for (int c = 0; c < a_channel; ++c)
          img.at(x, y, c) = static_cast<uint16_t>((img.at(x, y, c) * a + 255 * (255 - a) + 127) / 255);
      }
  }
  return img.with_channels(3);
}

// Caption per the rule in folder.h; `from_file` tells whether a caption file supplied it.
// Throws LoadError if the caption file exists but cannot be read.
std::string read_caption(const fs::path& image, const FolderOptions& options, bool& from_file) {
  fs::path txt = image;
  txt.replace_extension(options.caption_extension);
  from_file = false;
  std::error_code ec;
  if (fs::exists(txt, ec)) {
    std::ifstream in(txt, std::ios::binary);
    if (!in) throw LoadError(txt.string(), "cannot read the caption file");
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw LoadError(txt.string(), "cannot read the caption file");
    std::string text = trim(ss.str());
    if (!text.empty()) {
      from_file = true;
      return text;
    }
  }
  if (!options.default_caption.empty()) return options.default_caption;
  std::string stem = image.stem().string();
  std::replace(stem.begin(), stem.end(), '_', ' ');
  return trim(stem);
}

}  // namespace

io::Image resize_image(const io::Image& image, int width, int height) {
  return resize_image(image, width, height, 0, 0, image.width, image.height);
}

io::Image resize_image(const io::Image& image, int width, int height, double x0, double y0,
                       double x1, double y1) {
  if (width < 1 || height < 1 || width > 65535 || height > 65535)
    throw UsageError("resize_image: bad output size " + std::to_string(width) + "x" + std::to_string(height));
  if (image.empty() || image.bit_depth != 8)
    throw UsageError("resize_image: expects a non-empty 8-bit image");
  if (!(x0 >= 0 && y0 >= 0 && x1 <= image.width && y1 <= image.height && x0 < x1 && y0 < y1))
    throw UsageError("resize_image: box outside the image");
  if (width == image.width && height == image.height && x0 == 0 && y0 == 0 &&
      x1 == image.width && y1 == image.height)
    return image;
  const int ch = image.channels;
  const Taps tx = make_taps(image.width, x0, x1, width);
  const Taps ty = make_taps(image.height, y0, y1, height);
  // Rows that the vertical pass reads.
  const int row0 = ty.first.front();
  const int row1 = ty.first.back() + static_cast<int>(ty.weight.back().size());
  // 1. Horizontal: (row1 - row0) rows x width columns x channels.
  std::vector<float> rows(static_cast<size_t>(row1 - row0) * width * ch, 0.0f);
  for (int y = row0; y < row1; ++y)
    for (int o = 0; o < width; ++o) {
      float* out = &rows[(static_cast<size_t>(y - row0) * width + o) * ch];
      for (size_t k = 0; k < tx.weight[o].size(); ++k) {
        const uint16_t* in = &image.pixels[image.index(tx.first[o] + static_cast<int>(k), y, 0)];
        for (int c = 0; c < ch; ++c) out[c] += tx.weight[o][k] * in[c];
      }
    }
  // 2. Vertical, rounded and clamped to 0..255.
  io::Image out = io::Image::blank(width, height, ch);
  std::vector<float> acc(static_cast<size_t>(ch));
  for (int o = 0; o < height; ++o)
    for (int x = 0; x < width; ++x) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (size_t k = 0; k < ty.weight[o].size(); ++k) {
        const float* in = &rows[(static_cast<size_t>(ty.first[o] + k - row0) * width + x) * ch];
        for (int c = 0; c < ch; ++c) acc[c] += ty.weight[o][k] * in[c];
      }
      for (int c = 0; c < ch; ++c)
        out.at(x, o, c) = static_cast<uint16_t>(std::clamp(std::lround(acc[c]), 0l, 255l));
    }
  return out;
}

std::vector<Bucket> make_buckets(int resolution, int step, int min_side, int max_side) {
  if (step < 1 || resolution < step || resolution % step != 0 || resolution > 16384)
    throw UsageError("buckets: resolution (" + std::to_string(resolution) +
                     ") must be a positive multiple of the step (" + std::to_string(step) + ")");
  if (min_side == 0) min_side = std::max(step, resolution / 2 / step * step);
  if (max_side == 0) max_side = resolution * 2 / step * step;
  if (min_side < 1 || min_side > resolution || max_side < resolution)
    throw UsageError("buckets: need min_side <= resolution <= max_side, got " + std::to_string(min_side) +
                     ", " + std::to_string(resolution) + ", " + std::to_string(max_side));
  const long long area = static_cast<long long>(resolution) * resolution;
  std::vector<Bucket> buckets = {{resolution, resolution}};
  for (int w = min_side; w <= max_side; w += step) {
    const int h = static_cast<int>(std::min<long long>(max_side, area / w / step * step));
    if (h < min_side) continue;
    buckets.push_back({w, h});
    buckets.push_back({h, w});
  }
  std::sort(buckets.begin(), buckets.end(), [](const Bucket& a, const Bucket& b) {
    // a.w / a.h < b.w / b.h, exactly; then the larger area first.
    const long long l = static_cast<long long>(a.width) * b.height, r = static_cast<long long>(b.width) * a.height;
    return l != r ? l < r : a.width > b.width;
  });
  // Keep one bucket per aspect ratio, the largest (e.g. 32x64 and 64x128 capped differently).
  std::vector<Bucket> unique;
  for (const Bucket& b : buckets)
    if (unique.empty() || static_cast<long long>(unique.back().width) * b.height !=
                              static_cast<long long>(b.width) * unique.back().height)
      unique.push_back(b);
  return unique;
}

size_t nearest_bucket(const std::vector<Bucket>& buckets, int width, int height) {
  if (buckets.empty() || width < 1 || height < 1) throw UsageError("nearest_bucket: no buckets or empty image");
  const double target = std::log(static_cast<double>(width) / height);
  size_t best = 0;
  double best_distance = INFINITY;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const double d = std::abs(std::log(buckets[i].aspect()) - target);
    if (d < best_distance - 1e-12) best = i, best_distance = d;
  }
  return best;
}

FolderDataset::FolderDataset(FolderOptions options) : options_(std::move(options)) {
  if (options_.resolution < 1) throw UsageError("folder: resolution must be positive");
  buckets_ = options_.bucketing
                 ? make_buckets(options_.resolution, options_.bucket_step, options_.min_side, options_.max_side)
                 : std::vector<Bucket>{{options_.resolution, options_.resolution}};
  std::error_code ec;
  if (!fs::is_directory(options_.path, ec)) throw LoadError(options_.path, "not a folder");

  // 1. Scan: .png files, hidden names skipped, sorted by relative path.
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(options_.path, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) throw LoadError(options_.path, "cannot list the folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) {
      skipped_.push_back({"", "cannot list: " + ec.message()});
      log_warn("folder: " + options_.path + ": cannot list: " + ec.message());
      break;
    }
    const fs::path& p = it->path();
    if (p.filename().string().rfind('.', 0) == 0) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && ascii_lower(p.extension().string()) == ".png")
      files.push_back(fs::relative(p, options_.path, ec).generic_string());
  }
  std::sort(files.begin(), files.end());

  // 2. Decode every image once (in parallel) to validate it and learn its size.
  struct Probe {
    FolderItem item;
    std::string error;
  };
  std::vector<Probe> probes(files.size());
  auto probe = [&](size_t i) {
    Probe& p = probes[i];
    p.item.path = files[i];
    try {
      const fs::path full = fs::path(options_.path) / files[i];
      io::Image img = io::read_png(full.string());
      p.item.width = img.width;
      p.item.height = img.height;
      p.item.caption = read_caption(full, options_, p.item.caption_file);
    } catch (const std::exception& e) {
      p.error = e.what();
    }
  };
  const size_t n_threads = std::min<size_t>({8, std::max(1u, std::thread::hardware_concurrency()), files.size()});
  std::vector<std::thread> workers;
  for (size_t t = 0; t < n_threads; ++t)
    workers.emplace_back([&, t] {
      for (size_t i = t; i < files.size(); i += n_threads) probe(i);
    });
  for (std::thread& w : workers) w.join();

  // 3. Keep the good ones (in order), count the rest.
  for (Probe& p : probes) {
    if (!p.error.empty()) {
      log_warn("folder: skipping " + p.item.path + ": " + p.error);
      skipped_.push_back({p.item.path, p.error});
      continue;
    }
    p.item.bucket = nearest_bucket(buckets_, p.item.width, p.item.height);
    items_.push_back(std::move(p.item));
  }
}

const FolderItem& FolderDataset::item(size_t index) const {
  if (index >= items_.size())
    throw UsageError("folder: index " + std::to_string(index) + " out of range (size " +
                     std::to_string(items_.size()) + ")");
  return items_[index];
}

Sample FolderDataset::get(size_t index) const {
  const FolderItem& it = item(index);
  const Bucket& b = buckets_[it.bucket];
  io::Image img = to_rgb8(io::read_png((fs::path(options_.path) / it.path).string()));
  // Cover: scale so the image is at least the bucket on both sides, then crop the bucket.
  const double scale = std::max(static_cast<double>(b.width) / img.width,
                                static_cast<double>(b.height) / img.height);
  const double cw = std::min<double>(img.width, b.width / scale);
  const double ch = std::min<double>(img.height, b.height / scale);
  double x0 = (img.width - cw) / 2, y0 = (img.height - ch) / 2;
  if (options_.random_crop) {
    uint64_t state = options_.seed ^ (0xD1B54A32D192ED03ull * (index + 1));
    x0 = uniform01(state) * (img.width - cw);
    y0 = uniform01(state) * (img.height - ch);
  }
  Sample s;
  s.image = resize_image(img, b.width, b.height, x0, y0, x0 + cw, y0 + ch);
  s.caption = it.caption;
  s.meta = {{"dataset", "folder"},
            {"path", it.path},
            {"width", it.width},
            {"height", it.height},
            {"bucket", {b.width, b.height}},
            {"crop", {x0, y0, cw, ch}},
            {"caption_file", it.caption_file}};
  return s;
}

bool FolderDataset::caption_mentions_side(const std::string& caption) {
  const std::string text = ascii_lower(caption);
  for (const char* word : {"left", "right"})
    for (size_t pos = text.find(word); pos != std::string::npos; pos = text.find(word, pos + 1))
      if (pos == 0 || !std::isalpha(static_cast<unsigned char>(text[pos - 1]))) return true;
  return false;
}

bool FolderDataset::flip_allowed(const Sample& sample) const {
  return options_.allow_flip && !caption_mentions_side(sample.caption);
}

std::vector<std::vector<size_t>> FolderDataset::indices_by_bucket() const {
  std::vector<std::vector<size_t>> groups(buckets_.size());
  for (size_t i = 0; i < items_.size(); ++i) groups[items_[i].bucket].push_back(i);
  return groups;
}

std::vector<std::vector<size_t>> FolderDataset::bucket_batches(size_t batch_size, uint64_t seed,
                                                               bool drop_last) const {
  if (batch_size == 0) throw UsageError("folder: batch_size must be positive");
  uint64_t state = seed;
  auto shuffle = [&](auto& v) {  // Fisher-Yates on splitmix64: identical on every platform
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[splitmix64(state) % i]);
  };
  std::vector<std::vector<size_t>> batches;
  for (std::vector<size_t>& group : indices_by_bucket()) {
    shuffle(group);
    for (size_t b = 0; b < group.size(); b += batch_size) {
      const size_t e = std::min(group.size(), b + batch_size);
      if (drop_last && e - b < batch_size) break;
      batches.emplace_back(group.begin() + static_cast<long>(b), group.begin() + static_cast<long>(e));
    }
  }
  shuffle(batches);
  return batches;
}

}  // namespace genvis::data
