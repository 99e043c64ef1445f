#include "train/attngan_recipe.h"

#include "core/error.h"
#include "core/log.h"
#include "data/loader.h"
#include "models/attngan/attngan_loss.h"
#include "models/attngan/attngan_model.h"
#include "models/damsm/damsm_encoder.h"
#include "pipelines/attngan/attngan_pipeline.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using recipe::check_keys;
using recipe::read;

// The model config with image_size = dataset.resolution and embedding_dim = the DAMSM's (0: not
// known yet, left out of the check).
json derive_model_config(const AttnGANRecipeConfig& c, int64_t embedding_dim, std::vector<std::string>& problems) {
  json m = c.model_config.is_object() ? c.model_config : json::object();
  if (m.contains("image_size") && m["image_size"] != json(c.dataset.resolution))
    problems.push_back("model.image_size is set by the recipe to dataset.resolution " +
                       std::to_string(c.dataset.resolution) + ", got " + m["image_size"].dump());
  m["image_size"] = c.dataset.resolution;
  if (m.contains("embedding_dim"))
    problems.push_back("model.embedding_dim is set by the recipe to the DAMSM's embedding_dim");
  m["embedding_dim"] = embedding_dim > 0 ? embedding_dim : 256;
  return m;
}

}  // namespace

AttnGANRecipeConfig AttnGANRecipeConfig::from_json(const json& j, const std::string& source) {
  AttnGANRecipeConfig c;
  std::vector<std::string> problems;
  text_gan::read_common(j, {"damsm_lambda", "kl_weight"}, source, c, problems);
  text_gan::read_damsm_lambda(j, c.damsm_lambda, problems);
  read(j, "config", "kl_weight", c.kl_weight, problems);
  if (!(c.kl_weight >= 0 && c.kl_weight <= 1000)) problems.push_back("kl_weight must be in [0, 1000]");
  // The official optimiser: Adam (0.5, 0.999) at a constant 2e-4 for both; the EMA of the generator.
  text_gan::read_group(j, "generator", {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999, .ema_decay = 0.999, .constant_lr = true},
                       c.generator, problems);
  text_gan::read_group(j, "discriminator", {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999, .constant_lr = true},
                       c.discriminator, problems);
  try {
    models::AttnGANConfig::from_json(derive_model_config(c, c.damsm.embedding_dim(), problems), "model");
  } catch (const Error& e) {
    problems.push_back(e.what());
  }
  recipe::throw_if_problems(source, problems);
  return c;
}

AttnGANRecipeConfig AttnGANRecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

