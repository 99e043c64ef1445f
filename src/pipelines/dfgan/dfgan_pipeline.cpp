#include "pipelines/dfgan/dfgan_pipeline.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "nn/state_dict.h"
#include "pipelines/common/noise.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

}  // namespace

DFGANModel load_dfgan_model(const ModelSource& source) {
  if (source.model.empty()) throw UsageError("no model folder given");
  const fs::path root = source.model;
  if (!fs::is_directory(root)) throw LoadError(source.model, "a DF-GAN model is a folder");
  for (const auto* s : {&source.unet, &source.vae, &source.text_encoder_2, &source.image_encoder, &source.vocab,
                        &source.scheduler_config})
    if (!s->empty()) throw UsageError("DF-GAN models take no component overrides other than --text-encoder (a DAMSM folder)");
  config::read_file((root / "model_index.json").string());  // present and valid JSON
  DFGANModel m;
  m.name = root.filename().string();
  if (m.name.empty()) m.name = root.parent_path().filename().string();
  const std::string text_dir = source.text_encoder.empty() ? (root / "text_encoder").string() : source.text_encoder;
  m.text_encoder.emplace(models::DamsmEncoder::load(text_dir));
  const fs::path gen = root / "generator";
  const auto config = models::DFGANConfig::from_file((gen / "config.json").string());
  if (config.cond_dim != m.text_encoder->config().embedding_dim)
    throw LoadError(source.model, "the generator takes sentence vectors of " + std::to_string(config.cond_dim) +
                                      "; the DAMSM in " + text_dir + " gives " +
                                      std::to_string(m.text_encoder->config().embedding_dim));
  const fs::path weights = gen / "model.safetensors";
  if (!fs::exists(weights)) throw LoadError(weights.string(), "weights file is missing");
  m.generator = models::DFGANGenerator(config);
  const auto reader = io::open_weights(weights.string());
  nn::load_state_dict(*m.generator, *reader, {.dtype = at::kFloat});
  m.generator->to(source.device, source.dtype);
  m.generator->eval();
  return m;
}

void save_dfgan_model(models::DFGANGenerator& generator, const models::DamsmEncoder& text_encoder, const std::string& folder) {
  const fs::path root = folder;
  fs::create_directories(root / "generator");
  io::save_safetensors((root / "generator" / "model.safetensors").string(), nn::state_dict(*generator, at::kFloat),
                       {{"format", "pt"}});
  write_file_atomic((root / "generator" / "config.json").string(), generator->config.to_json().dump(2) + "\n");
  text_encoder.save((root / "text_encoder").string());
  const json index = {{"_class_name", kDFGANClass},
                      {"generator", json::array({"genvis", "DFGANGenerator"})},
                      {"text_encoder", json::array({"genvis", "DAMSM"})}};
  write_file_atomic((root / "model_index.json").string(), index.dump(2) + "\n");
}

DFGANPipeline::DFGANPipeline(DFGANModel model) : model_(std::move(model)) {
  const int64_t s = model_.generator->config.image_size;
  info_.class_name = kDFGANClass;
  info_.family = "dfgan";
  info_.name = model_.name;
  info_.native_width = info_.native_height = s;
  info_.size_multiple = s;  // the generator makes its one size
  info_.max_batch = 256;
  info_.supports.text_to_image = true;
}

Result DFGANPipeline::run(const Request& r, const Callbacks& callbacks) {
  const auto& c = model_.generator->config;
  if (*r.width != c.image_size || *r.height != c.image_size)
    throw UsageError("'width'/'height': this DF-GAN makes " + std::to_string(c.image_size) + "x" +
                     std::to_string(c.image_size) + " images only, not " + std::to_string(*r.width) + "x" +
                     std::to_string(*r.height));
  if (callbacks.cancelled && callbacks.cancelled()) throw Cancelled();
  torch::NoGradGuard no_grad;
  const auto device = model_.generator->fc->weight.device();
  const auto dtype = model_.generator->fc->weight.scalar_type();
  // 1. Sentence vectors.
  const std::vector<std::string> prompts =
      r.prompts.empty() ? std::vector<std::string>(static_cast<size_t>(r.batch), r.prompt) : r.prompts;
  const at::Tensor sentence = model_.text_encoder->encode_texts(prompts).sentence.to(device, dtype);
  // 2. Noise, one generator per sample.
  at::Tensor z = r.init_noise.defined() ? r.init_noise.to(at::kFloat)
                                        : seeded_noise(r.seed, r.batch, {c.z_dim}, at::TensorOptions().dtype(at::kFloat));
  if (z.sizes() != at::IntArrayRef({r.batch, c.z_dim}))
    throw UsageError("init_noise must be [" + std::to_string(r.batch) + "," + std::to_string(c.z_dim) + "]");
  // 3. One forward pass.
  const at::Tensor images = model_.generator(z.to(device, dtype), sentence);
  if (callbacks.on_step) callbacks.on_step(1, 1);
  Result result;
  result.samples = ((images.to(at::kCPU, at::kFloat) + 1.0) * 0.5).clamp(0.0, 1.0);
  for (int64_t i = 0; i < r.batch; ++i) {
    io::GenerationParameters p;
    p.prompt = prompts[static_cast<size_t>(i)];
    p.seed = r.seed + static_cast<uint64_t>(i);
    p.width = p.height = static_cast<int>(c.image_size);
    p.model = info_.name;
    result.parameters.push_back(std::move(p));
  }
  return result;
}

std::unique_ptr<Pipeline> load_dfgan_pipeline(const ModelSource& source) {
  return std::make_unique<DFGANPipeline>(load_dfgan_model(source));
}

}  // namespace genvis::pipelines
