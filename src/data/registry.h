// Datasets by name, for the CLI and training configs: one table of {name, description, factory}.
//
//   auto ds = genvis::data::make_dataset({.name = "emoji", .resolution = 64});
//   auto mine = genvis::data::make_dataset({.name = "folder", .path = "photos/", .resolution = 512});
//   auto clips = genvis::data::make_video_dataset({.name = "shapes-video", .resolution = 32, .num_frames = 9});
//
//   // A program (or test) adds its own; it is then found by name like the built-in ones.
//   genvis::data::register_dataset({"stripes", "vertical stripes, captioned by colour",
//                                   [](const genvis::data::DatasetSpec& s) { return make_stripes(s); }});
#pragma once
#include "data/dataset.h"
#include "data/video_dataset.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace genvis::data {

struct DatasetSpec {
  std::string name;          // emoji, shapes, fashion-mnist, folder, shapes-video, emoji-video, or a registered name
  int resolution = 64;       // the dataset's native rendering size (folder: bucket area side)
  int num_frames = 0;        // video datasets: frames per clip (0 = the entry's native_frames)
  Split split = Split::Train;
  uint64_t seed = 0;         // shapes: scene stream; folder: random-crop offsets
  size_t size = 0;           // shapes: number of scenes (0 = 10000)
  std::string path;          // folder: the directory
};

struct DatasetEntry {
  std::string name;         // what DatasetSpec::name selects
  std::string description;  // one line, for listings
  // Builds the dataset; reads the spec fields it uses and throws UsageError for a bad spec.
  std::function<std::shared_ptr<const Dataset>(const DatasetSpec&)> make;
  // The size the dataset renders at when nobody asks for one (fashion-mnist: 28).
  int native_resolution = 64;
  // A video dataset has this factory instead of `make` (exactly one of the two is set).
  std::function<std::shared_ptr<const VideoDataset>(const DatasetSpec&)> make_video = {};
  int native_frames = 0;  // video: frames per clip when the spec says 0
  bool is_video() const { return static_cast<bool>(make_video); }
};

// The table: the built-in datasets (emoji, shapes, fashion-mnist, folder, shapes-video,
// emoji-video), then registered ones in registration order.
std::vector<DatasetEntry> datasets();
// The table's names, in its order.
std::vector<std::string> dataset_names();

// Adds an entry at the end of the table. UsageError for an empty name, a missing factory or a
// name already in the table. Thread-safe.
void register_dataset(DatasetEntry entry);

// The entry's native_resolution; UsageError naming the known datasets for an unknown name.
int native_resolution(const std::string& name);

// UsageError naming the known datasets for an unknown name, or for a missing folder path; a
// video dataset's name is refused by make_dataset and an image dataset's by make_video_dataset.
std::shared_ptr<const Dataset> make_dataset(const DatasetSpec& spec);
std::shared_ptr<const VideoDataset> make_video_dataset(const DatasetSpec& spec);
// Whether `name` is a video dataset (UsageError for an unknown name).
bool is_video_dataset(const std::string& name);

}  // namespace genvis::data
