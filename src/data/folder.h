// The `folder` dataset: a user's directory of PNG images with same-named .txt captions (the
// kohya-ss / DreamBooth convention), bucketed by aspect ratio.
//
//   genvis::data::FolderOptions options;
//   options.path = "my_pics";                          // my_pics/cat_01.png + my_pics/cat_01.txt
//   options.resolution = 512;                          // buckets hold <= 512*512 pixels
//   genvis::data::FolderDataset ds(options);           // LoadError if the folder is missing
//   ds.skipped();                                      // unreadable files: path + reason
//   genvis::data::Sample s = ds.get(0);                // resized + cropped to ds.bucket_of(0)
//   for (auto& batch : ds.indices_by_bucket()) ...     // same-size images batch together
//
// Scan. Every regular file under `path` (recursively, following no symlinked directories)
// whose extension is .png (any case); names starting with '.' (files or folders) are ignored.
// Order: by path relative to `path`, compared bytewise: the same on every machine. JPEG and
// other formats are not read (they are not listed and not counted).
//
// Validation. Every image is decoded once in the constructor (in parallel). A file that cannot
// be read or decoded, or whose caption file cannot be read, is left out with a log_warn line
// and recorded in skipped() with its path and the reason; it never throws.
//
// Caption. The text of <stem><caption_extension> next to the image, trimmed; when that file is
// missing or blank: `default_caption`, or if that is empty the file stem with '_' as spaces
// ("red_car_2.png" -> "red car 2"). Caption files without an image are ignored.
//
// Buckets (kohya-ss make_bucket_resolutions, with sides from min_side to max_side): for each
// width w = min_side, min_side + step, ..., max_side, the height h = floor(area / w / step) * step
// capped at max_side; (w, h) and (h, w) are buckets when h >= min_side, plus the square
// (resolution, resolution). area = resolution^2; min_side defaults to resolution / 2 and
// max_side to resolution * 2 (both rounded down to a multiple of step). Sorted by aspect ratio
// w / h, ascending. An image goes to the bucket nearest in log aspect ratio (ties: the earlier
// bucket). With bucketing off, every image goes to the one square bucket.
//
// get(i). The image (alpha composited over white, gray expanded to RGB) is scaled by
// max(bw / w, bh / h) so that it covers its bucket (bw, bh), cropped to the bucket (centred, or
// at a uniform random offset seeded by (seed, i) with random_crop), resampled bicubic (resize_image).
// meta: {"dataset": "folder", "path": relative path, "width", "height" (source), "bucket": [bw, bh],
//        "crop": [x, y, w, h] (source pixels, fractional), "caption_file": true | false}.
//
// flip_allowed: false when flips are disabled, or when the caption contains a word starting with
// "left" or "right" (any case; "bright" does not count, "left-handed" and "rightmost" do).
#pragma once
#include "data/dataset.h"

#include <cstdint>
#include <string>
#include <vector>

namespace genvis::data {

// Resamples (a region of) an 8-bit image to width x height with a separable bicubic filter
// (Keys, a = -0.5, PIL's BICUBIC) whose support widens when shrinking (antialiasing). The
// source region is the box [x0, x1) x [y0, y1) in pixel units (fractional allowed); by default
// the whole image. Same size and whole box: the image is returned unchanged.
io::Image resize_image(const io::Image& image, int width, int height);
io::Image resize_image(const io::Image& image, int width, int height, double x0, double y0,
                       double x1, double y1);

struct Bucket {
  int width = 0, height = 0;
  double aspect() const { return static_cast<double>(width) / height; }
  bool operator==(const Bucket&) const = default;
};

// The bucket list described above. UsageError unless step >= 1, resolution is a positive
// multiple of step and min_side <= resolution <= max_side.
std::vector<Bucket> make_buckets(int resolution, int step, int min_side = 0, int max_side = 0);
// Index of the bucket nearest to width / height in log aspect ratio (ties: the lower index).
size_t nearest_bucket(const std::vector<Bucket>& buckets, int width, int height);

struct FolderOptions {
  std::string path;                       // the folder (required)
  int resolution = 512;                   // bucket area is resolution^2
  int bucket_step = 64;                   // bucket sides are multiples of this (8 for small sizes)
  int min_side = 0, max_side = 0;         // 0: resolution / 2 and resolution * 2
  bool bucketing = true;                  // false: one square resolution x resolution bucket
  std::string caption_extension = ".txt";
  std::string default_caption;            // empty: the file stem, '_' as spaces
  bool random_crop = false;               // false: centre crop
  uint64_t seed = 0;                      // random_crop offsets are a function of (seed, index)
  bool allow_flip = true;                 // false: flip_allowed() is always false
};

struct FolderItem {
  std::string path;          // relative to options.path, '/' separated
  std::string caption;
  bool caption_file = false; // the caption came from a caption file
  int width = 0, height = 0; // source size
  size_t bucket = 0;         // index into buckets()
};

struct SkippedFile {
  std::string path;    // relative to options.path
  std::string reason;  // the LoadError / filesystem message
};

class FolderDataset : public Dataset {
public:
  explicit FolderDataset(FolderOptions options);

  std::string name() const override { return "folder"; }
  size_t size() const override { return items_.size(); }
  // Thread-safe; UsageError for index >= size(); LoadError if the file changed and no longer
  // decodes.
  Sample get(size_t index) const override;
  bool flip_allowed(const Sample& sample) const override;

  const FolderOptions& options() const { return options_; }
  const FolderItem& item(size_t index) const;
  const std::vector<SkippedFile>& skipped() const { return skipped_; }
  const std::vector<Bucket>& buckets() const { return buckets_; }
  const Bucket& bucket_of(size_t index) const { return buckets_[item(index).bucket]; }
  // For every bucket (same order as buckets()), the indices assigned to it, ascending; empty
  // buckets give empty lists.
  std::vector<std::vector<size_t>> indices_by_bucket() const;
  // Batches of at most batch_size indices that share a bucket: indices shuffled within each
  // bucket and batches shuffled, both by `seed` (same seed, same batches). drop_last drops each
  // bucket's final short batch.
  std::vector<std::vector<size_t>> bucket_batches(size_t batch_size, uint64_t seed,
                                                  bool drop_last = false) const;

  // The flip rule above, on a caption.
  static bool caption_mentions_side(const std::string& caption);

private:
  FolderOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<FolderItem> items_;
  std::vector<SkippedFile> skipped_;
};

}  // namespace genvis::data
