#include "support/wan_layouts.h"

#include "io/safetensors.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "models/autoencoder_kl_wan/wan_vae_original_keys.h"
#include "models/clip_vision/clip_vision_original_keys.h"
#include "models/umt5/umt5_original_keys.h"
#include "models/wan/wan_original_keys.h"
#include "support/test_support.h"
#include "support/torch_checkpoint_writer.h"

#include <algorithm>
#include <filesystem>
#include <map>

namespace genvis::test {
namespace fs = std::filesystem;

std::string fixture_case_file(const std::string& case_name, const std::string& suffix) {
  const nlohmann::json c = fixture_case(case_name);
  for (const auto& f : c.at("files"))
    if (f.get<std::string>().ends_with(suffix)) return fixtures_dir() + "/" + f.get<std::string>();
  ADD_FAILURE() << case_name << " lists no file ending in " << suffix;
  return {};
}

std::string fixture_case_folder(const std::string& case_name) {
  return fs::path(fixture_case_file(case_name, "config.json")).parent_path().string();
}

NamedTensors to_layout(io::WeightReader& from, const nn::KeyTable& table, at::ScalarType dtype,
                       const std::string& prefix,
                       const std::function<at::Tensor(const std::string&, const at::Tensor&)>& reshape) {
  // file name -> its parts in order
  std::map<std::string, std::vector<std::pair<size_t, at::Tensor>>> parts;
  std::map<std::string, size_t> expected_parts;
  for (const auto& t : from.tensors()) {
    const auto file = table.to_file(t.name);
    if (!file) {
      ADD_FAILURE() << "the key table has no file name for " << t.name;
      continue;
    }
    at::Tensor value = from.load(t.name).clone();  // may alias the file, which closes with `from`
    if (at::isFloatingType(value.scalar_type())) value = value.to(dtype);
    parts[file->name].emplace_back(file->part, value);
    expected_parts[file->name] = file->parts;
  }
  NamedTensors out;
  for (auto& [name, pieces] : parts) {
    EXPECT_EQ(pieces.size(), expected_parts[name]) << name;
    std::sort(pieces.begin(), pieces.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<at::Tensor> values;
    for (const auto& p : pieces) values.push_back(p.second);
    at::Tensor value = values.size() == 1 ? values[0] : at::cat(values, 0);
    if (reshape) value = reshape(name, value);
    out.emplace_back(prefix + name, value.contiguous());
  }
  return out;
}

std::vector<std::string> names_of(const NamedTensors& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

NamedTensors umt5_in_release_layout(at::ScalarType dtype) {
  const auto reader = io::open_weights(fixture_case_file("umt5_encoder", "model.safetensors"));
  return to_layout(*reader, models::umt5_original_keys(), dtype);
}

NamedTensors clip_vision_in_release_layout(at::ScalarType dtype) {
  const auto reader = io::open_weights(fixture_case_file("clip_vision", "model.safetensors"));
  // The release keeps the class and position embeddings with their batch dims ([1,1,C], [1,N,C]).
  NamedTensors out = to_layout(*reader, models::clip_vision_wan_original_keys(), dtype, "",
                               [](const std::string& name, const at::Tensor& t) {
                                 if (name == "visual.cls_embedding") return t.view({1, 1, -1});
                                 if (name == "visual.pos_embedding") return t.unsqueeze(0);
                                 return t;
                               });
  // What else the release's file holds: the projection head and a text tower.
  const int64_t hidden = reader->find("vision_model.post_layernorm.weight")->shape.at(0);
  out.emplace_back("visual.head", at::ones({hidden, 8}).to(dtype));
  out.emplace_back("textual.token_embedding.weight", at::ones({16, 8}).to(dtype));
  out.emplace_back("log_scale", at::ones({}).to(dtype));
  return out;
}

NamedTensors wan_transformer_in_release_layout(const std::string& case_name, at::ScalarType dtype,
                                               const std::string& prefix) {
  const auto reader = io::open_weights(fixture_case_file(case_name, "diffusion_pytorch_model.safetensors"));
  return to_layout(*reader, models::wan_transformer_original_keys(), dtype, prefix);
}

NamedTensors wan_vae_in_release_layout(at::ScalarType dtype) {
  const auto config = models::AutoencoderKLWanConfig::from_file(fixture_case_file("wan21_vae", "config.json"));
  const auto reader = io::open_weights(fixture_case_file("wan21_vae", "diffusion_pytorch_model.safetensors"));
  return to_layout(*reader, models::wan_vae_original_keys(config), dtype);
}

nlohmann::json wan_model_config(const std::string& case_name) {
  const nlohmann::json d = nlohmann::json::parse(read_bytes(fixture_case_file(case_name, "config.json")));
  const int64_t heads = d.at("num_attention_heads"), head_dim = d.at("attention_head_dim");
  // What the release's config.json holds (no text_dim or patch_size: those are read off shapes).
  return {{"_class_name", "WanModel"},
          {"_diffusers_version", "0.30.0"},
          {"model_type", d.at("image_dim").is_null() ? "t2v" : "i2v"},
          {"dim", heads * head_dim},
          {"eps", d.at("eps")},
          {"ffn_dim", d.at("ffn_dim")},
          {"freq_dim", d.at("freq_dim")},
          {"in_dim", d.at("in_channels")},
          {"num_heads", heads},
          {"num_layers", d.at("num_layers")},
          {"out_dim", d.at("out_channels")},
          {"text_len", 512}};
}

std::string write_wan_release_folder(const std::string& dir, const std::string& transformer_case,
                                     at::ScalarType dtype) {
  const fs::path root = fs::path(dir) / "Wan2.1-tiny";
  fs::create_directories(root / "google");
  write_bytes((root / "config.json").string(), wan_model_config(transformer_case).dump(2));
  io::save_safetensors((root / "diffusion_pytorch_model.safetensors").string(),
                       wan_transformer_in_release_layout(transformer_case, dtype));
  save_torch_checkpoint((root / "models_t5_umt5-xxl-enc-bf16.pth").string(), umt5_in_release_layout(dtype));
  save_torch_checkpoint((root / "Wan2.1_VAE.pth").string(), wan_vae_in_release_layout(dtype));
  fs::create_directory_symlink(fs::absolute(fs::path(fixture_case_file("umt5_tokenizer", "spiece.model")).parent_path()),
                               root / "google" / "umt5-xxl");
  if (wan_model_config(transformer_case).at("model_type") == "i2v")
    save_torch_checkpoint((root / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth").string(),
                          clip_vision_in_release_layout(dtype));
  return root.string();
}

}  // namespace genvis::test
