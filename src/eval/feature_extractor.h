// Feature extractors that the distribution metrics (FID, KID, precision/recall) are computed in.
//
//   auto enc = std::make_shared<genvis::models::ContrastiveEncoder>(
//       genvis::models::ContrastiveEncoder::load("models/genvis-contrastive-emoji"));
//   auto fx = genvis::eval::make_contrastive_extractor(enc, "models/genvis-contrastive-emoji");
//   at::Tensor f = fx->features(images);   // [B,3,H,W] in [0,1] -> [B,D] f32 on the CPU
//   fx->label("FID");                      // "FID[genvis-contrastive-emoji]"
//
// Only the standard FID network (InceptionV3 pool3, pytorch-fid's weights) gives plain "FID",
// comparable with published numbers; every genvis-trained encoder labels its metrics with its
// name, so the two are never mixed in one column.
#pragma once
#include <ATen/ATen.h>
#include <memory>
#include <vector>
#include <string>

namespace genvis::models {
class ContrastiveEncoder;
}

namespace genvis::eval {

class FeatureExtractor {
public:
  virtual ~FeatureExtractor() = default;
  // Short name used in labels and cache keys: "inception" or the encoder folder's name.
  virtual std::string name() const = 0;
  // Identity of the weights (SHA-256 of the weights file): cached features are keyed on it.
  virtual std::string fingerprint() const = 0;
  // [B,3,H,W] float in [0,1], any size -> [B,D] f32 on the CPU. No gradients.
  virtual at::Tensor features(const at::Tensor& images) = 0;
  virtual bool is_standard_inception() const { return false; }
  // "FID" for the standard Inception network, "FID[<name>]" for any other.
  std::string label(const std::string& metric) const {
    return is_standard_inception() ? metric : metric + "[" + name() + "]";
  }
};

// The image tower of a genvis contrastive encoder (L2-normalised projections), loaded from
// `folder` (its weights give the fingerprint) and shared with the text-image judge.
std::unique_ptr<FeatureExtractor> make_contrastive_extractor(std::shared_ptr<models::ContrastiveEncoder> encoder,
                                                             const std::string& folder);
// pytorch-fid's InceptionV3 (pt_inception-2015-12-05-6726825d.pth or a safetensors copy).
std::unique_ptr<FeatureExtractor> make_inception_extractor(const std::string& weights_file);

// The name genvis uses for a model folder: its last path component ("models/x/" -> "x").
std::string folder_name(const std::string& path);

}  // namespace genvis::eval
