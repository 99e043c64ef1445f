#include "pipelines/dfgan/dfgan_pipeline.h"

#include "core/error.h"
#include "pipelines/common/noise.h"
#include "pipelines/common/text_gan.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::pipelines {

DFGANModel load_dfgan_model(const ModelSource& source) {
  DFGANModel m;
  m.text_encoder.emplace(text_gan::load_text_encoder(source, "DF-GAN"));
  m.name = text_gan::model_name(source);
  const auto config = models::DFGANConfig::from_file((std::filesystem::path(source.model) / "generator" / "config.json").string());
  text_gan::check_embedding_dim(source, *m.text_encoder, config.cond_dim);
  m.generator = models::DFGANGenerator(config);
  text_gan::load_generator_weights(source, *m.generator);
  return m;
}

void save_dfgan_model(models::DFGANGenerator& generator, const models::DamsmEncoder& text_encoder, const std::string& folder) {
  text_gan::save(*generator, generator->config.to_json(), text_encoder, kDFGANClass, "DFGANGenerator", folder);
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
  text_gan::check_size(r, c.image_size, "DF-GAN");
  if (callbacks.cancelled && callbacks.cancelled()) throw Cancelled();
  torch::NoGradGuard no_grad;
  const auto device = model_.generator->fc->weight.device();
  const auto dtype = model_.generator->fc->weight.scalar_type();
  // 1. Sentence vectors.
  const std::vector<std::string> prompts = prompts_of(r);
  const at::Tensor sentence = model_.text_encoder->encode_texts(prompts).sentence.to(device, dtype);
  // 2. Noise, one generator per sample.
  at::Tensor z = r.init_noise.defined() ? r.init_noise.to(at::kFloat)
                                        : seeded_noise(r.seed, r.batch, {c.z_dim}, at::TensorOptions().dtype(at::kFloat));
  if (z.sizes() != at::IntArrayRef({r.batch, c.z_dim}))
    throw UsageError("init_noise must be [" + std::to_string(r.batch) + "," + std::to_string(c.z_dim) + "]");
  // 3. One forward pass.
  const at::Tensor images = model_.generator(z.to(device, dtype), sentence);
  if (callbacks.on_step) callbacks.on_step(1, 1);
  return text_gan::make_result(images, prompts, r, info_.name);
}

std::unique_ptr<Pipeline> load_dfgan_pipeline(const ModelSource& source) {
  return std::make_unique<DFGANPipeline>(load_dfgan_model(source));
}

}  // namespace genvis::pipelines
