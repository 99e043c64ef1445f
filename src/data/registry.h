// Datasets by name, for the CLI and training configs.
//
//   auto ds = genvis::data::make_dataset({.name = "emoji", .resolution = 64});
//   auto mine = genvis::data::make_dataset({.name = "folder", .path = "photos/", .resolution = 512});
#pragma once
#include "data/dataset.h"

#include <memory>
#include <string>
#include <vector>

namespace genvis::data {

struct DatasetSpec {
  std::string name;          // emoji, shapes, fashion-mnist, folder
  int resolution = 64;       // the dataset's native rendering size (folder: bucket area side)
  Split split = Split::Train;
  uint64_t seed = 0;         // shapes: scene stream; folder: random-crop offsets
  size_t size = 0;           // shapes: number of scenes (0 = 10000)
  std::string path;          // folder: the directory
};

// UsageError naming the known datasets for an unknown name, or for a missing folder path.
std::shared_ptr<const Dataset> make_dataset(const DatasetSpec& spec);
const std::vector<std::string>& dataset_names();

}  // namespace genvis::data
