#include "train/dvae_recipe.h"

#include "core/error.h"
#include "core/log.h"
#include "io/grid.h"
#include "io/image_tensor.h"
#include "models/dalle/dalle_io.h"
#include "models/dalle/dvae.h"
#include "train/foreground_weights.h"
#include "train/sample_grid.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using recipe::check_keys;
using recipe::read;

constexpr const char* kDvaeRecipe = "dvae";

json derive_model_config(const DVAERecipeConfig& c, std::vector<std::string>& problems) {
  json m = c.model_config.is_object() ? c.model_config : json::object();
  recipe::derive(m, "model", "image_size", c.dataset.resolution, problems);
  return m;
}

// PSNR (images in [0,1]), MSE, codebook use of the argmax codes' reconstructions.
json reconstruction_report(models::DiscreteVAE& vae, const at::Tensor& images01, int64_t batch) {
  torch::NoGradGuard no_grad;
  double se = 0, psnr = 0;
  std::vector<at::Tensor> codes;
  const int64_t n = images01.size(0);
  for (int64_t s = 0; s < n; s += batch) {
    const at::Tensor x = images01.narrow(0, s, std::min(batch, n - s));
    const at::Tensor z = vae->encode(x);
    const at::Tensor mse = (vae->decode(z) - x).pow(2).mean({1, 2, 3});  // [b]
    se += mse.sum().item<double>();
    psnr += (-10 * at::log10(mse.clamp_min(1e-10))).sum().item<double>();
    codes.push_back(z);
  }
  const auto use = models::codebook_use(at::cat(codes), vae->config.vocab_size);
  return {{"images", n},
          {"psnr", psnr / static_cast<double>(n)},
          {"mse", se / static_cast<double>(n)},
          {"perplexity", use.perplexity},
          {"dead_codes", use.dead_codes},
          {"vocab_size", vae->config.vocab_size}};
}

}  // namespace

models::DVAEConfig DVAERecipeConfig::model() const {
  std::vector<std::string> problems;
  const json m = derive_model_config(*this, problems);
  if (!problems.empty()) throw UsageError(problems.front());
  return models::DVAEConfig::from_json(m, "model");
}

