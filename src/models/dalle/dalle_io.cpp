#include "models/dalle/dalle_io.h"

#include "nn/module_folder.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;

void load_weights(torch::nn::Module& module, const std::string& folder, const at::Device& device, at::ScalarType dtype) {
  nn::load_module_weights(module, folder);
  module.to(device, dtype);
}

}  // namespace

void save_dvae(DiscreteVAE& vae, const std::string& folder) { nn::save_module_folder(*vae, vae->config.to_json(), folder); }

DiscreteVAE load_dvae(const std::string& folder, const at::Device& device, at::ScalarType dtype) {
  DiscreteVAE vae(DVAEConfig::from_file((fs::path(folder) / "config.json").string()));
  load_weights(*vae, folder, device, dtype);
  return vae;
}

void save_dalle_transformer(DalleTransformer& model, const std::string& folder) {
  nn::save_module_folder(*model, model->config.to_json(), folder);
}

DalleTransformer load_dalle_transformer(const std::string& folder, const at::Device& device, at::ScalarType dtype) {
  DalleTransformer model(DalleConfig::from_file((fs::path(folder) / "config.json").string()));
  load_weights(*model, folder, device, dtype);
  return model;
}

}  // namespace genvis::models
