#include "models/clip_text/clip_text_loader.h"

#include "core/error.h"
#include "core/file.h"
#include "core/text.h"

#include <array>
#include <map>
#include <torch/torch.h>

namespace genvis::models {
namespace {

// OpenCLIP name -> transformers name, outside and inside a residual block.
constexpr std::array<std::pair<const char*, const char*>, 4> kTopLevelKeys{{
    {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
    {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
    {"ln_final.weight", "text_model.final_layer_norm.weight"},
    {"ln_final.bias", "text_model.final_layer_norm.bias"},
}};
constexpr std::array<std::pair<const char*, const char*>, 5> kBlockPrefixes{{
    {"ln_1.", "layer_norm1."},
    {"ln_2.", "layer_norm2."},
    {"mlp.c_fc.", "mlp.fc1."},
    {"mlp.c_proj.", "mlp.fc2."},
    {"attn.out_proj.", "self_attn.out_proj."},
}};
constexpr const char* kOpenCLIPBlock = "transformer.resblocks.";
constexpr const char* kHFLayer = "text_model.encoder.layers.";
constexpr std::array<const char*, 3> kQKV{"q_proj", "k_proj", "v_proj"};


// "N.rest" after `prefix` -> {N, rest}; nullopt when the name is not of that form.
std::optional<std::pair<int64_t, std::string>> split_layer(const std::string& name, const std::string& prefix) {
  if (!starts_with(name, prefix)) return std::nullopt;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return std::nullopt;
  const std::string index = name.substr(prefix.size(), dot - prefix.size());
  if (index.find_first_not_of("0123456789") != std::string::npos || index.size() > 6) return std::nullopt;
  return std::make_pair(std::stoll(index), name.substr(dot + 1));
}

class OpenCLIPView : public io::WeightReader {
public:
  OpenCLIPView(io::WeightReader& base, const std::string& prefix) : base_(base) {
    for (const auto& info : base.tensors()) {
      if (!starts_with(info.name, prefix)) continue;
      const std::string name = info.name.substr(prefix.size());
      add_entries(info, name);
    }
  }

  const std::vector<io::TensorInfo>& tensors() const override { return infos_; }
  const std::map<std::string, std::string>& metadata() const override { return base_.metadata(); }
  std::string format() const override { return base_.format(); }
  const std::string& path() const override { return base_.path(); }

  at::Tensor load(const std::string& name) override {
    const auto it = entries_.find(name);
    if (it == entries_.end()) throw LoadError(path(), name, "no such tensor (OpenCLIP view)");
    const Entry& e = it->second;
    at::Tensor t = base_.load(e.source);
    switch (e.kind) {
      case Kind::Copy: return t;
      case Kind::Part: return t.chunk(3, 0)[e.part].contiguous();
      case Kind::Transpose: return t.t().contiguous();
    }
    return t;
  }

private:
  enum class Kind { Copy, Part, Transpose };
  struct Entry {
    std::string source;
    Kind kind = Kind::Copy;
    int part = 0;
  };

  void add(const io::TensorInfo& info, std::string name, std::vector<int64_t> shape, Kind kind, int part = 0) {
    io::TensorInfo out = info;
    out.name = name;
    out.shape = std::move(shape);
    out.nbytes = io::checked_numel(out.shape).value_or(0) * io::dtype_size(out.dtype);
    entries_[name] = {info.name, kind, part};
    infos_.push_back(std::move(out));
  }

  void add_entries(const io::TensorInfo& info, const std::string& name) {
    for (const auto& [from, to] : kTopLevelKeys)
      if (name == from) return add(info, to, info.shape, Kind::Copy);
    // [C, P] (x @ proj) -> Linear weight [P, C]
    if (name == "text_projection" && info.shape.size() == 2)
      return add(info, "text_projection.weight", {info.shape[1], info.shape[0]}, Kind::Transpose);
    if (const auto layer = split_layer(name, kOpenCLIPBlock)) {
      const std::string hf = kHFLayer + std::to_string(layer->first) + ".";
      const std::string& rest = layer->second;
      for (const auto& [from, to] : kBlockPrefixes)
        if (starts_with(rest, from)) return add(info, hf + to + rest.substr(std::string(from).size()), info.shape, Kind::Copy);
      // in_proj [3C, ...] = [q; k; v]
      const bool in_weight = rest == "attn.in_proj_weight", in_bias = rest == "attn.in_proj_bias";
      if ((in_weight || in_bias) && !info.shape.empty() && info.shape[0] % 3 == 0) {
        std::vector<int64_t> shape = info.shape;
        shape[0] /= 3;
        for (int i = 0; i < 3; ++i)
          add(info, hf + "self_attn." + kQKV[i] + (in_weight ? ".weight" : ".bias"), shape, Kind::Part, i);
        return;
      }
    }
    add(info, name, info.shape, Kind::Copy);  // unknown: reported as unexpected by the loader
  }

  io::WeightReader& base_;
  std::vector<io::TensorInfo> infos_;
  std::map<std::string, Entry> entries_;
};

const CLIPTextConfig& config_of(torch::nn::Module& model) {
  if (auto* m = dynamic_cast<CLIPTextModelImpl*>(&model)) return m->text_model->config;
  if (auto* m = dynamic_cast<CLIPTextModelWithProjectionImpl*>(&model)) return m->text_model->config;
  if (auto* m = dynamic_cast<CLIPTextTransformerImpl*>(&model)) return m->config;
  throw UsageError("load_clip_text_weights: '" + model.name() + "' is not a CLIP text model");
}

}  // namespace

std::unique_ptr<io::WeightReader> open_clip_as_transformers(io::WeightReader& reader, const std::string& prefix) {
  return std::make_unique<OpenCLIPView>(reader, prefix);
}

nn::LoadReport load_clip_text_weights(torch::nn::Module& model, io::WeightReader& reader, const std::string& prefix,
                                      CLIPTextLayout layout, const CLIPTextLoadOptions& options) {
  const CLIPTextConfig& config = config_of(model);
  const bool has_projection = dynamic_cast<CLIPTextModelWithProjectionImpl*>(&model) != nullptr;
  const bool bare_transformer = dynamic_cast<CLIPTextTransformerImpl*>(&model) != nullptr;

  nn::LoadOptions load;
  load.dtype = options.dtype;
  load.ignore_unexpected = [has_projection](const std::string& name) {
    return name == "text_model.embeddings.position_ids" || name == "logit_scale" ||
           (!has_projection && name == "text_projection.weight");
  };
  std::unique_ptr<io::WeightReader> view;
  io::WeightReader* source = &reader;
  if (layout == CLIPTextLayout::OpenCLIP) {
    view = open_clip_as_transformers(reader, prefix);
    source = view.get();
  } else {
    load.prefix = prefix;
  }
  const int64_t layers = config.num_hidden_layers;
  const bool drop_extra = layout == CLIPTextLayout::OpenCLIP && options.drop_extra_layers;
  load.key_map = [drop_extra, layers, bare_transformer](const std::string& file_name) {
    std::string name = file_name;
    // Some SD1 files predate transformers' text_model wrapper: "embeddings.", "encoder.", ...
    if (!starts_with(name, "text_model.") && !starts_with(name, "text_projection") &&
        (starts_with(name, "embeddings.") || starts_with(name, "encoder.") || starts_with(name, "final_layer_norm.")))
      name = "text_model." + name;
    if (drop_extra)
      if (const auto layer = split_layer(name, kHFLayer); layer && layer->first >= layers) return std::string();
    if (bare_transformer && starts_with(name, "text_model.")) name = name.substr(std::string("text_model.").size());
    return name;
  };
  return nn::load_state_dict(model, *source, load);
}

std::string find_clip_text_weights(const std::string& folder) {
  return io::find_weight_file(
      folder, {"model.safetensors", "model.safetensors.index.json", "model.fp16.safetensors", "pytorch_model.bin", "model.gguf"},
      "CLIP text encoder");
}

namespace {

template <typename Model>
Model load_folder(const std::string& folder, const CLIPTextLoadOptions& options) {
  const CLIPTextConfig config = CLIPTextConfig::from_file(folder + "/config.json");
  const std::string weights = find_clip_text_weights(folder);
  Model model(config);
  auto reader = io::open_weights(weights);
  load_clip_text_weights(*model, *reader, "", CLIPTextLayout::Transformers, options);
  model->to(options.device);
  model->eval();
  return model;
}

}  // namespace

CLIPTextModel load_clip_text_model(const std::string& folder, const CLIPTextLoadOptions& options) {
  return load_folder<CLIPTextModel>(folder, options);
}

CLIPTextModelWithProjection load_clip_text_model_with_projection(const std::string& folder,
                                                                 const CLIPTextLoadOptions& options) {
  return load_folder<CLIPTextModelWithProjection>(folder, options);
}

std::vector<std::pair<std::string, at::Tensor>> transformers_to_open_clip(
    const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  // layer -> "weight"/"bias" -> q, k, v
  std::map<int64_t, std::map<std::string, std::array<at::Tensor, 3>>> qkv;
  std::vector<std::string> unknown;
  for (const auto& [name, t] : tensors) {
    if (name == "text_model.embeddings.position_ids") continue;
    if (name == "text_projection.weight") {
      out.emplace_back("text_projection", t.t().contiguous());
      continue;
    }
    bool placed = false;
    for (const auto& [open_clip, hf] : kTopLevelKeys)
      if (name == hf) {
        out.emplace_back(open_clip, t);
        placed = true;
      }
    if (const auto layer = split_layer(name, kHFLayer); !placed && layer) {
      const std::string block = kOpenCLIPBlock + std::to_string(layer->first) + ".";
      const std::string& rest = layer->second;
      for (const auto& [open_clip, hf] : kBlockPrefixes)
        if (!placed && starts_with(rest, hf)) {
          out.emplace_back(block + open_clip + rest.substr(std::string(hf).size()), t);
          placed = true;
        }
      for (int i = 0; i < 3 && !placed; ++i)
        for (const char* kind : {"weight", "bias"})
          if (rest == std::string("self_attn.") + kQKV[i] + "." + kind) {
            qkv[layer->first][kind][i] = t;
            placed = true;
          }
    }
    if (!placed) unknown.push_back(name);
  }
  for (const auto& [layer, kinds] : qkv)
    for (const auto& [kind, parts] : kinds) {
      const std::string name = kOpenCLIPBlock + std::to_string(layer) + ".attn.in_proj_" + kind;
      if (!parts[0].defined() || !parts[1].defined() || !parts[2].defined()) unknown.push_back(name + " (incomplete q/k/v)");
      else out.emplace_back(name, torch::cat({parts[0], parts[1], parts[2]}, 0));
    }
  if (!unknown.empty()) {
    std::string what = "no OpenCLIP name for " + std::to_string(unknown.size()) + " tensors:";
    for (const auto& n : unknown) what += " " + n;
    throw LoadError("", what);
  }
  return out;
}

}  // namespace genvis::models
