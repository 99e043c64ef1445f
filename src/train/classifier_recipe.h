// The image classifier recipe: a small CNN (models/classifier) trained from scratch on a labelled
// dataset (Fashion-MNIST) with cross-entropy, saved as an ImageClassifier folder. It is the
// evaluation suite's own feature encoder: FID[genvis-fmnist] uses its penultimate features and
// class-conditional generation is scored by its predictions.
//
//   auto config = genvis::train::ClassifierRecipeConfig::from_file("configs/fmnist-classifier.json");
//   auto r = genvis::train::run_classifier_recipe(config, {.out_dir = "runs/fmnist-classifier"});
//   auto classifier = genvis::models::ImageClassifier::load(r.model_dir);
//   double accuracy = r.eval["accuracy"];
//
// Stages (numbered the same in run_classifier_recipe), each skipped when its output exists:
//   1 data   the training split (dataset.size: its first samples) and the first eval.num samples
//            of the evaluation split, rendered once at dataset.resolution, in memory, through
//            ImageClassifier::preprocess (the model's input, as at inference); labels from each
//            sample's meta.label (a dataset without it is a UsageError)
//   2 train  per step, the loader's shuffled order (DataLoader::indices: epochs without
//            replacement, a pure function of the step); augmentation from the step Rng: one
//            resample per image (horizontal flip where the dataset allows it, object scale in
//            augment.scale, shift up to augment.shift of the side in whole pixels when the scale
//            is 1, edges replicated). Loss: cross-entropy with label_smoothing, in f32. Trainer
//            folder <out>/train/ (checkpoints, metrics.jsonl, loss.png). EMA weights
//            (ema_decay > 0) are the ones saved. With train.validate_every, the evaluation
//            split's accuracy is logged as training goes (and appended to
//            <out>/train/validation.jsonl).
//   3 save   <out>/model/{config.json, model.safetensors}
//   4 eval   accuracy, per-class accuracy and the confusion matrix on the evaluation split
//            (eval.split, default the held-out split: Fashion-MNIST's t10k) -> <out>/eval.json
//
// Config keys the recipe sets itself (any value given must agree): model.image_size =
// dataset.resolution. model.class_names, when not given, come from the samples' meta.class.
#pragma once
#include "train/recipe_config.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::train {

struct ClassifierRecipeConfig {
  using Dataset = recipe::DatasetSection;
  Dataset dataset;
  nlohmann::json model_config;  // ImageClassifierConfig keys
  int64_t batch_size = 0;
  double label_smoothing = 0.0;
  struct Augment {
    bool hflip = true;
    double scale_min = 1.0, scale_max = 1.0;  // object size factor, uniform
    double shift = 0.0;                       // max shift, fraction of the side
  } augment;
  recipe::EvalSection eval;  // the first eval.num of eval.split (0: all)
  TrainConfig train;
  uint64_t seed = 0;

  // Every unknown key, missing key and invalid value (including the model config's and the
  // TrainConfig's) in one UsageError naming `source`.
  static ClassifierRecipeConfig from_json(const nlohmann::json& json, const std::string& source = "recipe config");
  static ClassifierRecipeConfig from_file(const std::string& path);
};

struct ClassifierRecipeOptions {
  std::string out_dir;
  // Continue an unfinished training from its latest checkpoint. Without it, an unfinished
  // training that has checkpoints is a UsageError (nothing is overwritten).
  bool resume = false;
};

struct ClassifierRecipeResult {
  std::string model_dir;                  // <out>/model
  std::vector<std::string> ran, skipped;  // stage names
  bool interrupted = false;               // SIGINT/SIGTERM: a checkpoint was written, rerun with resume
  // The contents of <out>/eval.json: {"metric": "accuracy", "dataset", "split", "num",
  // "accuracy", "per_class": [{"label", "class", "num", "accuracy"}...], "confusion": [[...]]
  // (rows: true label, columns: predicted)}; null when interrupted.
  nlohmann::json eval;
};

ClassifierRecipeResult run_classifier_recipe(const ClassifierRecipeConfig& config, const ClassifierRecipeOptions& options);

}  // namespace genvis::train
