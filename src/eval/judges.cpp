#include "eval/judges.h"

#include "core/error.h"
#include "eval/feature_extractor.h"
#include "pipelines/shipped_models.h"

#include <cstdlib>

namespace genvis::eval {

const std::vector<DefaultJudges>& default_judges_table() {
  static const std::vector<DefaultJudges> table = {
      {"emoji", "genvis-contrastive-emoji", "", false, "", "genvis-damsm-emoji"},
      {"fashion-mnist", "", "genvis-fmnist-classifier"},
      {"shapes", "", "", true},
      {"shapes-video", "", "", true, "genvis-shapes-video-encoder"},
  };
  return table;
}

namespace {

// The table's row for `dataset` (an empty row when it has none).
DefaultJudges defaults_for(const std::string& dataset) {
  for (const auto& row : default_judges_table())
    if (row.dataset == dataset) return row;
  return {};
}

}  // namespace

std::string default_encoder(const std::string& dataset) {
  const DefaultJudges defaults = defaults_for(dataset);
  if (defaults.encoder.empty())
    throw UsageError("'encoder': no shipped contrastive judge for dataset '" + dataset +
                     "'; give a contrastive encoder folder");
  const std::string folder = pipelines::find_shipped_model(defaults.encoder, "config.json");
  if (folder.empty()) throw UsageError("'encoder': the shipped judge " + defaults.encoder + " was not found");
  return folder;
}

std::string default_video_encoder(const std::string& dataset) {
  const DefaultJudges defaults = defaults_for(dataset);
  return defaults.video_encoder.empty() ? "" : pipelines::find_shipped_model(defaults.video_encoder, "config.json");
}

LoadedJudges load_judges(const JudgeSpec& spec) {
  const DefaultJudges defaults = defaults_for(spec.dataset);
  std::string encoder_dir = spec.encoder, classifier_dir = spec.classifier, inception = spec.inception;
  if (encoder_dir.empty() && !defaults.encoder.empty())
    encoder_dir = pipelines::find_shipped_model(defaults.encoder, "config.json");
  if (classifier_dir.empty() && !defaults.classifier.empty())
    classifier_dir = pipelines::find_shipped_model(defaults.classifier, "config.json");
  if (inception.empty())
    if (const char* env = std::getenv("GENVIS_INCEPTION"); env && *env) inception = env;

  LoadedJudges out;
  if (!encoder_dir.empty()) {
    out.encoder = std::make_shared<models::ContrastiveEncoder>(models::ContrastiveEncoder::load(encoder_dir));
    out.judges.text_image = out.encoder.get();
    out.judges.text_image_name = folder_name(encoder_dir);
    out.judges.extractors.push_back(make_contrastive_extractor(out.encoder, encoder_dir));
  }
  if (!classifier_dir.empty()) {
    ClassifierJudges c = make_classifier_judges(classifier_dir);
    out.judges.classifier = std::move(c.classifier);
    out.judges.extractors.push_back(std::move(c.features));
  }
  std::string damsm_dir = spec.damsm;
  if (damsm_dir.empty() && !defaults.damsm.empty()) damsm_dir = pipelines::find_shipped_model(defaults.damsm, "config.json");
  if (!damsm_dir.empty()) {
    out.damsm = std::make_shared<models::DamsmEncoder>(models::DamsmEncoder::load(damsm_dir));
    out.judges.more_text_image.push_back({folder_name(damsm_dir), damsm_embedder(*out.damsm)});
  }
  if (!inception.empty()) out.judges.extractors.push_back(make_inception_extractor(inception));
  out.inception = inception;
  if (out.judges.extractors.empty() && !out.judges.text_image && out.judges.more_text_image.empty() &&
      !defaults.pixel_scorer)
    throw UsageError("no judge for dataset '" + spec.dataset + "': give 'encoder', 'classifier' and/or 'inception'");
  return out;
}

}  // namespace genvis::eval
