#include "eval/feature_extractor.h"

#include "core/hash.h"
#include "models/contrastive/contrastive_encoder.h"

#include <filesystem>

namespace genvis::eval {

std::string folder_name(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "models/x/" -> "models/x"
  const std::string name = p.filename().string();
  return name.empty() || name == "." ? "model" : name;
}

namespace {

class ContrastiveExtractor final : public FeatureExtractor {
public:
  explicit ContrastiveExtractor(const std::string& folder)
      : encoder_(models::ContrastiveEncoder::load(folder)),
        name_(folder_name(folder)),
        fingerprint_(sha256_file_hex((std::filesystem::path(folder) / "model.safetensors").string())) {}
  std::string name() const override { return name_; }
  std::string fingerprint() const override { return fingerprint_; }
  at::Tensor features(const at::Tensor& images) override { return encoder_.embed_images(images).to(at::kCPU); }

private:
  models::ContrastiveEncoder encoder_;
  std::string name_, fingerprint_;
};

}  // namespace

std::unique_ptr<FeatureExtractor> make_contrastive_extractor(const std::string& folder) {
  return std::make_unique<ContrastiveExtractor>(folder);
}

}  // namespace genvis::eval
