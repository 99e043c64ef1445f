// The Wan 2.1 fixtures (diffusers/transformers layouts) rewritten into the layouts Wan is
// published in, for the tests of loading them: the release's folder (Wan-AI/Wan2.1-T2V-1.3B:
// config.json "WanModel", original-named safetensors, .pth text encoder and VAE, google/umt5-xxl/)
// and ComfyUI's repackaged single files. Names go through each family's key table backwards
// (nn::KeyTable::to_file; fused parts concatenated), so a table that cannot read its own output
// fails the tests; the tables' forward direction is checked against the published conversions in
// tests/models/wan_original_keys_test.cpp.
#pragma once
#include "io/weights.h"
#include "nn/key_table.h"

#include <ATen/ATen.h>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace genvis::test {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// A fixture case's file whose path ends in `suffix`, and the folder of its config.json (model cases).
std::string fixture_case_file(const std::string& case_name, const std::string& suffix);
std::string fixture_case_folder(const std::string& case_name);

// Every tensor of `from` under its file name in `table`'s layout (fused parts concatenated along
// dim 0, in order), cast to `dtype` (floating tensors), named prefix + name. `reshape` (optional)
// gives a tensor its file shape by its file name. A name the table cannot write fails the test.
NamedTensors to_layout(io::WeightReader& from, const nn::KeyTable& table, at::ScalarType dtype,
                       const std::string& prefix = "",
                       const std::function<at::Tensor(const std::string&, const at::Tensor&)>& reshape = {});

// The names of `tensors`, sorted.
std::vector<std::string> names_of(const NamedTensors& tensors);

// The UMT5 / CLIP vision fixtures in the Wan release's layout (the CLIP one with a stand-in text
// tower, textual.* and log_scale, which loading must skip).
NamedTensors umt5_in_release_layout(at::ScalarType dtype);
NamedTensors clip_vision_in_release_layout(at::ScalarType dtype);
NamedTensors wan_transformer_in_release_layout(const std::string& case_name, at::ScalarType dtype,
                                               const std::string& prefix = "");
NamedTensors wan_vae_in_release_layout(at::ScalarType dtype);

// The release's config.json (WanModel) for a transformer fixture case.
nlohmann::json wan_model_config(const std::string& case_name);

// A Wan release folder in `dir` made of the fixture components: config.json,
// diffusion_pytorch_model.safetensors, models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth,
// google/umt5-xxl/ (the tokenizer fixture, symlinked) and, for the I2V case,
// models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth. Weights in `dtype` (F32 or F16 keep
// the fixtures' values exactly). Returns the folder.
std::string write_wan_release_folder(const std::string& dir, const std::string& transformer_case,
                                     at::ScalarType dtype = at::kFloat);

}  // namespace genvis::test
