// The image classifier at tiny size: config round trip and error reporting, shapes, preprocessing
// of any size and channel count, the folder round trip (identical logits) and load errors.
#include "core/error.h"
#include "models/classifier/image_classifier.h"
#include "support/test_support.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json tiny_config_json() {
  return json::parse(R"({
    "in_channels": 1, "image_size": 12, "block_out_channels": [8, 16], "layers_per_block": 1,
    "norm_num_groups": 4, "feature_dim": 6, "num_classes": 3, "class_names": ["cat", "dog", "fish"]
  })");
}

ImageClassifier tiny(uint64_t seed, json j = tiny_config_json()) {
  torch::manual_seed(seed);
  return ImageClassifier(ImageClassifierConfig::from_json(j, "tiny"));
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

TEST(ImageClassifierConfig, RoundTripsThroughJSON) {
  const auto c = ImageClassifierConfig::from_json(tiny_config_json(), "tiny");
  EXPECT_EQ(c.block_out_channels, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(c.class_names, (std::vector<std::string>{"cat", "dog", "fish"}));
  const json j = c.to_json();
  EXPECT_EQ(j["model_type"], "genvis_image_classifier");
  EXPECT_EQ(ImageClassifierConfig::from_json(j, "again").to_json(), j);
  // Defaults fill what is not given.
  const auto d = ImageClassifierConfig::from_json(json::object(), "empty");
  EXPECT_EQ(d.image_size, 28);
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_TRUE(d.class_names.empty());
}

TEST(ImageClassifierConfig, ReportsEveryBadKeyAtOnce) {
  json j = tiny_config_json();
  j["depth"] = 3;
  j["feature_dim"] = "wide";
  j["in_channels"] = 2;
  j["block_out_channels"] = json::array({8, 18});
  j["class_names"] = json::array({"cat"});
  const std::string what = what_of([&] { ImageClassifierConfig::from_json(j, "bad.json"); });
  for (const char* part : {"bad.json", "unknown key depth", "feature_dim has the wrong type", "in_channels must be 1",
                           "18 is not a positive multiple of norm_num_groups 4", "class_names has 1 names for num_classes 3"})
    EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
}

TEST(ImageClassifier, ShapesOfFeaturesLogitsAndPredictions) {
  ImageClassifier clf = tiny(0);
  const at::Tensor images = torch::rand({5, 1, 12, 12});
  const auto out = clf.run(images);
  EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(out.features.scalar_type(), at::kFloat);
  EXPECT_FALSE(out.logits.requires_grad());
  EXPECT_TRUE(torch::equal(clf.features(images), out.features));
  EXPECT_TRUE(torch::equal(clf.logits(images), out.logits));
  const auto labels = clf.predict(images);
  ASSERT_EQ(labels.size(), 5u);
  for (size_t i = 0; i < labels.size(); ++i)
    EXPECT_EQ(labels[i], out.logits[static_cast<int64_t>(i)].argmax().item<int64_t>());
  EXPECT_EQ(clf.run(torch::rand({0, 3, 12, 12})).features.sizes(), (std::vector<int64_t>{0, 6}));
  EXPECT_TRUE(clf.predict(torch::rand({0, 1, 12, 12})).empty());

  // The module itself: [B,in_channels,S,S] in [-1,1] only.
  EXPECT_EQ(clf.model()->forward(torch::zeros({2, 1, 12, 12})).sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_THROW(clf.model()->forward(torch::zeros({2, 1, 16, 16})), UsageError);
  // Parameters: down_blocks.N.{convs,norms}.M, feature_proj, classifier.
  const auto params = clf.model()->named_parameters(true);
  for (const char* name : {"down_blocks.0.convs.0.weight", "down_blocks.1.norms.0.bias", "feature_proj.weight",
                           "classifier.bias"})
    EXPECT_NE(params.find(name), nullptr) << name;
}

TEST(ImageClassifier, TakesAnySizeAndRGBOrGrey) {
  ImageClassifier clf = tiny(1);
  // RGB -> ITU-R BT.601 luma, then [0,1] -> [-1,1].
  const at::Tensor rgb = torch::rand({2, 3, 12, 12});
  const at::Tensor luma = rgb.select(1, 0) * 0.299 + rgb.select(1, 1) * 0.587 + rgb.select(1, 2) * 0.114;
  EXPECT_TRUE(torch::allclose(clf.preprocess(rgb), luma.unsqueeze(1) * 2 - 1, 1e-5, 1e-6));
  // Equal RGB channels are the grey image.
  const at::Tensor grey = torch::rand({2, 1, 12, 12});
  EXPECT_TRUE(torch::allclose(clf.logits(grey.expand({-1, 3, -1, -1})), clf.logits(grey), 1e-4, 1e-5));
  // 36x24: centre square 24x24, area-averaged to 12x12; 6x6 is upsampled.
  const at::Tensor big = torch::rand({2, 1, 36, 24});
  EXPECT_TRUE(torch::allclose(clf.preprocess(big), at::adaptive_avg_pool2d(big.narrow(2, 6, 24), {12, 12}) * 2 - 1));
  EXPECT_EQ(clf.preprocess(torch::rand({1, 3, 6, 6})).sizes(), (std::vector<int64_t>{1, 1, 12, 12}));
  EXPECT_EQ(clf.logits(torch::rand({3, 3, 100, 70})).sizes(), (std::vector<int64_t>{3, 3}));
  // Batches of 256: a long batch gives each image's own result.
  const at::Tensor many = torch::rand({300, 1, 12, 12});
  const at::Tensor all = clf.logits(many);
  EXPECT_TRUE(torch::allclose(all.narrow(0, 290, 10), clf.logits(many.narrow(0, 290, 10)), 1e-4, 1e-5));
  // Wrong shapes are usage errors.
  EXPECT_THROW(clf.logits(torch::rand({2, 4, 12, 12})), UsageError);
  EXPECT_THROW(clf.logits(torch::rand({1, 12, 12})), UsageError);

  // A 3-channel model repeats a grey channel.
  json j = tiny_config_json();
  j["in_channels"] = 3;
  ImageClassifier colour = tiny(2, j);
  EXPECT_TRUE(torch::equal(colour.preprocess(grey), colour.preprocess(grey.expand({-1, 3, -1, -1}))));
  EXPECT_EQ(colour.features(rgb).sizes(), (std::vector<int64_t>{2, 6}));
}

TEST(ImageClassifier, SaveLoadGivesIdenticalLogits) {
  test::TempDir dir;
  ImageClassifier clf = tiny(3);
  const at::Tensor images = torch::rand({4, 3, 20, 20});
  const auto before = clf.run(images);
  clf.save(dir.file("clf"));
  for (const char* f : {"config.json", "model.safetensors"}) EXPECT_TRUE(fs::exists(fs::path(dir.file("clf")) / f)) << f;
  ImageClassifier loaded = ImageClassifier::load(dir.file("clf"));
  EXPECT_EQ(loaded.config().to_json(), clf.config().to_json());
  const auto after = loaded.run(images);
  EXPECT_TRUE(torch::equal(after.logits, before.logits));
  EXPECT_TRUE(torch::equal(after.features, before.features));
  EXPECT_EQ(loaded.predict(images), clf.predict(images));
  // Saving over an existing folder replaces it.
  tiny(4).save(dir.file("clf"));
  EXPECT_FALSE(torch::equal(ImageClassifier::load(dir.file("clf")).logits(images), before.logits));
}

TEST(ImageClassifier, LoadErrorsNameTheFolderFileOrTensors) {
  test::TempDir dir;
  const std::string folder = dir.file("clf"), weights = folder + "/model.safetensors", config = folder + "/config.json";
  EXPECT_NE(what_of([&] { ImageClassifier::load(dir.file("nowhere")); }).find("nowhere"), std::string::npos);

  tiny(5).save(folder);
  const std::string good_weights = test::read_bytes(weights);
  fs::remove(weights);
  EXPECT_NE(what_of([&] { ImageClassifier::load(folder); }).find("model.safetensors"), std::string::npos);

  test::write_bytes(weights, "not a safetensors file at all");
  EXPECT_NE(what_of([&] { ImageClassifier::load(folder); }).find("model.safetensors"), std::string::npos);
  test::write_bytes(weights, good_weights.substr(0, good_weights.size() - 100));  // truncated
  EXPECT_NE(what_of([&] { ImageClassifier::load(folder); }).find("model.safetensors"), std::string::npos);

  // Weights of another config: every mis-shaped tensor named.
  test::write_bytes(weights, good_weights);
  json wider = tiny_config_json();
  wider["feature_dim"] = 7;
  test::write_bytes(config, wider.dump());
  const std::string mismatch = what_of([&] { ImageClassifier::load(folder); });
  EXPECT_NE(mismatch.find("feature_proj.weight"), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find("classifier.weight"), std::string::npos) << mismatch;

  test::write_bytes(config, "{ not json");
  EXPECT_NE(what_of([&] { ImageClassifier::load(folder); }).find("config.json"), std::string::npos);
  fs::remove(config);
  EXPECT_NE(what_of([&] { ImageClassifier::load(folder); }).find("config.json"), std::string::npos);
}

}  // namespace
}  // namespace genvis::models
