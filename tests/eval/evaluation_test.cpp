// The evaluation driver: which metrics it computes from which judges, that real images score
// better than noise on each of them, the reference feature cache, the Markdown table, and (with
// the shipped contrastive encoder) R-precision 1 for ground truth and about chance for noise.
#include "core/error.h"
#include "core/rng.h"
#include "data/emoji.h"
#include "data/registry.h"
#include "eval/evaluation.h"
#include "eval/r_precision.h"
#include "eval/reference_features.h"
#include "io/safetensors.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <torch/torch.h>

namespace genvis::eval {
namespace {

namespace fs = std::filesystem;

// Features = 8x8 average-pooled pixels (192-d): a transparent judge whose FID we can reason about.
class PooledPixels final : public FeatureExtractor {
public:
  std::string name() const override { return "pooled-pixels"; }
  std::string fingerprint() const override { return fingerprint_; }
  at::Tensor features(const at::Tensor& images) override {
    ++calls;
    return at::adaptive_avg_pool2d(images, {8, 8}).flatten(1).to(at::kFloat);
  }
  std::string fingerprint_ = "0123456789abcdef0123";
  int calls = 0;
};

// Predicts the label stored in a lookup of the image's mean colour: here simply "always 3".
class ConstantClassifier final : public Classifier {
public:
  std::string name() const override { return "constant"; }
  std::vector<int64_t> predict(const at::Tensor& images) override {
    return std::vector<int64_t>(static_cast<size_t>(images.size(0)), 3);
  }
};

std::shared_ptr<const data::Dataset> shapes(data::Split split, size_t size = 400) {
  data::DatasetSpec spec;
  spec.name = "shapes";
  spec.resolution = 32;
  spec.split = split;
  spec.size = size;
  return data::make_dataset(spec);
}

EvalSet real_set(const data::Dataset& ds, size_t n, uint64_t seed) {
  EvalSet set;
  const auto idx = choose_indices(ds.size(), n, seed);
  set.images = dataset_images(ds, idx);
  for (const size_t i : idx) {
    const data::Sample s = ds.get(i);
    set.captions.push_back(s.caption);
    set.metas.push_back(s.meta);
  }
  return set;
}

TEST(Evaluate, RealShapesBeatNoiseOnEveryMetric) {
  const auto train = shapes(data::Split::Train);
  Judges judges;
  auto fx = std::make_unique<PooledPixels>();
  PooledPixels* pixels = fx.get();
  judges.extractors.push_back(std::move(fx));
  const EvalOptions options{.dataset_key = "shapes-train-32px", .reference_num = 200, .seed = 0,
                            .kid = {.subsets = 20, .subset_size = 100}};
  // Real images of the same split (other samples than the reference's: a different seed).
  const EvalSet real = real_set(*train, 120, 5);
  const auto r = evaluate(real, judges, *train, options)["metrics"];
  EvalSet noise = real;
  noise.images = Rng(1).rand({120, 3, 32, 32});
  const auto z = evaluate(noise, judges, *train, options)["metrics"];

  EXPECT_LT(r["FID[pooled-pixels]"].get<double>() * 5, z["FID[pooled-pixels]"].get<double>());
  EXPECT_LT(r["KID[pooled-pixels]"]["mean"].get<double>(), 0.5 * z["KID[pooled-pixels]"]["mean"].get<double>());
  EXPECT_GT(r["precision[pooled-pixels]"].get<double>(), 0.5);
  EXPECT_LT(z["precision[pooled-pixels]"].get<double>(), 0.1);
  EXPECT_GT(r["recall[pooled-pixels]"].get<double>(), z["recall[pooled-pixels]"].get<double>());
  // The shapes scorer reads the ground-truth scenes: real renders pass, noise does not.
  EXPECT_GT(r["shapes_colour_shape_accuracy"].get<double>(), 0.9);
  EXPECT_LT(z["shapes_colour_shape_accuracy"].get<double>(), 0.2);
  EXPECT_GT(r["shapes_all_correct"].get<double>(), z["shapes_all_correct"].get<double>());
  // No text-image encoder and no classifier: those metrics are absent, not zero.
  EXPECT_FALSE(r.contains("clip_score[x]"));
  for (const auto& [k, v] : r.items()) {
    EXPECT_EQ(k.find("r_precision"), std::string::npos) << k;
    EXPECT_EQ(k.find("accuracy["), std::string::npos) << k;
  }
  EXPECT_GT(pixels->calls, 0);
}

TEST(Evaluate, ClassifierAccuracyNeedsLabels) {
  const auto train = shapes(data::Split::Train, 50);
  EvalSet set = real_set(*train, 10, 0);
  for (size_t i = 0; i < set.metas.size(); ++i) set.metas[i] = {{"label", i < 4 ? 3 : 1}};
  Judges judges;
  judges.classifier = std::make_unique<ConstantClassifier>();
  const auto m = evaluate(set, judges, *train, {.dataset_key = "k"})["metrics"];
  EXPECT_DOUBLE_EQ(m["accuracy[constant]"].get<double>(), 0.4);
  set.metas[0] = {{"other", 1}};  // one sample without a label: no accuracy at all
  EXPECT_FALSE(evaluate(set, judges, *train, {.dataset_key = "k"})["metrics"].contains("accuracy[constant]"));
}

TEST(Evaluate, BadSetsAreUsageErrors) {
  const auto train = shapes(data::Split::Train, 50);
  Judges judges;
  EvalSet set = real_set(*train, 4, 0);
  set.captions.pop_back();
  EXPECT_THROW(evaluate(set, judges, *train, {.dataset_key = "k"}), UsageError);
  set = real_set(*train, 4, 0);
  set.images = set.images.narrow(0, 0, 1);
  EXPECT_THROW(evaluate(set, judges, *train, {.dataset_key = "k"}), UsageError);
  set = real_set(*train, 4, 0);
  set.images = set.images.mean(1);
  EXPECT_THROW(evaluate(set, judges, *train, {.dataset_key = "k"}), UsageError);
}

TEST(ReferenceFeatures, CachedOnceAndRecomputedWhenStale) {
  test::TempDir dir;
  const auto train = shapes(data::Split::Train, 60);
  PooledPixels fx;
  const ReferenceOptions o{.dataset_key = "shapes-train-32px", .num = 40, .seed = 3, .cache_dir = dir.file("cache"),
                           .batch = 16};
  const ReferenceFeatures first = reference_features(fx, *train, o);
  EXPECT_FALSE(first.cached);
  EXPECT_EQ(fx.calls, 3);  // 16 + 16 + 8
  ASSERT_TRUE(fs::exists(first.cache_file));
  EXPECT_EQ(first.features.sizes(), (std::vector<int64_t>{40, 192}));
  // The features are those of choose_indices(60, 40, 3), in that order.
  const auto idx = choose_indices(60, 40, 3);
  EXPECT_TRUE(at::allclose(first.features.narrow(0, 7, 1),
                           fx.features(dataset_images(*train, {idx[7]}))));
  fx.calls = 0;
  const ReferenceFeatures second = reference_features(fx, *train, o);
  EXPECT_TRUE(second.cached);
  EXPECT_EQ(fx.calls, 0);
  EXPECT_TRUE(at::equal(first.features, second.features));
  // New weights (fingerprint) -> another file; a damaged cache file is recomputed, not trusted.
  fx.fingerprint_ = "ffffffffffffffffffff";
  EXPECT_FALSE(reference_features(fx, *train, o).cached);
  fx.fingerprint_ = "0123456789abcdef0123";
  { std::ofstream(first.cache_file, std::ios::binary | std::ios::trunc) << "garbage"; }
  const ReferenceFeatures third = reference_features(fx, *train, o);
  EXPECT_FALSE(third.cached);
  EXPECT_TRUE(at::equal(first.features, third.features));
  EXPECT_TRUE(reference_features(fx, *train, o).cached);  // rewritten
  EXPECT_THROW(reference_features(fx, *train, {.dataset_key = "k", .num = 61}), UsageError);
}

TEST(MarkdownTable, PicksColumnsAndFormats) {
  nlohmann::ordered_json a = {{"name", "m1"}, {"num", 10},
                              {"metrics", {{"FID[x]", 12.3456}, {"KID[x]", {{"mean", 0.01234}, {"std", 0.002}}}}}};
  nlohmann::ordered_json b = {{"name", "m2"}, {"num", 20}, {"metrics", {{"FID[x]", 0.5}}}};
  const std::string md = markdown_table({a, b}, {"name", "num", "FID[x]", "KID[x]"});
  EXPECT_EQ(md,
            "| name | num | FID[x] | KID[x] |\n| --- | --- | --- | --- |\n"
            "| m1 | 10 | 12.35 | 0.0123 ± 0.0020 |\n| m2 | 20 | 0.500 | - |\n");
}

TEST(Evaluate, ShippedEncoderRanksGroundTruthFirstAndNoiseAtChance) {
  const fs::path enc_dir = fs::path(GENVIS_SOURCE_DIR) / "models" / "genvis-contrastive-emoji";
  if (!fs::exists(enc_dir / "model.safetensors")) GTEST_SKIP() << enc_dir << " is absent";
  if (!fs::exists(data::kDefaultEmojiFont)) GTEST_SKIP() << data::kDefaultEmojiFont << " is absent";
  models::ContrastiveEncoder encoder = models::ContrastiveEncoder::load(enc_dir.string());
  data::DatasetSpec spec;
  spec.name = "emoji";
  spec.resolution = static_cast<int>(encoder.config().vision_config.image_size);
  const auto train = data::make_dataset(spec);
  Judges judges;
  judges.text_image = &encoder;
  judges.text_image_name = "genvis-contrastive-emoji";
  for (size_t i = 0; i < train->size(); ++i) judges.caption_pool.push_back(train->get(i).caption);
  const EvalSet real = real_set(*train, 100, 0);
  const auto r = evaluate(real, judges, *train, {.dataset_key = "emoji", .seed = 0})["metrics"];
  EvalSet noise = real;
  noise.images = Rng(2).rand(real.images.sizes());
  const auto z = evaluate(noise, judges, *train, {.dataset_key = "emoji", .seed = 0})["metrics"];
  EXPECT_GE(r["r_precision[genvis-contrastive-emoji]"].get<double>(), 0.95);
  EXPECT_LE(z["r_precision[genvis-contrastive-emoji]"].get<double>(), 0.06);  // chance 0.01
  EXPECT_GT(r["clip_score[genvis-contrastive-emoji]"].get<double>(),
            z["clip_score[genvis-contrastive-emoji]"].get<double>() + 5);
}

// Further text-image judges (a DAMSM in `genvis eval --damsm`) are scored under their own names,
// each in its own space: an embedder that reads image and caption exactly ranks every caption
// first; one that misreads every caption never does.
TEST(Evaluate, FurtherTextImageJudgesAreScoredUnderTheirNames) {
  const int64_t n = 8;
  EvalSet set;
  set.images = torch::zeros({n, 3, 4, 4});
  for (int64_t i = 0; i < n; ++i) {
    set.images[i][0].fill_((static_cast<double>(i) + 0.5) / n);
    set.captions.push_back("item " + std::to_string(i));
  }
  const auto image_ids = [n](const at::Tensor& x) {
    return torch::one_hot((x.select(1, 0).mean({1, 2}) * n).floor().to(at::kLong), n).to(at::kFloat);
  };
  const auto text_ids = [n](const std::vector<std::string>& t, int64_t shift) {
    std::vector<int64_t> ids;
    for (const auto& c : t) ids.push_back((std::stoll(c.substr(5)) + shift) % n);
    return torch::one_hot(at::tensor(ids, at::kLong), n).to(at::kFloat);
  };
  Judges judges;
  judges.caption_pool = set.captions;
  judges.more_text_image.push_back({"exact", {image_ids, [&](const std::vector<std::string>& t) { return text_ids(t, 0); }}});
  judges.more_text_image.push_back({"misread", {image_ids, [&](const std::vector<std::string>& t) { return text_ids(t, 1); }}});
  data::DatasetSpec spec;
  spec.name = "shapes";
  spec.resolution = 16;
  spec.size = 8;
  const auto reference = data::make_dataset(spec);
  const auto m = evaluate(set, judges, *reference, {.dataset_key = "x", .seed = 0, .r_precision_k = 4})["metrics"];
  EXPECT_DOUBLE_EQ(m["r_precision[exact]"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(m["clip_score[exact]"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(m["r_precision[misread]"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(m["clip_score[misread]"].get<double>(), 0.0);
}

}  // namespace
}  // namespace genvis::eval
