// A whole evaluation as `genvis eval` and the public API run it: choose what to score (images a
// model generates from a split's captions, a folder of images, or the split's own images), score
// them with the dataset's judges against a reference split, and assemble the report. A video
// dataset (shapes-video, emoji-video) is scored clip by clip instead: the model's clips of `num`
// captions (or the split's own clips) by eval/video_metrics.h (shapes-video's motion and
// colour+shape accuracies), their frame-to-frame change against the real clips', and, where a
// video encoder is given ('classifier') or shipped for the dataset (genvis-shapes-video-encoder),
// FVD[<encoder>] against reference_num real clips of the reference split and the encoder heads'
// accuracies (eval/video_metrics.h).
//
// In a distributed run (core/distributed.h active: `genvis eval --nproc N` or torchrun's
// variables) each process generates its share of the batches (batch k on rank k % N, with the seed
// one process gives it) and every process ends with all of them, so the report equals one
// process's; the caller writes it once (rank 0).
//
//   EvalRun run;
//   run.model = "models/genvis-emoji-32";  run.dataset = "emoji";  run.split = "heldout";
//   EvalReport report = run_evaluation(run);        // report.result: result.json's object
//   write_evaluation(report, "eval/emoji-32");       // result.json, result.md, samples.png
#pragma once
#include "eval/evaluation.h"

#include <ATen/ATen.h>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::eval {

struct EvalRun {
  // What is scored: exactly one of these three.
  std::string model;                 // text-to-image model (folder or file) to generate with
  std::string images;                // folder of PNG images (+ .txt captions, + .json facts)
  bool images_from_dataset = false;  // the split's own images (the real-data row)

  std::string dataset = "emoji", path;  // captions and reference; path for folder datasets
  std::string split = "train";          // where captions come from: train or heldout
  std::string reference_split;          // the real reference images ("" = split)
  int64_t num = 200;                    // images scored (0 = every sample of the split / folder)
  int64_t reference_num = 2000;         // real reference images (0 = the whole split)
  uint64_t seed = 0;                    // caption and reference choice, KID subsets; image i's noise seed + i
  int64_t resolution = 0;               // reference rendering size (0 = the scored images' size)
  int64_t k = 100;                      // R-precision candidates per image

  // Generation (model only).
  int64_t steps = 20, size = 0, batch = 16;  // size 0 = the model's native size
  int64_t frames = 0;                        // video datasets: frames per clip (0 = the model's native count)
  int64_t width = 0, height = 0;             // video datasets: a non-square clip size (0 = size)
  int64_t cache_interval = 1;                // step caching (pipelines::Request::cache_interval; 1 = off)
  double cache_threshold = 0;                // step caching (pipelines::Request::cache_threshold; 0 = off)
  double cfg_scale = 7.0;
  std::string sampler = "euler";
  nlohmann::json extras = nlohmann::json::object();  // family settings for every request (generate's --extras)
  at::Device device = at::Device(at::kCPU);
  at::ScalarType dtype = at::kFloat;
  std::string quant;  // "int8": quantised generation (pipelines::ModelSource::quant)

  // Judges ("" = the dataset's shipped ones; inception "" = $GENVIS_INCEPTION when set).
  std::string encoder, classifier, inception;
  std::string damsm;      // a DAMSM folder: R-precision and clip-score analogue in its space ("" = the dataset's, if installed)
  std::string name;       // the report's row name ("" = the model or folder name)
  std::string cache_dir;  // reference feature cache ("" = default_cache_dir())
  bool no_cache = false;  // recompute the reference features and do not store them
};

struct EvalReport {
  nlohmann::ordered_json result;     // result.json: name, dataset, splits, source, generation, metrics, ...
  std::vector<std::string> columns;  // result.md's columns: name, dataset, split, num, then every metric
  EvalSet set;                       // what was scored (images, captions, facts) for samples.png
};

// UsageError naming the field ('num', 'batch', 'images', ...) for a bad setting or a dataset
// without judges; LoadError for a model, folder or judge that cannot be read.
EvalReport run_evaluation(const EvalRun& run);

// Writes result.json, result.md and samples.png (16 samples) into `folder` (created).
void write_evaluation(const EvalReport& report, const std::string& folder);

// eval/<name>: where `genvis eval` writes a report when no folder is given.
std::string default_evaluation_folder(const EvalReport& report);

}  // namespace genvis::eval
