// Feature extractors and classifiers backed by the Inception and classifier model families.
#include "eval/evaluation.h"
#include "eval/feature_extractor.h"

#include "core/hash.h"
#include "models/classifier/image_classifier.h"
#include "models/inception/fid_inception.h"

#include <filesystem>

namespace genvis::eval {

namespace {

std::string weights_fingerprint(const std::string& file) { return sha256_file_hex(file); }

class InceptionExtractor final : public FeatureExtractor {
public:
  explicit InceptionExtractor(const std::string& file)
      : net_(models::FIDInceptionV3Impl::load(file)), fingerprint_(weights_fingerprint(file)) {}
  std::string name() const override { return "inception"; }
  std::string fingerprint() const override { return fingerprint_; }
  bool is_standard_inception() const override { return true; }
  at::Tensor features(const at::Tensor& images) override { return net_->pool3_features(images); }

private:
  models::FIDInceptionV3 net_;
  std::string fingerprint_;
};

class ClassifierExtractor final : public FeatureExtractor {
public:
  explicit ClassifierExtractor(const std::string& folder)
      : classifier_(models::ImageClassifier::load(folder)),
        name_(folder_name(folder)),
        fingerprint_(weights_fingerprint((std::filesystem::path(folder) / "model.safetensors").string())) {}
  std::string name() const override { return name_; }
  std::string fingerprint() const override { return fingerprint_; }
  at::Tensor features(const at::Tensor& images) override { return classifier_.features(images).to(at::kCPU); }

private:
  models::ImageClassifier classifier_;
  std::string name_, fingerprint_;
};

class FolderClassifier final : public Classifier {
public:
  explicit FolderClassifier(const std::string& folder)
      : classifier_(models::ImageClassifier::load(folder)), name_(folder_name(folder)) {}
  std::string name() const override { return name_; }
  std::vector<int64_t> predict(const at::Tensor& images) override { return classifier_.predict(images); }

private:
  models::ImageClassifier classifier_;
  std::string name_;
};

}  // namespace

std::unique_ptr<FeatureExtractor> make_inception_extractor(const std::string& weights_file) {
  return std::make_unique<InceptionExtractor>(weights_file);
}

std::unique_ptr<FeatureExtractor> make_classifier_extractor(const std::string& folder) {
  return std::make_unique<ClassifierExtractor>(folder);
}

std::unique_ptr<Classifier> make_classifier(const std::string& folder) {
  return std::make_unique<FolderClassifier>(folder);
}

}  // namespace genvis::eval