AttnGANRecipeResult run_attngan_recipe(const AttnGANRecipeConfig& c, const TextImageEncoderRecipeOptions& o) {
  if (o.out_dir.empty()) throw UsageError("run_attngan_recipe: no output folder");
  const fs::path out = o.out_dir, model_dir = out / "model";
  AttnGANRecipeResult result;
  result.model_dir = model_dir.string();
  const auto done = [&](const char* stage, bool finished) { recipe::mark_stage(stage, finished, result.ran, result.skipped); };
  // 1 damsm
  auto damsm_opt = text_gan::begin(c, "attngan", out, o.resume, done, result.interrupted);
  if (!damsm_opt) return result;
  models::DamsmEncoder& damsm = *damsm_opt;

  // 2 data
  done("data", false);
  const auto ds = recipe::open_dataset(c.dataset, c.seed);
  const RenderedImageTextSet data = render_image_text_set(*ds, c.dataset.resolution);
  const models::DamsmTexts text = damsm.encode_texts(data.captions);  // padded to the longest caption
  // The DAMSM's image encoder judges the generator's final images: frozen, in eval mode.
  const text_gan::DamsmImageLoss damsm_loss(damsm, text, data.caption_ids);

  // 3 train
  done("train", false);
  std::vector<std::string> problems;
  const auto config =
      models::AttnGANConfig::from_json(derive_model_config(c, damsm.config().embedding_dim, problems), "model");
  if (!problems.empty()) throw UsageError(problems.front());
  torch::manual_seed(c.seed);
  models::AttnGANGenerator gen(config);
  models::AttnGANDiscriminators discs(config);
  const std::vector<int64_t> sizes = config.stage_sizes();
  const text_gan::BatchOrder order(ds, c);
  const auto rows_of = [&](int64_t step) { return order.rows(step); };
  const auto generate = [&](const at::Tensor& idx, Rng& rng) {
    const int64_t b = idx.size(0);
    const at::Tensor z = rng.randn({b, config.z_dim}), eps = rng.randn({b, config.condition_dim});
    return gen(z, eps, text.sentence.index_select(0, idx), text.words.index_select(0, idx), text.mask.index_select(0, idx));
  };
  const int64_t accum = c.train.grad_accum;
  Trainer trainer(
      {{.name = "discriminator",
        .module = discs.get(),
        .config = c.discriminator,
        .loss =
            [&](int64_t step, int64_t micro, Rng& rng) {
              const at::Tensor idx = rows_of(step * accum + micro);
              const at::Tensor x =
                  augment_images(data.images.index_select(0, idx), data.flip_ok.index_select(0, idx), c.augment, rng);
              const at::Tensor s = text.sentence.index_select(0, idx);
              std::vector<at::Tensor> fake;
              {
                torch::NoGradGuard no_grad;
                fake = generate(idx, rng).images;
              }
              at::Tensor loss = torch::zeros({}, x.options());
              for (size_t k = 0; k < sizes.size(); ++k) {
                auto& d = discs->stages[k];
                const at::Tensor real = d(text_gan::resize_to(x, sizes[k])), generated = d(fake[k]);
                loss = loss + models::attngan::discriminator_loss(
                                  d->unconditional(real), d->conditional(real, s), d->unconditional(generated),
                                  d->conditional(generated, s),
                                  d->conditional(models::attngan::mismatched(real), models::attngan::shifted(s)));
              }
              text_gan::check_finite(loss, "attngan", "discriminator", step);
              return loss;
            }},
       {.name = "generator",
        .module = gen.get(),
        .config = c.generator,
        .loss =
            [&](int64_t step, int64_t micro, Rng& rng) {
              // The step's captions; the generator never sees the real images.
              const at::Tensor idx = rows_of(step * accum + micro);
              const at::Tensor s = text.sentence.index_select(0, idx);
              const auto g = generate(idx, rng);
              at::Tensor loss = models::attngan::kl_loss(g.mu, g.logvar) * c.kl_weight;
              for (size_t k = 0; k < sizes.size(); ++k) {
                auto& d = discs->stages[k];
                const at::Tensor f = d(g.images[k]);
                loss = loss + models::attngan::generator_adversarial_loss(d->unconditional(f), d->conditional(f, s));
              }
              if (c.damsm_lambda > 0) loss = loss + c.damsm_lambda * damsm_loss(g.images.back(), idx);
              text_gan::check_finite(loss, "attngan", "generator", step);
              return loss;
            }}},
      {{"discriminator", 1}, {"generator", 1}}, c.train, (out / "train").string());
  trainer.extra_state = {{"recipe", "attngan"}, {"model", config.to_json()}, {"damsm", damsm.config().to_json()}};
  const text_gan::Validation validation(data, c.samples, out, c.dataset.resolution);
  if (trainer.resume_if_allowed(o.resume, "training")) recipe::truncate_log(validation.log_path(), trainer.step());
  const auto validate = [&](int64_t step) {
    torch::NoGradGuard no_grad;
    // The generator as exported (running statistics: the trainer validates in eval mode); the
    // last discriminator as it judges in training (batch statistics: its running ones are never
    // used).
    Rng rng(c.seed ^ 0x5eedULL);
    const at::Tensor fake = generate(validation.rows(), rng).images.back();  // [G*4,3,R,R]
    const at::Tensor s = text.sentence.index_select(0, validation.rows());
    const int64_t n = validation.n_real();
    auto& d = discs->stages.back();
    d->train();
    validation.report(fake, d->conditional(d(data.images.narrow(0, 0, n)), text.sentence.narrow(0, 0, n)),
                      d->conditional(d(fake.narrow(0, 0, n)), s.narrow(0, 0, n)), step);
    d->eval();
  };
  if (trainer.run(validate) == Trainer::Outcome::Interrupted) {
    result.interrupted = true;
    return result;
  }
  if (c.generator.ema_decay > 0) {
    // The generator without its EMA as well: what the EMA buys is measured on both (docs/results.md).
    gen->eval();
    pipelines::save_attngan_model(gen, damsm, (out / "model-no-ema").string());
  }
  trainer.apply_ema();
  gen->eval();

  // 4 export
  done("export", false);
  pipelines::save_attngan_model(gen, damsm, model_dir.string());
  log_info("model: " + model_dir.string());
  return result;
}

}  // namespace genvis::train
