#include "models/video_classifier/video_classifier.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "io/image_tensor.h"
#include "nn/group_norm_silu.h"
#include "nn/module_folder.h"

#include <filesystem>
#include <set>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
constexpr int64_t kChunk = 64;

// One level: `layers` x (Conv3d 3x3x3 -> GroupNorm -> SiLU), registered as convs.M / norms.M.
struct LevelImpl : torch::nn::Module {
  LevelImpl(int64_t in, int64_t out, int64_t layers, int64_t groups) {
    convs = register_module("convs", torch::nn::ModuleList());
    norms = register_module("norms", torch::nn::ModuleList());
    for (int64_t i = 0; i < layers; ++i) {
      convs->push_back(torch::nn::Conv3d(torch::nn::Conv3dOptions(i == 0 ? in : out, out, 3).padding(1)));
      norms->push_back(torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, out)));
    }
  }
  at::Tensor forward(at::Tensor x) {
    for (size_t i = 0; i < convs->size(); ++i) {
      auto norm = torch::nn::GroupNorm(norms->ptr<torch::nn::GroupNormImpl>(i));
      x = nn::group_norm_silu(norm, convs->ptr<torch::nn::Conv3dImpl>(i)->forward(x));
    }
    return x;
  }
  torch::nn::ModuleList convs{nullptr}, norms{nullptr};
};
TORCH_MODULE(Level);

void check_videos(const at::Tensor& v) {
  if (v.dim() != 5 || v.size(1) != 3 || v.size(2) < 1 || v.size(3) < 1 || v.size(4) < 1)
    throw UsageError("video classifier: expected clips [B,3,T,H,W] in [0,1], got " + c10::str(v.sizes()));
}

}  // namespace

std::vector<std::string> VideoClassifierConfig::validate() const {
  std::vector<std::string> problems;
  if (image_size < 4 || image_size > 512) problems.push_back("image_size must be in 4..512");
  if (block_out_channels.empty() || block_out_channels.size() > 6) problems.push_back("block_out_channels must have 1..6 levels");
  if (layers_per_block < 1 || layers_per_block > 8) problems.push_back("layers_per_block must be in 1..8");
  if (norm_num_groups < 1) problems.push_back("norm_num_groups must be >= 1");
  else
    for (const int64_t c : block_out_channels)
      if (c < 1 || c % norm_num_groups != 0)
        problems.push_back("block_out_channels: " + std::to_string(c) + " is not a positive multiple of norm_num_groups " +
                           std::to_string(norm_num_groups));
  const auto levels = static_cast<int64_t>(block_out_channels.size());
  if (levels >= 1 && levels <= 6 && image_size >= 4 && (image_size >> (levels - 1)) < 1)
    problems.push_back("image_size " + std::to_string(image_size) + " is too small for " + std::to_string(levels) + " levels");
  if (feature_dim < 1) problems.push_back("feature_dim must be >= 1");
  if (heads.empty()) problems.push_back("heads: at least one head is needed");
  std::set<std::string> names;
  for (size_t i = 0; i < heads.size(); ++i) {
    const auto& h = heads[i];
    const std::string at = "heads[" + std::to_string(i) + "]";
    if (h.name.empty()) problems.push_back(at + ".name is empty");
    else if (!names.insert(h.name).second) problems.push_back(at + ".name " + h.name + " is used twice");
    if (h.key.empty() || h.key[0] != '/') problems.push_back(at + ".key must be a JSON pointer such as \"/motion/label\"");
    if (h.classes.size() < 2) problems.push_back(at + ".classes must name at least 2 classes");
    if (std::set<std::string>(h.classes.begin(), h.classes.end()).size() != h.classes.size())
      problems.push_back(at + ".classes has duplicates");
  }
  return problems;
}

VideoClassifierConfig VideoClassifierConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw LoadError(source, "video classifier config must be a JSON object");
  VideoClassifierConfig c;
  std::vector<std::string> problems;
  config::check_keys(j, "", {"heads"},
                     {"model_type", "image_size", "block_out_channels", "layers_per_block", "norm_num_groups", "feature_dim"},
                     problems);
  if (j.contains("model_type") && j.at("model_type") != "genvis_video_classifier")
    problems.push_back("model_type must be \"genvis_video_classifier\", got " + j.at("model_type").dump());
  config::read(j, "", "image_size", c.image_size, problems);
  config::read(j, "", "block_out_channels", c.block_out_channels, problems);
  config::read(j, "", "layers_per_block", c.layers_per_block, problems);
  config::read(j, "", "norm_num_groups", c.norm_num_groups, problems);
  config::read(j, "", "feature_dim", c.feature_dim, problems);
  if (j.contains("heads")) {
    if (!j.at("heads").is_array()) problems.push_back("heads must be a list of {name, key, classes}");
    else
      for (size_t i = 0; i < j.at("heads").size(); ++i) {
        const json& h = j.at("heads")[i];
        const std::string at = "heads[" + std::to_string(i) + "]";
        VideoClassifierHead head;
        if (config::check_keys(h, at, {"name", "key", "classes"}, {}, problems)) {
          config::read(h, at, "name", head.name, problems);
          config::read(h, at, "key", head.key, problems);
          config::read(h, at, "classes", head.classes, problems);
        }
        c.heads.push_back(std::move(head));
      }
  }
  if (problems.empty())
    for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) throw LoadError(source, "invalid video classifier config: " + config::describe(problems));
  return c;
}

VideoClassifierConfig VideoClassifierConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path, config::kMaxModelConfigBytes), path);
}

