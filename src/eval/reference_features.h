// Features of a dataset split's real images in one extractor's space, computed once and cached
// on disk: FID, KID and precision/recall compare generated images against them.
//
//   auto ref = genvis::eval::reference_features(*fx, *dataset, {.dataset_key = "emoji-train-32",
//                                                .num = 2000, .seed = 0, .cache_dir = dir});
//   ref.features;   // [num,D] f32
//   ref.cached;     // true when read from <cache_dir>
//
// The samples are choose_indices(split size, num, seed) (r_precision.h). The cache file is
// <cache_dir>/<dataset_key>-n<num>-s<seed>-<extractor name>-<first 12 hex of its fingerprint>
// .safetensors (features + metadata); a file whose metadata disagrees is recomputed and replaced.
#pragma once
#include "data/dataset.h"
#include "eval/feature_extractor.h"

#include <ATen/ATen.h>
#include <string>

namespace genvis::eval {

struct ReferenceOptions {
  std::string dataset_key;  // dataset name, split, resolution (and path hash for folders)
  size_t num = 0;           // 0 = the whole split
  uint64_t seed = 0;
  std::string cache_dir;    // empty = no caching
  int64_t batch = 256;
};

struct ReferenceFeatures {
  at::Tensor features;  // [num,D] f32
  std::string cache_file;
  bool cached = false;
};

ReferenceFeatures reference_features(FeatureExtractor& extractor, const data::Dataset& dataset,
                                     const ReferenceOptions& options);

// $GENVIS_CACHE_DIR, else $XDG_CACHE_HOME/genvis/eval, else $HOME/.cache/genvis/eval.
std::string default_cache_dir();

}  // namespace genvis::eval
