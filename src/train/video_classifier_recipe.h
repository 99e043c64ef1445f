// The video encoder recipe: a small 3D CNN (models/video_classifier) trained from scratch on a
// video dataset's facts with one cross-entropy head per fact, saved as a VideoClassifier folder.
// It is the evaluation suite's video feature encoder: FVD[<name>] uses its penultimate features,
// and its heads judge generated clips beside the shapes pixel scorer.
//
//   auto config = genvis::train::VideoClassifierRecipeConfig::from_file("configs/video-encoder-shapes.json");
//   auto r = genvis::train::run_video_classifier_recipe(config, {.out_dir = "runs/video-encoder"});
//   double motion = r.eval["heads"]["motion"]["accuracy"];
//
// Config:
//   {"seed": 0,
//    "dataset": {"name": "shapes-video", "resolution": 32, "split": "train", "size": 4000},
//    "frames": 9,
//    "heads": [{"name": "motion", "key": "/motion/label"}, ...],   // JSON pointers into a clip's meta
//    "model": {"block_out_channels": [16, 32, 64], "feature_dim": 128, ...},   // VideoClassifierConfig keys
//    "batch_size": 32,
//    "eval": {"split": "heldout", "num": 500},
//    "train": {TrainConfig}}
// The recipe sets model.image_size (= dataset.resolution) and model.heads (each head's classes:
// the sorted distinct values of its key over the training clips; a clip without the key is a
// UsageError naming it).
//
// Stages (each skipped when its output exists):
//   1 data   the training clips (dataset.size, at `frames` frames) and the first eval.num clips of
//            the evaluation split, rendered once into memory as the model's input
//   2 train  shuffled without replacement per epoch (a pure function of the step); loss: the mean
//            of the heads' cross-entropies; bf16 autocast when train.autocast says so; EMA
//            weights saved when kept. <out>/train/ holds checkpoints, metrics.jsonl, loss.png and,
//            with train.validate_every, validation.jsonl (the evaluation split's accuracies).
//   3 save   <out>/model/{config.json, model.safetensors}
//   4 eval   each head's accuracy on the evaluation split (a clip whose label is not among the
//            head's classes is not counted) -> <out>/eval.json
#pragma once
#include "train/recipe_config.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::train {

struct VideoClassifierRecipeConfig {
  recipe::DatasetSection dataset;
  int64_t frames = 9;
  struct Head {
    std::string name, key;
  };
  std::vector<Head> heads;
  nlohmann::json model_config;  // VideoClassifierConfig keys except image_size and heads
  int64_t batch_size = 0;
  recipe::EvalSection eval;  // the first eval.num of eval.split (0: all)
  TrainConfig train;
  uint64_t seed = 0;

  // Every unknown key, missing key and invalid value in one UsageError naming `source`.
  static VideoClassifierRecipeConfig from_json(const nlohmann::json& json, const std::string& source = "recipe config");
  static VideoClassifierRecipeConfig from_file(const std::string& path);
};

struct VideoClassifierRecipeOptions {
  std::string out_dir;
  bool resume = false;  // continue an unfinished training from its latest checkpoint
};

struct VideoClassifierRecipeResult {
  std::string model_dir;
  std::vector<std::string> ran, skipped;
  bool interrupted = false;
  // <out>/eval.json: {"dataset", "split", "frames", "num", "heads": {name: {"accuracy", "num"}}}.
  nlohmann::json eval;
};

VideoClassifierRecipeResult run_video_classifier_recipe(const VideoClassifierRecipeConfig& config,
                                                        const VideoClassifierRecipeOptions& options);

}  // namespace genvis::train
