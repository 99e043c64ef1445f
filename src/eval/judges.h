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
  std::string encoder;     // shipped contrastive text-image encoder ("" = none)
  std::string classifier;  // shipped classifier (class accuracy + features; "" = none)
};
// One row per dataset that has shipped judges.
const std::vector<DefaultJudges>& default_judges_table();

struct JudgeSpec {
  std::string dataset;
  std::string encoder, classifier, inception;  // folders / file; "" = the dataset's default
};

struct LoadedJudges {
  Judges judges;
  std::shared_ptr<models::ContrastiveEncoder> encoder;  // owns judges.text_image
  std::string inception;                                // the Inception weights used ("" = none)
};

// The named judges, else the dataset's shipped ones (and $GENVIS_INCEPTION for the Inception
// network). UsageError "no judge for dataset ..." naming the options when none is found;
// LoadError for a judge that cannot be loaded.
LoadedJudges load_judges(const JudgeSpec& spec);

}  // namespace genvis::eval
