// The dataset table: built-in names in order, unknown names listed, registration.
#include "core/error.h"
#include "data/emoji.h"
#include "data/fashion_mnist.h"
#include "data/registry.h"
#include "data/shapes.h"
#include "support/test_support.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace genvis::data {
namespace {

// `size` blank images captioned by index; the name records the spec it was made from.
class CountingDataset : public Dataset {
public:
  explicit CountingDataset(const DatasetSpec& spec) : spec_(spec) {}
  std::string name() const override { return spec_.name + "@" + std::to_string(spec_.resolution); }
  size_t size() const override { return spec_.size; }
  Sample get(size_t index) const override {
    if (index >= size()) throw UsageError("index out of range");
    Sample s;
    s.image = io::Image::blank(spec_.resolution, spec_.resolution, 3);
    s.caption = "sample " + std::to_string(index);
    s.meta = nlohmann::json::object();
    return s;
  }

private:
  DatasetSpec spec_;
};

std::string error_of(const DatasetSpec& spec) {
  try {
    make_dataset(spec);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(DatasetRegistry, BuiltInNamesInOrder) {
  const std::vector<std::string> builtin = {"emoji", "shapes", "fashion-mnist", "folder", "shapes-video", "emoji-video"};
  const auto names = dataset_names();
  ASSERT_GE(names.size(), builtin.size());
  // Registered datasets (the tests below add some) follow the built-in ones.
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + static_cast<long>(builtin.size())), builtin);
  const auto table = datasets();
  ASSERT_EQ(table.size(), names.size());
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(table[i].name, names[i]);
    EXPECT_FALSE(table[i].description.empty()) << table[i].name;
    const bool video = names[i].find("-video") != std::string::npos;
    EXPECT_EQ(static_cast<bool>(table[i].make), !video) << table[i].name;
    EXPECT_EQ(table[i].is_video(), video) << table[i].name;
  }
}

TEST(DatasetRegistry, UnknownNameListsTheKnownOnes) {
  const std::string message = error_of({.name = "mnist"});
  std::string known;
  for (const auto& n : dataset_names()) known += (known.empty() ? "" : ", ") + n;
  EXPECT_EQ(message, "unknown dataset 'mnist' (known: " + known + ")");
  EXPECT_NE(message.find("emoji, shapes, fashion-mnist, folder"), std::string::npos) << message;
}

TEST(DatasetRegistry, FolderNeedsAPath) {
  EXPECT_EQ(error_of({.name = "folder"}), "dataset 'folder' needs a path (--path DIR)");
}

TEST(DatasetRegistry, BuiltInShapesIsMadeFromTheSpec) {
  const auto ds = make_dataset({.name = "shapes", .resolution = 16, .seed = 3, .size = 7});
  EXPECT_EQ(ds->size(), 7u);
  EXPECT_EQ(ds->get(0).image.width, 16);
}

TEST(DatasetRegistry, VideoDatasetsAreMadeFromTheSpecAndKeptApart) {
  const auto clips = make_video_dataset({.name = "shapes-video", .resolution = 16, .num_frames = 3, .seed = 3, .size = 4});
  EXPECT_EQ(clips->name(), "shapes-video");
  EXPECT_EQ(clips->size(), 4u);
  EXPECT_EQ(clips->num_frames(), 3);
  const VideoSample c = clips->get(1);
  ASSERT_EQ(c.frames.size(), 3u);
  EXPECT_EQ(c.frames[0].width, 16);
  // num_frames 0: the entry's own.
  EXPECT_EQ(make_video_dataset({.name = "shapes-video", .resolution = 16, .size = 1})->num_frames(),
            datasets()[4].native_frames);
  EXPECT_TRUE(is_video_dataset("emoji-video"));
  EXPECT_FALSE(is_video_dataset("shapes"));
  EXPECT_EQ(error_of({.name = "shapes-video"}), "dataset 'shapes-video' is a video dataset (clips, not images)");
  try {
    make_video_dataset({.name = "shapes"});
    ADD_FAILURE() << "an image dataset made as a video one";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "dataset 'shapes' is an image dataset, not a video one");
  }
  EXPECT_THROW(make_video_dataset({.name = "shapes-video", .num_frames = 300}), UsageError);
}

TEST(DatasetRegistry, RegisteredDatasetIsFoundByName) {
  register_dataset({"registry-test-counting", "blank images captioned by index",
                    [](const DatasetSpec& spec) { return std::make_shared<CountingDataset>(spec); }});
  const auto names = dataset_names();
  EXPECT_EQ(std::count(names.begin(), names.end(), "registry-test-counting"), 1);
  const auto ds = make_dataset({.name = "registry-test-counting", .resolution = 8, .size = 5});
  EXPECT_EQ(ds->name(), "registry-test-counting@8");
  EXPECT_EQ(ds->size(), 5u);
  EXPECT_EQ(ds->get(4).caption, "sample 4");
  // It is now listed among the known names of an unknown one.
  EXPECT_NE(error_of({.name = "nope"}).find(", registry-test-counting"), std::string::npos);
}

TEST(DatasetRegistry, NativeResolutionsComeFromTheTable) {
  EXPECT_EQ(native_resolution("fashion-mnist"), FashionMnistOptions{}.resolution);
  EXPECT_EQ(native_resolution("emoji"), EmojiOptions{}.resolution);
  EXPECT_EQ(make_dataset({.name = "shapes", .resolution = native_resolution("shapes"), .size = 2})->get(0).image.width,
            ShapesOptions{}.resolution);
  DatasetEntry entry{"registry-test-native", "blank images", [](const DatasetSpec& spec) {
                       return std::make_shared<CountingDataset>(spec);
                     }};
  entry.native_resolution = 24;
  register_dataset(entry);
  EXPECT_EQ(native_resolution("registry-test-native"), 24);
  EXPECT_THROW(native_resolution("nope"), UsageError);
  entry.name = "registry-test-native-zero";
  entry.native_resolution = 0;
  EXPECT_THROW(register_dataset(entry), UsageError);
}

TEST(DatasetRegistry, DuplicateAndIncompleteRegistrationsAreRefused) {
  const auto make = [](const DatasetSpec& spec) { return std::make_shared<CountingDataset>(spec); };
  EXPECT_THROW(register_dataset({"emoji", "a second emoji", make}), UsageError);
  register_dataset({"registry-test-once", "registered once", make});
  EXPECT_THROW(register_dataset({"registry-test-once", "registered twice", make}), UsageError);
  EXPECT_THROW(register_dataset({"", "no name", make}), UsageError);
  EXPECT_THROW(register_dataset({"registry-test-no-factory", "no factory", nullptr}), UsageError);
  DatasetEntry both{"registry-test-both", "two factories", make};
  both.make_video = [](const DatasetSpec& spec) { return make_video_dataset({.name = "shapes-video", .size = spec.size}); };
  both.native_frames = 4;
  EXPECT_THROW(register_dataset(both), UsageError);
  both.make = nullptr, both.native_frames = 0;  // a video dataset needs its frame count
  EXPECT_THROW(register_dataset(both), UsageError);
  const auto names = dataset_names();
  EXPECT_EQ(std::count(names.begin(), names.end(), "registry-test-once"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "emoji"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "registry-test-no-factory"), 0);
}

}  // namespace
}  // namespace genvis::data
