#include "train/dfgan_recipe.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/torch_compat.h"
#include "data/loader.h"
#include "models/damsm/damsm_encoder.h"
#include "models/dfgan/dfgan_loss.h"
#include "models/dfgan/dfgan_model.h"
#include "pipelines/dfgan/dfgan_pipeline.h"
#include "train/text_gan_recipe.h"

#include <filesystem>
#include <optional>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using recipe::check_keys;
using recipe::read;

// The model config with image_size = dataset.resolution and cond_dim = the DAMSM's width (0:
// not known yet, left out of the check).
json derive_model_config(const DFGANRecipeConfig& c, int64_t cond_dim, std::vector<std::string>& problems) {
  json m = c.model_config.is_object() ? c.model_config : json::object();
  if (m.contains("image_size") && m["image_size"] != json(c.dataset.resolution))
    problems.push_back("model.image_size is set by the recipe to dataset.resolution " +
                       std::to_string(c.dataset.resolution) + ", got " + m["image_size"].dump());
  m["image_size"] = c.dataset.resolution;
  if (m.contains("cond_dim")) problems.push_back("model.cond_dim is set by the recipe to the DAMSM's embedding_dim");
  m["cond_dim"] = cond_dim > 0 ? cond_dim : 256;
  return m;
}

}  // namespace

DFGANRecipeConfig DFGANRecipeConfig::from_json(const json& j, const std::string& source) {
  DFGANRecipeConfig c;
  std::vector<std::string> problems;
  text_gan::read_common(j, {"gradient_penalty", "damsm_lambda"}, source, c, problems);
  text_gan::read_damsm_lambda(j, c.damsm_lambda, problems);
  // DF-GAN's optimiser: Adam with betas (0, 0.9), no weight decay, no clipping.
  text_gan::read_group(j, "generator", {.lr = 1e-4, .beta1 = 0.0, .beta2 = 0.9}, c.generator, problems);
  text_gan::read_group(j, "discriminator", {.lr = 4e-4, .beta1 = 0.0, .beta2 = 0.9}, c.discriminator, problems);
  if (j.contains("gradient_penalty")) {
    const json& gp = j.at("gradient_penalty");
    if (check_keys(gp, "gradient_penalty", {}, {"k", "p", "every"}, problems)) {
      read(gp, "gradient_penalty", "k", c.gp_k, problems);
      read(gp, "gradient_penalty", "p", c.gp_p, problems);
      read(gp, "gradient_penalty", "every", c.gp_every, problems);
      if (!(c.gp_every >= 1 && c.gp_every <= 64)) problems.push_back("gradient_penalty.every must be in [1, 64]");
      if (!(c.gp_k >= 0 && c.gp_k <= 1000)) problems.push_back("gradient_penalty.k must be in [0, 1000]");
      if (!(c.gp_p >= 1 && c.gp_p <= 16)) problems.push_back("gradient_penalty.p must be in [1, 16]");
    }
  }
  if (c.train.autocast != "none" && c.gp_every == 1)
    problems.push_back("train.autocast: DF-GAN's gradient penalty (double backward) runs in f32; set gradient_penalty.every > 1 "
                       "to run the other discriminator steps and every generator step in " + c.train.autocast);

  const int64_t cond_dim = c.damsm.embedding_dim();
  try {
    models::DFGANConfig::from_json(derive_model_config(c, cond_dim, problems), "model");
  } catch (const Error& e) {
    problems.push_back(e.what());
  }
  recipe::throw_if_problems(source, problems);
  return c;
}

DFGANRecipeConfig DFGANRecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

