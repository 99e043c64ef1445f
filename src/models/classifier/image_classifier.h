// genvis' image classifier as one object: the model and its preprocessing, saved as a folder.
// The evaluation suite's own feature encoder: its penultimate features give FID[genvis-fmnist]
// and its predictions the class accuracy of class-conditional generation.
//
//   auto clf = genvis::models::ImageClassifier::load("models/genvis-fmnist-classifier");
//   at::Tensor f = clf.features(images);                 // [B,C,H,W] in [0,1] -> [B,feature_dim] f32
//   at::Tensor l = clf.logits(images);                   // -> [B,num_classes] f32
//   std::vector<int64_t> labels = clf.predict(images);   // argmax of the logits
//   const std::string& name = clf.config().class_names[labels[0]];
//
// Folder: config.json (ImageClassifierConfig), model.safetensors (ImageClassifierModel's names,
// f32).
//
// Images: [B,1,H,W] or [B,3,H,W] float in [0,1], any size, any device. A 1-channel model takes
// RGB as grey by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B); a 3-channel model repeats a grey
// channel. A non-square image is centre-cropped to a square, then resized to image_size (area
// averaging down, bilinear up) and mapped to [-1,1]. The model runs on the CPU in f32, without
// gradients, in batches of 256.
#pragma once
#include "models/classifier/image_classifier_model.h"

#include <string>
#include <vector>

namespace genvis::models {

class ImageClassifier {
public:
  // A freshly initialised model (torch's global seed).
  explicit ImageClassifier(const ImageClassifierConfig& config);

  // LoadError naming the folder or file for a missing folder, config or weights, for a damaged
  // file, or for weights that do not fit the config (every missing, unexpected and mis-shaped
  // tensor at once).
  static ImageClassifier load(const std::string& folder);
  // Writes config.json and model.safetensors into `folder` (created if needed), each atomically.
  void save(const std::string& folder) const;

  struct Outputs {
    at::Tensor features;  // [B,feature_dim] f32
    at::Tensor logits;    // [B,num_classes] f32
  };
  // Both in one pass (features for FID, logits for accuracy).
  Outputs run(const at::Tensor& images);
  at::Tensor features(const at::Tensor& images) { return run(images).features; }
  at::Tensor logits(const at::Tensor& images) { return run(images).logits; }
  // The most likely label of each image.
  std::vector<int64_t> predict(const at::Tensor& images);

  // [B,1|3,H,W] in [0,1] -> [B,in_channels,S,S] in [-1,1] on the CPU, the model's input.
  at::Tensor preprocess(const at::Tensor& images) const;

  ImageClassifierModel& model() { return model_; }
  const ImageClassifierConfig& config() const { return model_->config; }

private:
  explicit ImageClassifier(ImageClassifierModel model) : model_(std::move(model)) {}
  ImageClassifierModel model_{nullptr};
};

}  // namespace genvis::models
