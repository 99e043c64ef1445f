// Feature extractors and classifiers backed by the model families: the Inception FID network,
// the contrastive encoder's image tower and genvis' image classifier.
#include "eval/evaluation.h"
#include "eval/feature_extractor.h"

#include "core/hash.h"
#include "models/classifier/image_classifier.h"
#include "models/contrastive/contrastive_encoder.h"
#include "models/inception/fid_inception.h"

#include <filesystem>

namespace genvis::eval {

namespace {

namespace fs = std::filesystem;

class InceptionExtractor final : public FeatureExtractor {
public:
  explicit InceptionExtractor(const std::string& file)
      : net_(models::FIDInceptionV3Impl::load(file)), fingerprint_(sha256_file_hex(file)) {}
  std::string name() const override { return "inception"; }
  std::string fingerprint() const override { return fingerprint_; }
  bool is_standard_inception() const override { return true; }
  at::Tensor features(const at::Tensor& images) override { return net_->pool3_features(images); }

private:
  models::FIDInceptionV3 net_;
  std::string fingerprint_;
};

// A model folder's name and weights hash, for labels and cache keys.
class FolderExtractor : public FeatureExtractor {
public:
  FolderExtractor(const std::string& folder, const std::string& weights_file)
      : name_(folder_name(folder)), fingerprint_(sha256_file_hex((fs::path(folder) / weights_file).string())) {}
  std::string name() const override { return name_; }
  std::string fingerprint() const override { return fingerprint_; }

private:
  std::string name_, fingerprint_;
};

class ContrastiveExtractor final : public FolderExtractor {
public:
  ContrastiveExtractor(std::shared_ptr<models::ContrastiveEncoder> encoder, const std::string& folder)
      : FolderExtractor(folder, "model.safetensors"), encoder_(std::move(encoder)) {}
  at::Tensor features(const at::Tensor& images) override { return encoder_->embed_images(images).to(at::kCPU); }

private:
  std::shared_ptr<models::ContrastiveEncoder> encoder_;
};

class ClassifierExtractor final : public FolderExtractor {
public:
  ClassifierExtractor(std::shared_ptr<models::ImageClassifier> classifier, const std::string& folder)
      : FolderExtractor(folder, "model.safetensors"), classifier_(std::move(classifier)) {}
  at::Tensor features(const at::Tensor& images) override { return classifier_->features(images).to(at::kCPU); }

private:
  std::shared_ptr<models::ImageClassifier> classifier_;
};

class FolderClassifier final : public Classifier {
public:
  FolderClassifier(std::shared_ptr<models::ImageClassifier> classifier, const std::string& folder)
      : classifier_(std::move(classifier)), name_(folder_name(folder)) {}
  std::string name() const override { return name_; }
  std::vector<int64_t> predict(const at::Tensor& images) override { return classifier_->predict(images); }

private:
  std::shared_ptr<models::ImageClassifier> classifier_;
  std::string name_;
};

}  // namespace

std::unique_ptr<FeatureExtractor> make_inception_extractor(const std::string& weights_file) {
  return std::make_unique<InceptionExtractor>(weights_file);
}

std::unique_ptr<FeatureExtractor> make_contrastive_extractor(std::shared_ptr<models::ContrastiveEncoder> encoder,
                                                             const std::string& folder) {
  return std::make_unique<ContrastiveExtractor>(std::move(encoder), folder);
}

ClassifierJudges make_classifier_judges(const std::string& folder) {
  auto classifier = std::make_shared<models::ImageClassifier>(models::ImageClassifier::load(folder));
  return {std::make_unique<ClassifierExtractor>(classifier, folder),
          std::make_unique<FolderClassifier>(classifier, folder)};
}

}  // namespace genvis::eval