json VideoClassifierConfig::to_json() const {
  json hs = json::array();
  for (const auto& h : heads) hs.push_back({{"name", h.name}, {"key", h.key}, {"classes", h.classes}});
  return {{"model_type", "genvis_video_classifier"},
          {"image_size", image_size},
          {"block_out_channels", block_out_channels},
          {"layers_per_block", layers_per_block},
          {"norm_num_groups", norm_num_groups},
          {"feature_dim", feature_dim},
          {"heads", hs}};
}

VideoClassifierModelImpl::VideoClassifierModelImpl(const VideoClassifierConfig& c) : config(c) {
  if (const auto problems = c.validate(); !problems.empty()) throw UsageError("video classifier config: " + problems.front());
  const auto& ch = c.block_out_channels;
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < ch.size(); ++i)
    down_blocks->push_back(Level(i == 0 ? 3 : ch[i - 1], ch[i], c.layers_per_block, c.norm_num_groups));
  feature_proj = register_module("feature_proj", torch::nn::Linear(2 * ch.back(), c.feature_dim));
  heads = register_module("heads", torch::nn::ModuleList());
  for (const auto& h : c.heads) heads->push_back(torch::nn::Linear(c.feature_dim, static_cast<int64_t>(h.classes.size())));
}

at::Tensor VideoClassifierModelImpl::features(const at::Tensor& x) {
  const int64_t s = config.image_size;
  if (x.dim() != 5 || x.size(1) != 3 || x.size(2) < 1 || x.size(3) != s || x.size(4) != s)
    throw UsageError("video classifier: expected input [B,3,T," + std::to_string(s) + "," + std::to_string(s) + "], got " +
                     c10::str(x.sizes()));
  at::Tensor h = x;
  for (size_t i = 0; i < down_blocks->size(); ++i) {
    if (i > 0) h = at::avg_pool3d(h, {1, 2, 2});
    h = down_blocks->ptr<LevelImpl>(i)->forward(h);
  }
  // Per frame the spatial maximum (a small object is not averaged away by the background) beside
  // the mean, both averaged over time.
  const at::Tensor pooled = at::cat({h.mean({2, 3, 4}), std::get<0>(h.flatten(3).max(3)).mean(2)}, 1);  // [B,2C]
  return at::silu(feature_proj(pooled));  // [B,feature_dim]
}

std::vector<at::Tensor> VideoClassifierModelImpl::classify(const at::Tensor& features) {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < heads->size(); ++i) out.push_back(heads->ptr<torch::nn::LinearImpl>(i)->forward(features));
  return out;
}

VideoClassifier::VideoClassifier(const VideoClassifierConfig& config) : model_(config) { model_->eval(); }

VideoClassifier VideoClassifier::load(const std::string& folder) {
  const fs::path dir = folder;
  if (!fs::is_directory(dir)) throw LoadError(folder, "no such video classifier folder");
  const VideoClassifierConfig config = VideoClassifierConfig::from_file((dir / "config.json").string());
  VideoClassifierModel model(config);
  nn::load_module_weights(*model, dir.string());
  return VideoClassifier(std::move(model));
}

void VideoClassifier::save(const std::string& folder) const {
  nn::save_module_folder(*model_.ptr(), config().to_json(), folder);
}

at::Tensor VideoClassifier::preprocess(const at::Tensor& videos) const {
  check_videos(videos);
  const int64_t b = videos.size(0), t = videos.size(2), h = videos.size(3), w = videos.size(4);
  const int64_t s = config().image_size;
  const at::Tensor v = videos.to(at::kCPU, at::kFloat);
  if (h == s && w == s) return (v * 2.0 - 1.0).contiguous();
  const at::Tensor frames = v.permute({0, 2, 1, 3, 4}).reshape({b * t, 3, h, w});    // [B*T,3,H,W]
  const at::Tensor x = io::square_resize(frames, s).view({b, t, 3, s, s}).permute({0, 2, 1, 3, 4});
  return (x * 2.0 - 1.0).contiguous();
}

VideoClassifier::Outputs VideoClassifier::run(const at::Tensor& videos) {
  torch::NoGradGuard no_grad;
  model_->eval();
  check_videos(videos);
  Outputs out;
  std::vector<at::Tensor> features;
  std::vector<std::vector<at::Tensor>> logits(config().heads.size());
  for (int64_t i = 0; i < videos.size(0); i += kChunk) {
    features.push_back(model_->features(preprocess(videos.narrow(0, i, std::min(kChunk, videos.size(0) - i)))));
    const auto l = model_->classify(features.back());
    for (size_t h = 0; h < l.size(); ++h) logits[h].push_back(l[h]);
  }
  out.features = features.empty() ? torch::empty({0, config().feature_dim}) : at::cat(features);
  for (size_t h = 0; h < logits.size(); ++h)
    out.logits.push_back(logits[h].empty() ? torch::empty({0, static_cast<int64_t>(config().heads[h].classes.size())})
                                           : at::cat(logits[h]));
  return out;
}

std::optional<std::string> meta_class_name(const json& meta, const std::string& key) {
  try {
    const json& v = meta.at(json::json_pointer(key));
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_integer() || v.is_boolean()) return v.dump();
  } catch (const json::exception&) {
    // a malformed pointer or no such key
  }
  return std::nullopt;
}

std::vector<int64_t> VideoClassifier::labels_of(const json& meta) const {
  std::vector<int64_t> labels;
  for (const auto& h : config().heads) {
    int64_t label = -1;
    if (const auto value = meta_class_name(meta, h.key))
      for (size_t k = 0; k < h.classes.size(); ++k)
        if (h.classes[k] == *value) label = static_cast<int64_t>(k);
    labels.push_back(label);
  }
  return labels;
}

}  // namespace genvis::models
