#include "pipelines/common/text_gan.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "nn/module_folder.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::pipelines::text_gan {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string text_dir(const ModelSource& source) {
  return source.text_encoder.empty() ? (fs::path(source.model) / "text_encoder").string() : source.text_encoder;
}

}  // namespace

models::DamsmEncoder load_text_encoder(const ModelSource& source, const std::string& family) {
  if (source.model.empty()) throw UsageError("no model folder given");
  const fs::path root = source.model;
  if (!fs::is_directory(root)) throw LoadError(source.model, "a " + family + " model is a folder");
  for (const auto* s : {&source.unet, &source.vae, &source.text_encoder_2, &source.image_encoder, &source.vocab,
                        &source.scheduler_config})
    if (!s->empty())
      throw UsageError(family + " models take no component overrides other than --text-encoder (a DAMSM folder)");
  config::read_file((root / "model_index.json").string());  // present and valid JSON
  return models::DamsmEncoder::load(text_dir(source));
}

void check_embedding_dim(const ModelSource& source, const models::DamsmEncoder& damsm, int64_t generator_dim) {
  if (generator_dim != damsm.config().embedding_dim)
    throw LoadError(source.model, "the generator takes sentence vectors of " + std::to_string(generator_dim) +
                                      "; the DAMSM in " + text_dir(source) + " gives " +
                                      std::to_string(damsm.config().embedding_dim));
}

void load_generator_weights(const ModelSource& source, torch::nn::Module& generator) {
  nn::load_module_weights(generator, (fs::path(source.model) / "generator").string());
  generator.to(source.device, source.dtype);
}

std::string model_name(const ModelSource& source) {
  const fs::path root = source.model;
  const std::string name = root.filename().string();
  return name.empty() ? root.parent_path().filename().string() : name;
}

void save(torch::nn::Module& generator, const json& generator_config, const models::DamsmEncoder& text_encoder,
          const std::string& class_name, const std::string& generator_class, const std::string& folder) {
  const fs::path root = folder;
  nn::save_module_folder(generator, generator_config, (root / "generator").string());
  text_encoder.save((root / "text_encoder").string());
  const json index = {{"_class_name", class_name},
                      {"generator", json::array({"genvis", generator_class})},
                      {"text_encoder", json::array({"genvis", "DAMSM"})}};
  write_file_atomic((root / "model_index.json").string(), index.dump(2) + "\n");
}

void check_size(const Request& r, int64_t size, const std::string& family) {
  if (*r.width != size || *r.height != size)
    throw UsageError("'width'/'height': this " + family + " makes " + std::to_string(size) + "x" + std::to_string(size) +
                     " images only, not " + std::to_string(*r.width) + "x" + std::to_string(*r.height));
}

Result make_result(const at::Tensor& images, const std::vector<std::string>& prompts, const Request& r,
                   const std::string& model_name) {
  Result result;
  result.samples = ((images.to(at::kCPU, at::kFloat) + 1.0) * 0.5).clamp(0.0, 1.0);
  for (int64_t i = 0; i < r.batch; ++i) {
    io::GenerationParameters p;
    p.prompt = prompts[static_cast<size_t>(i)];
    p.seed = r.seed + static_cast<uint64_t>(i);
    p.width = static_cast<int>(images.size(3));
    p.height = static_cast<int>(images.size(2));
    p.model = model_name;
    result.parameters.push_back(std::move(p));
  }
  return result;
}

}  // namespace genvis::pipelines::text_gan
