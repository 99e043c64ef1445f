// genvis' video encoder: a small 3D CNN trained to name what a clip shows (one classification
// head per fact: shape, colour, motion, ...), saved as a folder. Its penultimate features give the
// FVD analogue FVD[<folder name>] (Fréchet distance over per-clip features, as FVD does with I3D's;
// never comparable with published FVD) and its heads a second judge of generated clips beside the
// pixel scorer.
//
//   auto enc = genvis::models::VideoClassifier::load("models/genvis-shapes-video-encoder");
//   auto out = enc.run(videos);              // [B,3,T,H,W] in [0,1], any T, H, W
//   out.features;                            // [B,feature_dim] f32
//   out.logits[h];                           // [B,heads[h].classes.size()] f32
//   std::string label = enc.config().heads[0].classes[out.logits[0].argmax(1)[0].item<int64_t>()];
//
// Folder: config.json (VideoClassifierConfig), model.safetensors (f32).
//
// Config ({"model_type": "genvis_video_classifier", ...}):
//   image_size            frames are resized to image_size x image_size (area averaging down,
//                         bilinear up; a non-square frame is centre-cropped first), mapped to [-1,1]
//   block_out_channels    one level each: layers_per_block x (Conv3d 3x3x3 -> GroupNorm -> SiLU);
//                         between levels a 1x2x2 average pool (time is never pooled before the end)
//   feature_dim           the last level's mean over time and space beside its spatial maximum
//                         averaged over time (2 x channels) -> Linear -> SiLU: the features
//   heads                 [{"name", "key", "classes"}]: key is a JSON pointer into a clip's meta
//                         (e.g. "/motion/label") whose string value is the head's class; a Linear
//                         feature_dim -> classes.size() each
//
// Checkpoint keys: down_blocks.N.convs.M.{weight,bias}, down_blocks.N.norms.M.{weight,bias},
// feature_proj.{weight,bias} ([feature_dim, 2 x last channels]), heads.H.{weight,bias}. No BatchNorm, no dropout: train() and eval()
// compute the same function. The model runs on the CPU in f32 without gradients in run(), in
// chunks of 64 clips; any frame count >= 1 is accepted (a 1-frame clip is an image).
#pragma once
#include <ATen/ATen.h>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <vector>

namespace genvis::models {

struct VideoClassifierHead {
  std::string name;                  // "motion"
  std::string key;                   // JSON pointer into a clip's meta: "/motion/label"
  std::vector<std::string> classes;  // the labels, in logit order
};

struct VideoClassifierConfig {
  int64_t image_size = 32;
  std::vector<int64_t> block_out_channels = {16, 32, 64};
  int64_t layers_per_block = 1;
  int64_t norm_num_groups = 8;
  int64_t feature_dim = 128;
  std::vector<VideoClassifierHead> heads;

  // Every problem at once; empty when the config is usable.
  std::vector<std::string> validate() const;
  // Every unknown key, wrongly-typed and invalid value in one LoadError naming `source`.
  static VideoClassifierConfig from_json(const nlohmann::json& json, const std::string& source = "");
  static VideoClassifierConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

struct VideoClassifierModelImpl : torch::nn::Module {
  explicit VideoClassifierModelImpl(const VideoClassifierConfig& config);
  // x [B,3,T,S,S] in [-1,1], S = image_size -> [B,feature_dim] (after SiLU).
  at::Tensor features(const at::Tensor& x);
  // features -> one [B,classes] logit tensor per head.
  std::vector<at::Tensor> classify(const at::Tensor& features);

  VideoClassifierConfig config;
  torch::nn::ModuleList down_blocks{nullptr};  // each: convs (Conv3d), norms (GroupNorm)
  torch::nn::Linear feature_proj{nullptr};
  torch::nn::ModuleList heads{nullptr};  // of Linear
};
TORCH_MODULE(VideoClassifierModel);

// The class name at JSON pointer `key` of a clip's meta: a string as is, an integer or boolean as
// its JSON text; nullopt where the pointer is malformed, missing or names another kind of value.
std::optional<std::string> meta_class_name(const nlohmann::json& meta, const std::string& key);

class VideoClassifier {
public:
  explicit VideoClassifier(const VideoClassifierConfig& config);  // freshly initialised (torch's seed)
  // LoadError naming the folder or file for a missing/damaged config or weights, or weights that
  // do not fit the config.
  static VideoClassifier load(const std::string& folder);
  // Writes config.json and model.safetensors into `folder` (created), each atomically.
  void save(const std::string& folder) const;

  struct Outputs {
    at::Tensor features;              // [B,feature_dim] f32
    std::vector<at::Tensor> logits;   // per head [B,classes] f32
  };
  Outputs run(const at::Tensor& videos);  // [B,3,T,H,W] in [0,1]
  // [B,3,T,H,W] in [0,1] -> [B,3,T,S,S] in [-1,1] on the CPU (the model's input). UsageError for
  // another layout.
  at::Tensor preprocess(const at::Tensor& videos) const;
  // The class index of each head for a clip's meta (-1 where the meta has no such key or an
  // unknown label).
  std::vector<int64_t> labels_of(const nlohmann::json& meta) const;

  VideoClassifierModel& model() { return model_; }
  const VideoClassifierConfig& config() const { return model_->config; }

private:
  explicit VideoClassifier(VideoClassifierModel model) : model_(std::move(model)) {}
  VideoClassifierModel model_{nullptr};
};

}  // namespace genvis::models
