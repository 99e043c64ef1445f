#include "data/registry.h"

#include "core/error.h"
#include "data/emoji.h"
#include "data/emoji_video.h"
#include "data/fashion_mnist.h"
#include "data/folder.h"
#include "data/shapes.h"

#include <algorithm>
#include <mutex>

namespace genvis::data {
namespace {

std::shared_ptr<const Dataset> make_emoji(const DatasetSpec& spec) {
  EmojiOptions o;
  o.resolution = spec.resolution;
  o.split = spec.split;
  return std::make_shared<EmojiDataset>(o);
}

std::shared_ptr<const Dataset> make_shapes(const DatasetSpec& spec) {
  ShapesOptions o;
  o.resolution = spec.resolution;
  o.split = spec.split;
  o.seed = spec.seed;
  if (spec.size > 0) o.size = spec.size;
  return std::make_shared<ShapesDataset>(o);
}

std::shared_ptr<const Dataset> make_fashion_mnist(const DatasetSpec& spec) {
  FashionMnistOptions o;
  o.resolution = spec.resolution;
  o.split = spec.split;
  return std::make_shared<FashionMnistDataset>(o);
}

std::shared_ptr<const Dataset> make_folder(const DatasetSpec& spec) {
  if (spec.path.empty()) throw UsageError("dataset 'folder' needs a path (--path DIR)");
  FolderOptions o;
  o.path = spec.path;
  o.resolution = spec.resolution;
  o.seed = spec.seed;
  if (spec.resolution < 256) o.bucket_step = 8;
  return std::make_shared<FolderDataset>(o);
}

int frames_of(const DatasetSpec& spec, int native) { return spec.num_frames > 0 ? spec.num_frames : native; }

std::shared_ptr<const VideoDataset> make_shapes_video(const DatasetSpec& spec) {
  ShapesVideoOptions o;
  o.resolution = spec.resolution;
  o.num_frames = frames_of(spec, o.num_frames);
  o.split = spec.split;
  o.seed = spec.seed;
  if (spec.size > 0) o.size = spec.size;
  return std::make_shared<ShapesVideo>(o);
}

std::shared_ptr<const VideoDataset> make_emoji_video(const DatasetSpec& spec) {
  EmojiVideoOptions o;
  o.resolution = spec.resolution;
  o.num_frames = frames_of(spec, o.num_frames);
  o.split = spec.split;
  o.seed = spec.seed;
  if (spec.size > 0) o.size = spec.size;
  return std::make_shared<EmojiVideo>(o);
}

struct Table {
  std::mutex mutex;
  std::vector<DatasetEntry> entries = {
      {"emoji", "Noto Color Emoji glyphs captioned with their CLDR names", make_emoji, EmojiOptions{}.resolution},
      {"shapes", "procedural scenes of 1-3 coloured shapes with relational captions", make_shapes,
       ShapesOptions{}.resolution},
      {"fashion-mnist", "Fashion-MNIST images captioned with their class names", make_fashion_mnist,
       FashionMnistOptions{}.resolution},
      // Photos have no native size: 64, DatasetSpec's default.
      {"folder", "PNG images (--path DIR) with same-named .txt captions, in aspect-ratio buckets", make_folder},
      {"shapes-video", "clips of one shape moving, rotating, changing colour or size, captioned with the motion",
       nullptr, ShapesVideoOptions{}.resolution, make_shapes_video, ShapesVideoOptions{}.num_frames},
      {"emoji-video", "clips of one emoji moving, zooming, rotating or alternating with a related one", nullptr,
       EmojiVideoOptions{}.resolution, make_emoji_video, EmojiVideoOptions{}.num_frames},
  };
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

std::vector<DatasetEntry> datasets() {
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  return t.entries;
}

std::vector<std::string> dataset_names() {
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  std::vector<std::string> names;
  for (const auto& e : t.entries) names.push_back(e.name);
  return names;
}

void register_dataset(DatasetEntry entry) {
  if (entry.name.empty()) throw UsageError("register_dataset: the dataset needs a name");
  if (!entry.make == !entry.make_video)
    throw UsageError("register_dataset: dataset '" + entry.name + "' needs exactly one factory (make or make_video)");
  if (entry.make_video && entry.native_frames < 1)
    throw UsageError("register_dataset: video dataset '" + entry.name + "' needs native_frames >= 1");
  if (entry.native_resolution < 1)
    throw UsageError("register_dataset: dataset '" + entry.name + "' needs a native_resolution >= 1");
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  if (std::any_of(t.entries.begin(), t.entries.end(), [&](const DatasetEntry& e) { return e.name == entry.name; }))
    throw UsageError("dataset '" + entry.name + "' is already registered");
  t.entries.push_back(std::move(entry));
}

namespace {

// The entry named `name`; UsageError naming the known datasets when there is none.
DatasetEntry find_entry(const std::string& name) {
  {
    Table& t = table();
    const std::lock_guard lock(t.mutex);
    const auto it = std::find_if(t.entries.begin(), t.entries.end(), [&](const DatasetEntry& e) { return e.name == name; });
    if (it != t.entries.end()) return *it;
  }
  std::string known;
  for (const auto& n : dataset_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("unknown dataset '" + name + "' (known: " + known + ")");
}

}  // namespace

int native_resolution(const std::string& name) { return find_entry(name).native_resolution; }

std::shared_ptr<const Dataset> make_dataset(const DatasetSpec& spec) {
  const DatasetEntry e = find_entry(spec.name);
  if (e.is_video()) throw UsageError("dataset '" + spec.name + "' is a video dataset (clips, not images)");
  return e.make(spec);  // outside the lock: building a dataset can take a while
}

std::shared_ptr<const VideoDataset> make_video_dataset(const DatasetSpec& spec) {
  const DatasetEntry e = find_entry(spec.name);
  if (!e.is_video()) throw UsageError("dataset '" + spec.name + "' is an image dataset, not a video one");
  return e.make_video(spec);
}

bool is_video_dataset(const std::string& name) { return find_entry(name).is_video(); }

}  // namespace genvis::data
