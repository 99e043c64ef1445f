// A trained module's own folder: config.json + model.safetensors (f32, the module's names), as
// genvis writes its judges, GANs and DALL·E components.
//
//   genvis::nn::save_module_folder(*model, config.to_json(), "runs/x/model");
//   genvis::nn::load_module_weights(*model, "runs/x/model");   // strict, f32, eval mode
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <torch/nn/module.h>

namespace genvis::nn {

// Creates `folder`, writes model.safetensors (nn::state_dict: parameters in f32, then buffers) and config.json
// (2-space indent), each atomically.
void save_module_folder(torch::nn::Module& module, const nlohmann::json& config, const std::string& folder);

// Loads <folder>/model.safetensors into `module` strictly (nn::load_state_dict, f32) and puts it
// in eval mode. LoadError naming the file when it is missing or does not fit.
void load_module_weights(torch::nn::Module& module, const std::string& folder);

}  // namespace genvis::nn