DFGANRecipeResult run_dfgan_recipe(const DFGANRecipeConfig& c, const TextImageEncoderRecipeOptions& o) {
  if (o.out_dir.empty()) throw UsageError("run_dfgan_recipe: no output folder");
  const fs::path out = o.out_dir, model_dir = out / "model";
  DFGANRecipeResult result;
  result.model_dir = model_dir.string();
  const auto done = [&](const char* stage, bool finished) { recipe::mark_stage(stage, finished, result.ran, result.skipped); };
  // 1 damsm
  auto damsm_opt = text_gan::begin(c, "dfgan", out, o.resume, done, result.interrupted);
  if (!damsm_opt) return result;
  models::DamsmEncoder& damsm = *damsm_opt;

  // 2 data
  done("data", false);
  const auto ds = recipe::open_dataset(c.dataset, c.seed);
  const RenderedImageTextSet data = render_image_text_set(*ds, c.dataset.resolution);
  models::DamsmTexts texts = damsm.encode_texts(data.captions);  // frozen
  const at::Tensor& sentences = texts.sentence;                  // [N,D]
  // The DAMSM matching loss (damsm_lambda > 0) needs the word features too; the paper's DF-GAN
  // conditions on the sentence vector only, so without it they are dropped.
  std::optional<text_gan::DamsmImageLoss> damsm_loss;
  if (c.damsm_lambda > 0)
    damsm_loss.emplace(damsm, texts, data.caption_ids);
  else
    texts.words = at::Tensor();

  // 3 train
  done("train", false);
  std::vector<std::string> problems;
  const auto config = models::DFGANConfig::from_json(derive_model_config(c, damsm.config().embedding_dim, problems), "model");
  if (!problems.empty()) throw UsageError(problems.front());
  torch::manual_seed(c.seed);
  models::DFGANGenerator gen(config);
  models::DFGANDiscriminator disc(config);
  const text_gan::BatchOrder order(ds, c);
  const auto rows_of = [&](int64_t step) { return order.rows(step); };
  const int64_t accum = c.train.grad_accum;
  const at::DeviceType device = disc->parameters().front().device().type();  // the trainer's autocast device
  Trainer trainer(
      {{.name = "discriminator",
        .module = disc.get(),
        .config = c.discriminator,
        .loss =
            [&](int64_t step, int64_t micro, Rng& rng) {
              const at::Tensor idx = rows_of(step * accum + micro);
              // Lazy penalty: on its steps the whole discriminator pass runs in f32 (the double
              // backward), the penalty weighted gp_every times.
              const bool penalise = c.gp_k > 0 && step % c.gp_every == 0;
              std::optional<compat::AutocastGuard> f32_for_penalty;
              if (penalise) f32_for_penalty.emplace(device, at::kBFloat16, false);
              const at::Tensor x =
                  augment_images(data.images.index_select(0, idx), data.flip_ok.index_select(0, idx), c.augment, rng)
                      .requires_grad_(penalise);
              const at::Tensor s = sentences.index_select(0, idx).requires_grad_(penalise);
              const at::Tensor features = disc(x);
              const at::Tensor real = disc->score(features, s);
              const at::Tensor mismatched = disc->score(models::dfgan::roll_batch(features), s);
              const at::Tensor z = rng.randn({x.size(0), config.z_dim});
              at::Tensor fake_images;
              {
                torch::NoGradGuard no_grad;
                fake_images = gen(z, s.detach());
              }
              const at::Tensor fake = disc->score(disc(fake_images), s);
              at::Tensor loss = models::dfgan::discriminator_loss(real, fake, mismatched);
              if (penalise)
                loss = loss + static_cast<double>(c.gp_every) *
                                  models::dfgan::matching_aware_gradient_penalty(real, x, s, c.gp_k, c.gp_p);
              text_gan::check_finite(loss, "dfgan", "discriminator", step);
              return loss;
            }},
       {.name = "generator",
        .module = gen.get(),
        .config = c.generator,
        .loss =
            [&](int64_t step, int64_t micro, Rng& rng) {
              // The step's sentences; the generator never sees the real images.
              const at::Tensor idx = rows_of(step * accum + micro);
              const at::Tensor s = sentences.index_select(0, idx);
              const at::Tensor z = rng.randn({s.size(0), config.z_dim});
              const at::Tensor images = gen(z, s);
              at::Tensor loss = models::dfgan::generator_loss(disc->score(disc(images), s));
              if (damsm_loss) loss = loss + c.damsm_lambda * (*damsm_loss)(images, idx);
              text_gan::check_finite(loss, "dfgan", "generator", step);
              return loss;
            }}},
      {{"discriminator", 1}, {"generator", 1}}, c.train, (out / "train").string());
  trainer.extra_state = {{"recipe", "dfgan"}, {"model", config.to_json()}, {"damsm", damsm.config().to_json()}};
  const text_gan::Validation validation(data, c.samples, out, c.dataset.resolution);
  if (trainer.resume_if_allowed(o.resume, "training")) recipe::truncate_log(validation.log_path(), trainer.step());
  const auto validate = [&](int64_t step) {
    torch::NoGradGuard no_grad;
    gen->eval();
    disc->eval();
    const at::Tensor s = sentences.index_select(0, validation.rows());
    Rng rng(c.seed ^ 0x5eedULL);
    const at::Tensor fake = gen(rng.randn({s.size(0), config.z_dim}), s);  // [G*4,3,R,R]
    const int64_t n = validation.n_real();
    validation.report(fake, disc->score(disc(data.images.narrow(0, 0, n)), sentences.narrow(0, 0, n)),
                      disc->score(disc(fake.narrow(0, 0, n)), s.narrow(0, 0, n)), step);
    gen->train();
    disc->train();
  };
  if (trainer.run(validate) == Trainer::Outcome::Interrupted) {
    result.interrupted = true;
    return result;
  }
  if (c.generator.ema_decay > 0) {
    // The generator without its EMA as well: what the EMA buys is measured on both (docs/results.md).
    gen->eval();
    pipelines::save_dfgan_model(gen, damsm, (out / "model-no-ema").string());
  }
  trainer.apply_ema();
  gen->eval();

  // 4 export
  done("export", false);
  pipelines::save_dfgan_model(gen, damsm, model_dir.string());
  log_info("model: " + model_dir.string());
  return result;
}

}  // namespace genvis::train