DVAERecipeConfig DVAERecipeConfig::from_json(const json& j, const std::string& source, bool with_dataset) {
  DVAERecipeConfig c;
  std::vector<std::string> problems;
  std::set<std::string> required = {"train"}, optional = {"model", "loss", "batch_size", "hflip", "report"};
  if (with_dataset) required.insert("dataset"), optional.insert("seed");
  if (!check_keys(j, "", required, optional, problems)) recipe::throw_if_problems(source, problems);
  if (with_dataset) {
    read(j, "", "seed", c.seed, problems);
    recipe::read_dataset_section(j, c.dataset, problems);
  }
  if (j.contains("model")) {
    if (j.at("model").is_object()) c.model_config = j.at("model");
    else problems.push_back("model must be an object of dVAE config keys");
  }
  if (j.contains("loss")) {
    const json& l = j.at("loss");
    if (check_keys(l, "loss", {},
                   {"reconstruction", "straight_through", "foreground_weight", "kl_weight", "kl_warmup_steps", "temperature_start",
                    "temperature_end", "temperature_steps"},
                   problems)) {
      read(l, "loss", "reconstruction", c.reconstruction, problems);
      read(l, "loss", "straight_through", c.straight_through, problems);
      read(l, "loss", "foreground_weight", c.foreground_weight, problems);
      read(l, "loss", "kl_weight", c.kl_weight, problems);
      read(l, "loss", "kl_warmup_steps", c.kl_warmup_steps, problems);
      read(l, "loss", "temperature_start", c.temperature_start, problems);
      read(l, "loss", "temperature_end", c.temperature_end, problems);
      read(l, "loss", "temperature_steps", c.temperature_steps, problems);
    }
  }
  read(j, "", "batch_size", c.batch_size, problems);
  read(j, "", "hflip", c.hflip, problems);
  if (j.contains("report") && check_keys(j.at("report"), "report", {}, {"num"}, problems))
    read(j.at("report"), "report", "num", c.report_num, problems);
  recipe::read_train_section(j, "", c.seed, c.train, problems);

  if (c.reconstruction != "logit_laplace" && c.reconstruction != "mse")
    problems.push_back("loss.reconstruction must be logit_laplace or mse, got '" + c.reconstruction + "'");
  if (!(c.kl_weight >= 0 && c.kl_weight <= 1000)) problems.push_back("loss.kl_weight must be in [0, 1000]");
  if (!(c.foreground_weight >= 0 && c.foreground_weight <= 1000))
    problems.push_back("loss.foreground_weight must be in [0, 1000]");
  if (!(c.temperature_start > 0 && c.temperature_end > 0 && c.temperature_end <= c.temperature_start))
    problems.push_back("loss.temperature_start and temperature_end must be positive, the end at most the start");
  if (c.kl_warmup_steps < -1 || c.temperature_steps < -1) problems.push_back("loss: step counts must be >= 0");
  if (c.batch_size < 1 || c.batch_size > 4096) problems.push_back("batch_size must be in 1..4096");
  if (c.report_num < 0) problems.push_back("report.num must be >= 0");
  if (with_dataset && c.dataset.resolution > 0) {
    try {
      derive_model_config(c, problems);
      if (problems.empty()) c.model();
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  recipe::throw_if_problems(source, problems);
  return c;
}

DVAERecipeConfig DVAERecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

DVAERecipeResult run_dvae_recipe(const DVAERecipeConfig& c, const TextImageEncoderRecipeOptions& o) {
  if (o.out_dir.empty()) throw UsageError("run_dvae_recipe: no output folder");
  const fs::path out = o.out_dir, model_dir = out / "model", report_path = out / "reconstruction.json";
  DVAERecipeResult result;
  result.model_dir = model_dir.string();
  const auto done = [&](const char* stage, bool finished) { recipe::mark_stage(stage, finished, result.ran, result.skipped); };
  const models::DVAEConfig config = c.model();
  const bool trained = fs::exists(model_dir / "model.safetensors");
  if (trained && fs::exists(report_path)) {
    for (const char* stage : {"data", "train", "export", "report"}) done(stage, true);
    result.report = json::parse(std::ifstream(report_path));
    return result;
  }

  // 1 data (images in [0,1] for the dVAE)
  done("data", false);
  const auto ds = recipe::open_dataset(c.dataset, c.seed);
  const RenderedImageTextSet data = render_image_text_set(*ds, c.dataset.resolution);
  const at::Tensor images = (data.images + 1) / 2;
  const int64_t n = images.size(0);
  log_info("data: " + std::to_string(n) + " images at " + std::to_string(c.dataset.resolution) + " px");

  models::DiscreteVAE vae{nullptr};
  if (trained) {
    done("train", true);
    done("export", true);
    vae = models::load_dvae(model_dir.string());
  } else {
    // 2 train
    done("train", false);
    torch::manual_seed(c.seed);
    vae = models::DiscreteVAE(config);
    Trainer trainer(*vae, c.train, (out / "train").string());
    trainer.extra_state = {{"recipe", kDvaeRecipe},
                           {"model", config.to_json()},
                           {"reconstruction", c.reconstruction},
                           {"straight_through", c.straight_through},
                           {"foreground_weight", c.foreground_weight}};
    const fs::path validation_log = out / "train" / "validation.jsonl";
    if (trainer.resume_if_allowed(o.resume, "training")) recipe::truncate_log(validation_log.string(), trainer.step());
    const int64_t fixed = std::min<int64_t>(n, 64);
    const auto loss = [&](int64_t step, int64_t, Rng& rng) {
      const at::Tensor idx = at::randint(n, {c.batch_size}, rng.generator(), at::TensorOptions().dtype(at::kLong));
      at::Tensor x = images.index_select(0, idx);
      if (c.hflip) {
        const at::Tensor flip = (rng.rand({c.batch_size}) < 0.5) & data.flip_ok.index_select(0, idx);
        x = at::where(flip.view({-1, 1, 1, 1}), x.flip({3}), x);
      }
      const models::DVAELossOptions lo{.temperature = models::dvae_temperature(step, c.temperature_anneal(),
                                                                                 c.temperature_start, c.temperature_end),
                                       .kl_weight = models::dvae_kl_weight(step, c.kl_warmup(), c.kl_weight),
                                       .straight_through = c.straight_through,
                                       .reconstruction = c.reconstruction,
                                       .pixel_weight = c.foreground_weight > 0 ? foreground_weights(x, c.foreground_weight)
                                                                               : at::Tensor()};
      const models::DVAELoss l = models::dvae_loss(vae, x, lo, rng);
      if (!std::isfinite(l.loss.item<double>()))
        throw RuntimeError("dvae: the loss is not finite at step " + std::to_string(step + 1) +
                           "; the run diverged (lower train.lr, or resume from an earlier checkpoint)");
      return l.loss;
    };
    const auto validate = [&](int64_t step) {
      const json r = reconstruction_report(vae, images.narrow(0, 0, fixed), c.batch_size);
      json record = {{"step", step},
                     {"psnr", r["psnr"]},
                     {"perplexity", r["perplexity"]},
                     {"dead_codes", r["dead_codes"]},
                     {"temperature", models::dvae_temperature(step, c.temperature_anneal(), c.temperature_start,
                                                              c.temperature_end)},
                     {"kl_weight", models::dvae_kl_weight(step, c.kl_warmup(), c.kl_weight)}};
      std::ofstream(validation_log, std::ios::app) << record.dump() << "\n";
      log_info("validation at step " + std::to_string(step) + ": PSNR " + std::to_string(r["psnr"].get<double>()) +
               " dB, codebook perplexity " + std::to_string(r["perplexity"].get<double>()));
    };
    if (trainer.run(loss, validate) == Trainer::Outcome::Interrupted) {
      result.interrupted = true;
      return result;
    }
    trainer.apply_ema();
    vae->eval();
    // 3 export
    done("export", false);
    models::save_dvae(vae, model_dir.string());
    log_info("model: " + model_dir.string());
  }

  // 4 report
  done("report", false);
  const int64_t num = c.report_num > 0 ? std::min(c.report_num, n) : n;
  result.report = reconstruction_report(vae, images.narrow(0, 0, num), c.batch_size);
  result.report["reconstruction_loss"] = c.reconstruction;
  recipe::write_json(report_path.string(), result.report);
  {
    torch::NoGradGuard no_grad;
    const int64_t k = std::min<int64_t>(num, 8);
    const at::Tensor x = images.narrow(0, 0, k);
    const at::Tensor y = vae->decode(vae->encode(x));
    std::vector<io::Image> sheet;
    std::vector<std::string> captions;
    for (int row = 0; row < 2; ++row)  // originals, then their reconstructions
      for (int64_t i = 0; i < k; ++i) {
        sheet.push_back(io::tensor_to_image((row == 0 ? x : y)[i] * 2 - 1));
        captions.push_back(row == 0 ? data.captions[static_cast<size_t>(i)] : "");
      }
    write_sample_grid(sheet, captions, c.dataset.resolution, out / "samples", 0, static_cast<int>(k));
  }
  log_info("reconstruction: PSNR " + std::to_string(result.report["psnr"].get<double>()) + " dB, perplexity " +
           std::to_string(result.report["perplexity"].get<double>()) + " of " + std::to_string(config.vocab_size) +
           " codes, " + std::to_string(result.report["dead_codes"].get<int64_t>()) + " dead -> " + report_path.string());
  return result;
}

}  // namespace genvis::train
