// Which judges score a dataset: a table of the built-in datasets' shipped judges (used when none
// is named), and loading the named or default ones.
//
//   LoadedJudges j = load_judges({.dataset = "emoji"});   // genvis-contrastive-emoji, shipped
//   nlohmann::ordered_json report = evaluate(set, j.judges, *reference, options);
#pragma once
#include "eval/evaluation.h"

#include <memory>
#include <string>
#include <vector>

namespace genvis::eval {

struct DefaultJudges {
  std::string dataset;
  std::string encoder;        // shipped contrastive text-image encoder ("" = none)
  std::string classifier;     // shipped classifier (class accuracy + features; "" = none)
  bool pixel_scorer = false;  // the samples' facts are checked from the pixels (shapes): a judge
                              // that needs no trained network
  std::string video_encoder;  // video datasets: shipped video encoder (FVD[...] and its heads; "" = none)
  std::string damsm;          // shipped DAMSM (a second R-precision judge; "" = none, skipped when not installed)
};
// One row per dataset that has shipped judges.
const std::vector<DefaultJudges>& default_judges_table();

// The shipped contrastive encoder's folder for `dataset`; UsageError naming 'encoder' when the
// dataset has none in the table or it is not installed.
std::string default_encoder(const std::string& dataset);

// The shipped video encoder's folder for a video `dataset`; "" when it has none or it is not
// installed (the FVD analogue is then left out of the report).
std::string default_video_encoder(const std::string& dataset);

struct JudgeSpec {
  std::string dataset;
  std::string encoder, classifier, inception;  // folders / file; "" = the dataset's default
  std::string damsm;                           // DAMSM folder; "" = the dataset's, if installed
};

struct LoadedJudges {
  Judges judges;
  std::shared_ptr<models::ContrastiveEncoder> encoder;  // owns judges.text_image
  std::string inception;                                // the Inception weights used ("" = none)
  std::shared_ptr<models::DamsmEncoder> damsm;          // owns judges.more_text_image's embedder
};

// The named judges, else the dataset's shipped ones (and $GENVIS_INCEPTION for the Inception
// network). A dataset with a pixel scorer needs no other judge (FID-type metrics then appear only
// for the judges given). UsageError "no judge for dataset ..." naming the options when none is
// found; LoadError for a judge that cannot be loaded.
LoadedJudges load_judges(const JudgeSpec& spec);

}  // namespace genvis::eval
