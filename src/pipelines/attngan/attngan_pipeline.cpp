#include "pipelines/attngan/attngan_pipeline.h"

#include "core/error.h"
#include "pipelines/common/noise.h"
#include "pipelines/common/text_gan.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::pipelines {

AttnGANModel load_attngan_model(const ModelSource& source) {
  AttnGANModel m;
  m.text_encoder.emplace(text_gan::load_text_encoder(source, "AttnGAN"));
  m.name = text_gan::model_name(source);
  const auto config =
      models::AttnGANConfig::from_file((std::filesystem::path(source.model) / "generator" / "config.json").string());
  text_gan::check_embedding_dim(source, *m.text_encoder, config.embedding_dim);
  m.generator = models::AttnGANGenerator(config);
  text_gan::load_generator_weights(source, *m.generator);
  return m;
}

void save_attngan_model(models::AttnGANGenerator& generator, const models::DamsmEncoder& text_encoder,
                        const std::string& folder) {
  text_gan::save(*generator, generator->config.to_json(), text_encoder, kAttnGANClass, "AttnGANGenerator", folder);
}

AttnGANPipeline::AttnGANPipeline(AttnGANModel model) : model_(std::move(model)) {
  const int64_t s = model_.generator->config.image_size;
  info_.class_name = kAttnGANClass;
  info_.family = "attngan";
  info_.name = model_.name;
  info_.native_width = info_.native_height = s;
  info_.size_multiple = s;  // the last stage's one size
  info_.max_batch = 256;
  info_.supports.text_to_image = true;
}

Result AttnGANPipeline::run(const Request& r, const Callbacks& callbacks) {
  const auto& c = model_.generator->config;
  text_gan::check_size(r, c.image_size, "AttnGAN");
  if (callbacks.cancelled && callbacks.cancelled()) throw Cancelled();
  torch::NoGradGuard no_grad;
  const auto device = model_.generator->ca_net->fc->weight.device();
  const auto dtype = model_.generator->ca_net->fc->weight.scalar_type();
  // 1. Sentence vectors and word features.
  const std::vector<std::string> prompts = prompts_of(r);
  const auto text = model_.text_encoder->encode_texts(prompts);
  // 2. Noise, one generator per sample: z, then the conditioning augmentation's eps.
  const int64_t width = c.z_dim + c.condition_dim;
  const at::Tensor noise = r.init_noise.defined()
                               ? r.init_noise.to(at::kFloat)
                               : seeded_noise(r.seed, r.batch, {width}, at::TensorOptions().dtype(at::kFloat));
  if (noise.sizes() != at::IntArrayRef({r.batch, width}))
    throw UsageError("init_noise must be [" + std::to_string(r.batch) + "," + std::to_string(width) +
                     "] (z_dim + condition_dim)");
  const at::Tensor n = noise.to(device, dtype);
  // 3. One forward pass through the stages.
  const auto out = model_.generator(n.narrow(1, 0, c.z_dim), n.narrow(1, c.z_dim, c.condition_dim),
                                    text.sentence.to(device, dtype), text.words.to(device, dtype), text.mask.to(device));
  if (callbacks.on_step) callbacks.on_step(1, 1);
  return text_gan::make_result(out.images.back(), prompts, r, info_.name);
}

std::unique_ptr<Pipeline> load_attngan_pipeline(const ModelSource& source) {
  return std::make_unique<AttnGANPipeline>(load_attngan_model(source));
}

}  // namespace genvis::pipelines
