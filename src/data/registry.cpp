#include "data/registry.h"

#include "core/error.h"
#include "data/emoji.h"
#include "data/fashion_mnist.h"
#include "data/folder.h"
#include "data/shapes.h"

namespace genvis::data {

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"emoji", "shapes", "fashion-mnist", "folder"};
  return names;
}

std::shared_ptr<const Dataset> make_dataset(const DatasetSpec& spec) {
  if (spec.name == "emoji") {
    EmojiOptions o;
    o.resolution = spec.resolution;
    o.split = spec.split;
    return std::make_shared<EmojiDataset>(o);
  }
  if (spec.name == "shapes") {
    ShapesOptions o;
    o.resolution = spec.resolution;
    o.split = spec.split;
    o.seed = spec.seed;
    if (spec.size > 0) o.size = spec.size;
    return std::make_shared<ShapesDataset>(o);
  }
  if (spec.name == "fashion-mnist") {
    FashionMnistOptions o;
    o.resolution = spec.resolution;
    o.split = spec.split;
    return std::make_shared<FashionMnistDataset>(o);
  }
  if (spec.name == "folder") {
    if (spec.path.empty()) throw UsageError("dataset 'folder' needs a path (--path DIR)");
    FolderOptions o;
    o.path = spec.path;
    o.resolution = spec.resolution;
    o.seed = spec.seed;
    if (spec.resolution < 256) o.bucket_step = 8;
    return std::make_shared<FolderDataset>(o);
  }
  std::string known;
  for (const auto& n : dataset_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("unknown dataset '" + spec.name + "' (known: " + known + ")");
}

}  // namespace genvis::data
