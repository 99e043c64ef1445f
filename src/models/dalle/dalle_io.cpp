#include "models/dalle/dalle_io.h"

#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "nn/state_dict.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;

void save_folder(torch::nn::Module& module, const nlohmann::json& config, const std::string& folder) {
  fs::create_directories(folder);
  io::save_safetensors((fs::path(folder) / "model.safetensors").string(), nn::state_dict(module, at::kFloat),
                       {{"format", "pt"}});
  write_file_atomic((fs::path(folder) / "config.json").string(), config.dump(2) + "\n");
}

void load_weights(torch::nn::Module& module, const std::string& folder, const at::Device& device, at::ScalarType dtype) {
  const fs::path weights = fs::path(folder) / "model.safetensors";
  if (!fs::exists(weights)) throw LoadError(weights.string(), "weights file is missing");
  const auto reader = io::open_weights(weights.string());
  nn::load_state_dict(module, *reader, {.dtype = at::kFloat});
  module.to(device, dtype);
  module.eval();
}

}  // namespace

void save_dvae(DiscreteVAE& vae, const std::string& folder) { save_folder(*vae, vae->config.to_json(), folder); }

DiscreteVAE load_dvae(const std::string& folder, const at::Device& device, at::ScalarType dtype) {
  DiscreteVAE vae(DVAEConfig::from_file((fs::path(folder) / "config.json").string()));
  load_weights(*vae, folder, device, dtype);
  return vae;
}

void save_dalle_transformer(DalleTransformer& model, const std::string& folder) {
  save_folder(*model, model->config.to_json(), folder);
}

DalleTransformer load_dalle_transformer(const std::string& folder, const at::Device& device, at::ScalarType dtype) {
  DalleTransformer model(DalleConfig::from_file((fs::path(folder) / "config.json").string()));
  load_weights(*model, folder, device, dtype);
  return model;
}

}  // namespace genvis::models
