// One evaluation: every applicable metric of a set of images (generated or from a folder) against
// a dataset split, as one JSON object, a Markdown table and a sample grid.
//
//   eval::EvalSet set{images, captions, metas};                // [N,3,H,W] in [0,1]
//   eval::Judges judges;
//   judges.extractors.push_back(eval::make_contrastive_extractor(encoder, folder));
//   judges.text_image = encoder.get();  judges.caption_pool = every caption of the split;
//   nlohmann::ordered_json m = eval::evaluate(set, judges, reference_dataset, options);
//   m["FID[genvis-contrastive-emoji]"], m["r_precision[genvis-contrastive-emoji]"], ...
//
// Metrics, each computed when its inputs exist:
//   per feature extractor E (reference = options.reference_num real images of the split):
//     FID[E], KID[E] (mean, std), precision[E], recall[E] (k-NN manifolds, k = options.pr_k)
//   text-image encoder T (the contrastive one, and each of more_text_image) and non-empty
//   captions: r_precision[T] (true caption among k = 100),
//     clip_score[T] = 100 * mean(max(cos(image, caption), 0)), the CLIP-score analogue
//   classifier C and a "label" in every meta: accuracy[C] (generated image classified as the
//     class its caption asked for)
//   shapes scenes in the metas: shapes_{colour,shape,colour_shape,position,relation}_accuracy,
//     shapes_all_correct, and shapes_colour_chance (the colour check of each image against the
//     next caption's scene: its chance level on these images)
#pragma once
#include "data/dataset.h"
#include "eval/feature_extractor.h"
#include "eval/kernel_distance.h"
#include "eval/r_precision.h"
#include "io/image.h"
#include "models/contrastive/contrastive_encoder.h"

#include <ATen/ATen.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::eval {

struct EvalSet {
  at::Tensor images;                  // [N,3,H,W] float in [0,1]
  std::vector<std::string> captions;  // N: the prompts (generated) or .txt captions ("" = none)
  std::vector<nlohmann::json> metas;  // N or empty: ground truth of the samples the captions came from
};

// A class-conditional judge: predicts one of class_names() for each image.
class Classifier {
public:
  virtual ~Classifier() = default;
  virtual std::string name() const = 0;
  virtual std::vector<int64_t> predict(const at::Tensor& images) = 0;  // [N,3,H,W] in [0,1]
};
// One genvis image classifier folder (genvis train classifier), loaded once, as both judges:
// its penultimate layer as a feature extractor and its predictions as the accuracy judge.
struct ClassifierJudges {
  std::unique_ptr<FeatureExtractor> features;
  std::unique_ptr<Classifier> classifier;
};
ClassifierJudges make_classifier_judges(const std::string& folder);

struct Judges {
  std::vector<std::unique_ptr<FeatureExtractor>> extractors;
  models::ContrastiveEncoder* text_image = nullptr;  // with its folder name below
  std::string text_image_name;
  // Further text-image judges by name, scored as text_image is (e.g. a DAMSM: its global image
  // vector against sentence vectors, the AttnGAN papers' R-precision).
  struct NamedEmbedder {
    std::string name;
    TextImageEmbedder embedder;
  };
  std::vector<NamedEmbedder> more_text_image;
  std::vector<std::string> caption_pool;  // R-precision candidates (every caption of the split)
  std::unique_ptr<Classifier> classifier;
};

struct EvalOptions {
  std::string dataset_key;   // names the reference features' cache entry
  size_t reference_num = 0;  // real images compared against (0 = the whole split)
  std::string cache_dir;     // reference feature cache ("" = none)
  uint64_t seed = 0;         // reference choice, KID subsets, R-precision distractors
  int64_t r_precision_k = 100;
  int64_t pr_k = 3;
  KIDOptions kid;            // subset_size is clamped to the set sizes
};

// The metrics as an ordered JSON object (see the top of this file). UsageError for an empty or
// mis-shaped set.
nlohmann::ordered_json evaluate(const EvalSet& set, Judges& judges, const data::Dataset& reference,
                                const EvalOptions& options);

// Whether a sample's meta is a shapes scene (the scorer's ground truth).
bool is_shapes_scene(const nlohmann::json& meta);

// The shapes scorer's metrics alone (shapes_colour_accuracy, ..., shapes_all_correct), for a set
// whose every meta is a shapes scene; UsageError otherwise.
nlohmann::ordered_json shapes_metrics(const EvalSet& set);

// Markdown: a header row, the separator and one row per result; `columns` picks and orders the
// metric keys (a missing metric prints "-"; KID prints mean ± std).
std::string markdown_table(const std::vector<nlohmann::ordered_json>& rows, const std::vector<std::string>& columns);

// A captioned contact sheet of the first `count` images of the set.
io::Image sample_grid(const EvalSet& set, size_t count = 16);

}  // namespace genvis::eval
