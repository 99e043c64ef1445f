#include "models/classifier/image_classifier.h"

#include "core/error.h"
#include "io/image_tensor.h"
#include "nn/module_folder.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kChunk = 256;

void check_images(const at::Tensor& images) {
  if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3) || images.size(2) < 1 || images.size(3) < 1)
    throw UsageError("image classifier: expected images [B,1,H,W] or [B,3,H,W] in [0,1], got " + c10::str(images.sizes()));
}

}  // namespace

ImageClassifier::ImageClassifier(const ImageClassifierConfig& config) : model_(config) { model_->eval(); }

ImageClassifier ImageClassifier::load(const std::string& folder) {
  const fs::path dir = folder;
  if (!fs::is_directory(dir)) throw LoadError(folder, "no such image classifier folder");
  const ImageClassifierConfig config = ImageClassifierConfig::from_file((dir / "config.json").string());
  ImageClassifierModel model(config);
  nn::load_module_weights(*model, dir.string());
  return ImageClassifier(std::move(model));
}

void ImageClassifier::save(const std::string& folder) const {
  nn::save_module_folder(*model_.ptr(), config().to_json(), folder);
}

at::Tensor ImageClassifier::preprocess(const at::Tensor& images) const {
  check_images(images);
  at::Tensor x = images.to(at::kCPU, at::kFloat);
  if (config().in_channels == 1 && x.size(1) == 3) {
    // ITU-R BT.601 luma: [B,3,H,W] -> [B,1,H,W]
    x = (x.narrow(1, 0, 1) * 0.299f + x.narrow(1, 1, 1) * 0.587f + x.narrow(1, 2, 1) * 0.114f);
  } else if (config().in_channels == 3 && x.size(1) == 1) {
    x = x.expand({-1, 3, -1, -1});
  }
  return io::square_resize(x, config().image_size) * 2.0 - 1.0;
}

ImageClassifier::Outputs ImageClassifier::run(const at::Tensor& images) {
  torch::NoGradGuard no_grad;
  model_->eval();
  const auto& c = config();
  check_images(images);
  if (images.size(0) == 0) return {torch::empty({0, c.feature_dim}), torch::empty({0, c.num_classes})};
  std::vector<at::Tensor> features, logits;
  for (int64_t i = 0; i < images.size(0); i += kChunk) {
    const at::Tensor x = preprocess(images.narrow(0, i, std::min(kChunk, images.size(0) - i)));
    features.push_back(model_->features(x).to(at::kFloat));
    logits.push_back(model_->classifier(features.back()).to(at::kFloat));
  }
  return {at::cat(features), at::cat(logits)};
}

std::vector<int64_t> ImageClassifier::predict(const at::Tensor& images) {
  const at::Tensor labels = logits(images).argmax(1).contiguous();
  return std::vector<int64_t>(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + labels.numel());
}

}  // namespace genvis::models
