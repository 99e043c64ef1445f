// The video encoder at tiny size: config round trip and error reporting, any frame count and
// size in, labels from a clip's meta by JSON pointer, the folder round trip (identical outputs)
// and load errors.
#include "core/error.h"
#include "models/video_classifier/video_classifier.h"
#include "support/test_support.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json tiny_config_json() {
  return json::parse(R"({
    "image_size": 12, "block_out_channels": [8, 16], "norm_num_groups": 4, "feature_dim": 6,
    "heads": [{"name": "motion", "key": "/motion/label", "classes": ["move left", "move right", "grow"]},
              {"name": "shape", "key": "/frames/0/objects/0/shape", "classes": ["circle", "square"]}]
  })");
}

std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const LoadError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no LoadError";
  return "";
}

TEST(VideoClassifierConfig, RoundTripsThroughJSON) {
  const auto c = VideoClassifierConfig::from_json(tiny_config_json(), "tiny");
  ASSERT_EQ(c.heads.size(), 2u);
  EXPECT_EQ(c.heads[1].classes, (std::vector<std::string>{"circle", "square"}));
  const json j = c.to_json();
  EXPECT_EQ(j["model_type"], "genvis_video_classifier");
  EXPECT_EQ(VideoClassifierConfig::from_json(j, "again").to_json(), j);
}

TEST(VideoClassifierConfig, ReportsEveryBadKeyAtOnce) {
  json j = tiny_config_json();
  j["depth"] = 3;
  j["feature_dim"] = "wide";
  j["heads"][0]["classes"] = json::array({"only"});
  j["heads"][1]["name"] = "motion";
  j["heads"][1]["key"] = "frames.0";
  const std::string what = what_of([&] { VideoClassifierConfig::from_json(j, "bad.json"); });
  for (const char* part : {"bad.json", "unknown key depth", "feature_dim has the wrong type"})
    EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
  // Validation problems of a well-typed config, all at once.
  j.erase("depth");
  j["feature_dim"] = 6;
  j["block_out_channels"] = json::array({8, 18});
  const std::string invalid = what_of([&] { VideoClassifierConfig::from_json(j, "bad.json"); });
  for (const char* part : {"not a positive multiple of norm_num_groups", "heads[0].classes must name at least 2",
                           "heads[1].name motion is used twice", "heads[1].key must be a JSON pointer"})
    EXPECT_NE(invalid.find(part), std::string::npos) << part << " not in: " << invalid;
  EXPECT_NE(what_of([] { VideoClassifierConfig::from_json(json::object(), "empty"); }).find("missing key heads"),
            std::string::npos);
}

TEST(VideoClassifier, AnyFrameCountAndSizeGiveFeaturesAndLogits) {
  torch::manual_seed(0);
  VideoClassifier enc(VideoClassifierConfig::from_json(tiny_config_json(), "tiny"));
  for (const auto& shape : std::vector<std::vector<int64_t>>{{2, 3, 1, 12, 12}, {3, 3, 9, 32, 32}, {1, 3, 4, 10, 20}}) {
    const auto out = enc.run(torch::rand(shape));
    EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{shape[0], 6}));
    ASSERT_EQ(out.logits.size(), 2u);
    EXPECT_EQ(out.logits[0].sizes(), (std::vector<int64_t>{shape[0], 3}));
    EXPECT_EQ(out.logits[1].sizes(), (std::vector<int64_t>{shape[0], 2}));
  }
  // The input is resized per frame: a 24 px clip of 2x2 blocks of a 12 px clip gives its features.
  const at::Tensor small = torch::rand({2, 3, 4, 12, 12});
  const at::Tensor big = small.repeat_interleave(2, 3).repeat_interleave(2, 4);
  EXPECT_TRUE(torch::allclose(enc.run(big).features, enc.run(small).features, 1e-5, 1e-6));
  // Clips are independent of their batch.
  const at::Tensor batch = torch::rand({3, 3, 5, 12, 12});
  EXPECT_TRUE(torch::allclose(enc.run(batch).features[1], enc.run(batch.narrow(0, 1, 1)).features[0], 1e-5, 1e-6));
  // Frame order matters (motion): reversed time gives other features.
  EXPECT_FALSE(torch::allclose(enc.run(batch).features, enc.run(batch.flip(2)).features, 1e-4, 1e-5));
  EXPECT_THROW(enc.run(torch::rand({2, 4, 3, 12, 12})), UsageError);
  EXPECT_THROW(enc.run(torch::rand({2, 3, 12, 12})), UsageError);
}

TEST(VideoClassifier, LabelsComeFromTheMetaByPointer) {
  VideoClassifier enc(VideoClassifierConfig::from_json(tiny_config_json(), "tiny"));
  const json meta = json::parse(R"({"motion": {"label": "grow"}, "frames": [{"objects": [{"shape": "square"}]}]})");
  EXPECT_EQ(enc.labels_of(meta), (std::vector<int64_t>{2, 1}));
  const json unknown = json::parse(R"({"motion": {"label": "spin"}, "frames": []})");
  EXPECT_EQ(enc.labels_of(unknown), (std::vector<int64_t>{-1, -1}));
}

TEST(VideoClassifier, MetaClassNameReadsStringsIntegersAndBooleansOnly) {
  const json meta = json::parse(R"({"a": "red", "n": 3, "b": true, "x": 1.5, "o": {"k": "v"}})");
  EXPECT_EQ(meta_class_name(meta, "/a"), std::optional<std::string>("red"));
  EXPECT_EQ(meta_class_name(meta, "/n"), std::optional<std::string>("3"));
  EXPECT_EQ(meta_class_name(meta, "/b"), std::optional<std::string>("true"));
  EXPECT_EQ(meta_class_name(meta, "/o/k"), std::optional<std::string>("v"));
  EXPECT_FALSE(meta_class_name(meta, "/x"));        // a float is no class name
  EXPECT_FALSE(meta_class_name(meta, "/o"));        // nor an object
  EXPECT_FALSE(meta_class_name(meta, "/missing"));
  EXPECT_FALSE(meta_class_name(meta, "no-slash"));  // a malformed pointer
}

TEST(VideoClassifier, FolderRoundTripAndLoadErrors) {
  test::TempDir dir;
  torch::manual_seed(4);
  VideoClassifier enc(VideoClassifierConfig::from_json(tiny_config_json(), "tiny"));
  const std::string folder = dir.file("enc");
  enc.save(folder);
  auto loaded = VideoClassifier::load(folder);
  const at::Tensor x = torch::rand({2, 3, 3, 12, 12});
  EXPECT_TRUE(torch::equal(loaded.run(x).features, enc.run(x).features));
  EXPECT_EQ(loaded.config().to_json(), enc.config().to_json());

  EXPECT_NE(what_of([&] { VideoClassifier::load(dir.file("none")); }).find("no such video classifier folder"),
            std::string::npos);
  // Weights of another shape: named.
  json wide = tiny_config_json();
  wide["feature_dim"] = 8;
  test::write_bytes(folder + "/config.json", wide.dump());
  EXPECT_THROW(VideoClassifier::load(folder), LoadError);
  // A truncated weights file.
  enc.save(folder);
  const auto size = fs::file_size(folder + "/model.safetensors");
  fs::resize_file(folder + "/model.safetensors", size / 2);
  EXPECT_THROW(VideoClassifier::load(folder), LoadError);
  fs::remove(folder + "/model.safetensors");
  EXPECT_NE(what_of([&] { VideoClassifier::load(folder); }).find("weights file is missing"), std::string::npos);
}

}  // namespace
}  // namespace genvis::models
