#include "nn/module_folder.h"

#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "nn/state_dict.h"

#include <filesystem>

namespace genvis::nn {

namespace fs = std::filesystem;

void save_module_folder(torch::nn::Module& module, const nlohmann::json& config, const std::string& folder) {
  const fs::path dir = folder;
  fs::create_directories(dir);
  io::save_safetensors((dir / "model.safetensors").string(), state_dict(module, at::kFloat), {{"format", "pt"}});
  write_file_atomic((dir / "config.json").string(), config.dump(2) + "\n");
}

void load_module_weights(torch::nn::Module& module, const std::string& folder) {
  const fs::path weights = fs::path(folder) / "model.safetensors";
  if (!fs::exists(weights)) throw LoadError(weights.string(), "weights file is missing");
  const auto reader = io::open_weights(weights.string());
  load_state_dict(module, *reader, {.dtype = at::kFloat});
  module.eval();
}

}  // namespace genvis::nn
