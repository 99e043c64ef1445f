#include "train/dalle_recipe.h"

#include "core/error.h"
#include "core/log.h"
#include "io/image_tensor.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/dalle/dalle_io.h"
#include "pipelines/dalle/dalle_pipeline.h"
#include "pipelines/dalle/dalle_sampling.h"
#include "train/sample_grid.h"

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

constexpr const char* kDalleRecipe = "dalle";

// The transformer config with the vocabularies and grid the recipe sets.
json derive_model_config(const DalleRecipeConfig& c, int64_t text_vocab, const models::DVAEConfig& dvae,
                         std::vector<std::string>& problems) {
  json m = c.model_config;
  recipe::derive(m, "transformer.model", "text_vocab_size", text_vocab, problems);
  recipe::derive(m, "transformer.model", "image_vocab_size", dvae.vocab_size, problems);
  recipe::derive(m, "transformer.model", "image_rows", dvae.grid_size(), problems);
  recipe::derive(m, "transformer.model", "image_cols", dvae.grid_size(), problems);
  return m;
}

models::DVAEConfig dvae_config_of(const DalleRecipeConfig& c) {
  if (c.dvae_folder.empty()) return c.dvae.model();
  return models::DVAEConfig::from_file((fs::path(c.dvae_folder) / "config.json").string());
}

// Evenly spread rows of distinct captions (the validation sheet's).
std::vector<int64_t> sheet_rows(const std::vector<std::string>& captions, int64_t n) {
  std::vector<int64_t> rows;
  std::set<std::string> seen;
  const int64_t size = static_cast<int64_t>(captions.size());
  for (int64_t k = 0; k < size && static_cast<int64_t>(rows.size()) < n; ++k) {
    const int64_t i = (k * 7919) % size;  // a stride through the set
    if (seen.insert(captions[static_cast<size_t>(i)]).second) rows.push_back(i);
  }
  return rows;
}

}  // namespace

DalleRecipeConfig DalleRecipeConfig::from_json(const json& j, const std::string& source) {
  DalleRecipeConfig c;
  std::vector<std::string> problems;
  if (!check_keys(j, "", {"dataset", "tokenizer", "dvae", "transformer"}, {"seed", "reranker", "samples"}, problems))
    recipe::throw_if_problems(source, problems);
  read(j, "", "seed", c.seed, problems);
  recipe::read_dataset_section(j, c.dataset, problems);
  recipe::read_tokenizer_section(j, c.vocab_size, problems);
  read(j, "", "reranker", c.reranker, problems);
  read(j, "", "samples", c.samples, problems);
  if (c.samples < 1 || c.samples > 64) problems.push_back("samples must be in 1..64");
  const json& d = j.at("dvae");
  if (d.is_string()) {
    c.dvae_folder = d.get<std::string>();
    if (!fs::is_regular_file(fs::path(c.dvae_folder) / "config.json"))
      problems.push_back("dvae: " + c.dvae_folder + " is not a dVAE folder (no config.json)");
  } else if (d.is_object()) {
    try {
      c.dvae = DVAERecipeConfig::from_json(d, "dvae", false);
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
    c.dvae.seed = c.seed;
    c.dvae.dataset = c.dataset;
  } else {
    problems.push_back("dvae must be a dVAE folder or a dVAE recipe object");
  }
  const json& t = j.at("transformer");
  if (check_keys(t, "transformer", {"train"}, {"model", "batch_size", "caption_dropout", "hflip"}, problems)) {
    if (t.contains("model")) {
      if (t.at("model").is_object()) c.model_config = t.at("model");
      else problems.push_back("transformer.model must be an object of DALL·E config keys");
    }
    read(t, "transformer", "batch_size", c.batch_size, problems);
    read(t, "transformer", "caption_dropout", c.caption_dropout, problems);
    read(t, "transformer", "hflip", c.hflip, problems);
    recipe::read_train_section(t, "transformer", c.seed, c.train, problems);
  }
  if (c.batch_size < 1 || c.batch_size > 4096) problems.push_back("transformer.batch_size must be in 1..4096");
  if (!(c.caption_dropout >= 0 && c.caption_dropout < 1)) problems.push_back("transformer.caption_dropout must be in [0, 1)");
  if (!c.reranker.empty() && !fs::is_regular_file(fs::path(c.reranker) / "config.json"))
    problems.push_back("reranker: " + c.reranker + " is not a contrastive encoder folder (no config.json)");
  if (problems.empty()) {
    try {
      const models::DVAEConfig dvae = dvae_config_of(c);
      if (dvae.image_size != c.dataset.resolution)
        problems.push_back("dvae: its image_size " + std::to_string(dvae.image_size) + " is not dataset.resolution " +
                           std::to_string(c.dataset.resolution));
      models::DalleConfig::from_json(derive_model_config(c, c.vocab_size, dvae, problems), "transformer.model");
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  recipe::throw_if_problems(source, problems);
  return c;
}

DalleRecipeConfig DalleRecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

DalleRecipeResult run_dalle_recipe(const DalleRecipeConfig& c, const TextImageEncoderRecipeOptions& o) {
  if (o.out_dir.empty()) throw UsageError("run_dalle_recipe: no output folder");
  const fs::path out = o.out_dir, model_dir = out / "model", tok_dir = out / "tokenizer",
                 codes_path = out / "codes.safetensors";
  DalleRecipeResult result;
  result.model_dir = model_dir.string();
  const auto done = [&](const char* stage, bool finished) { recipe::mark_stage(stage, finished, result.ran, result.skipped); };
  if (fs::exists(model_dir / "model_index.json")) {
    for (const char* stage : {"tokenizer", "dvae", "codes", "train", "export"}) done(stage, true);
    return result;
  }
  const auto ds = recipe::open_dataset(c.dataset, c.seed);
  std::vector<std::string> captions;
  for (size_t i = 0; i < ds->size(); ++i) captions.push_back(ds->get(i).caption);

  // 1 tokenizer
  const bool have_tokenizer = recipe::has_tokenizer(tok_dir.string());
  done("tokenizer", have_tokenizer);
  if (!have_tokenizer) recipe::train_tokenizer(captions, c.vocab_size, tok_dir.string());
  const auto tokenizer = tokenizers::CLIPTokenizer::load(tok_dir.string());

  // 2 dvae
  std::string dvae_dir = c.dvae_folder;
  if (dvae_dir.empty()) {
    const auto r = run_dvae_recipe(c.dvae, {.out_dir = (out / "dvae").string(), .resume = o.resume});
    done("dvae", r.ran.empty());
    if (r.interrupted) {
      result.interrupted = true;
      return result;
    }
    dvae_dir = r.model_dir;
  } else {
    done("dvae", true);
  }
  models::DiscreteVAE dvae = models::load_dvae(dvae_dir);
  std::vector<std::string> problems;
  const auto config = models::DalleConfig::from_json(
      derive_model_config(c, tokenizer.vocab_size(), dvae->config, problems), "transformer.model");
  if (!problems.empty()) throw UsageError(problems.front());

  // 3 codes
  at::Tensor codes, mirrored, flip_ok;
  done("codes", fs::exists(codes_path));
  if (fs::exists(codes_path)) {
    const auto reader = io::open_weights(codes_path.string());
    codes = reader->load("codes"), mirrored = reader->load("mirrored"), flip_ok = reader->load("flip_ok").to(at::kBool);
    if (codes.size(0) != static_cast<int64_t>(captions.size()) || codes.size(1) != config.image_len())
      throw UsageError(codes_path.string() + " holds the codes of another set or dVAE; delete it to recompute");
  } else {
    torch::NoGradGuard no_grad;
    const RenderedImageTextSet data = render_image_text_set(*ds, c.dataset.resolution);
    std::vector<at::Tensor> a, b;
    for (int64_t s = 0; s < data.images.size(0); s += 64) {
      const at::Tensor x = (data.images.narrow(0, s, std::min<int64_t>(64, data.images.size(0) - s)) + 1) / 2;
      a.push_back(dvae->encode(x).flatten(1));
      b.push_back(dvae->encode(x.flip({3})).flatten(1));
    }
    codes = at::cat(a), mirrored = at::cat(b), flip_ok = data.flip_ok;
    io::save_safetensors(codes_path.string(),
                         {{"codes", codes}, {"mirrored", mirrored}, {"flip_ok", flip_ok.to(at::kByte)}}, {{"format", "pt"}});
    const auto use = models::codebook_use(codes, config.image_vocab_size);
    log_info("codes: " + std::to_string(codes.size(0)) + " images as " + std::to_string(config.image_len()) +
             " tokens, codebook perplexity " + std::to_string(use.perplexity) + " -> " + codes_path.string());
  }
  int64_t cut = 0;
  const at::Tensor text_ids = pipelines::dalle_caption_ids(tokenizer, config, captions, &cut);
  if (cut > 0)
    log_warn(std::to_string(cut) + " of " + std::to_string(captions.size()) + " captions are longer than " +
             "transformer.model.text_len (" + std::to_string(config.text_len) +
             " tokens): their ends are cut off and never condition the images; raise text_len to use them");
  const at::Tensor empty_ids = models::dalle_text_ids({{}}, config);  // the all-padding caption
  const int64_t n = codes.size(0);

  // 4 train
  done("train", false);
  torch::manual_seed(c.seed + 1);
  models::DalleTransformer model(config);
  Trainer trainer(*model, c.train, (out / "train").string());
  trainer.extra_state = {{"recipe", kDalleRecipe}, {"model", config.to_json()}, {"caption_dropout", c.caption_dropout}};
  const fs::path validation_log = out / "train" / "validation.jsonl";
  if (trainer.resume_if_allowed(o.resume, "training")) recipe::truncate_log(validation_log.string(), trainer.step());
  const auto loss = [&](int64_t step, int64_t, Rng& rng) {
    const int64_t B = c.batch_size;
    const at::Tensor idx = at::randint(n, {B}, rng.generator(), at::TensorOptions().dtype(at::kLong));
    const at::Tensor drop = rng.rand({B}) < c.caption_dropout;
    const at::Tensor text = at::where(drop.unsqueeze(1), empty_ids, text_ids.index_select(0, idx));
    at::Tensor image = codes.index_select(0, idx);
    if (c.hflip) {
      const at::Tensor flip = (rng.rand({B}) < 0.5) & flip_ok.index_select(0, idx);
      image = at::where(flip.unsqueeze(1), mirrored.index_select(0, idx), image);
    }
    const at::Tensor l = model->loss(text, image).loss;
    if (!std::isfinite(l.item<double>()))
      throw RuntimeError("dalle: the loss is not finite at step " + std::to_string(step + 1) +
                         "; the run diverged (lower transformer.train.lr, or resume from an earlier checkpoint)");
    return l;
  };
  const std::vector<int64_t> rows = sheet_rows(captions, c.samples);
  const auto validate = [&](int64_t step) {
    torch::NoGradGuard no_grad;
    const at::Tensor fixed = at::arange(std::min<int64_t>(n, c.batch_size), at::kLong);
    const models::DalleLoss l = model->loss(text_ids.index_select(0, fixed), codes.index_select(0, fixed));
    std::vector<Rng> rngs;
    std::vector<std::string> sheet_captions;
    for (size_t k = 0; k < rows.size(); ++k) {
      rngs.emplace_back(c.seed + 1000 + k);
      sheet_captions.push_back(captions[static_cast<size_t>(rows[k])]);
    }
    const at::Tensor tokens = pipelines::dalle_sample(
        model, text_ids.index_select(0, at::tensor(rows, at::kLong)), {}, rngs);
    const at::Tensor images = dvae->decode(tokens.view({-1, config.image_rows, config.image_cols}));
    std::vector<io::Image> sheet;
    for (int64_t i = 0; i < images.size(0); ++i) sheet.push_back(io::tensor_to_image(images[i] * 2 - 1));
    const std::string path = write_sample_grid(sheet, sheet_captions, c.dataset.resolution, out / "samples", step);
    const json record = {{"step", step},
                         {"loss", l.loss.item<double>()},
                         {"text_loss", l.text_loss.item<double>()},
                         {"image_loss", l.image_loss.item<double>()}};
    std::ofstream(validation_log, std::ios::app) << record.dump() << "\n";
    log_info("validation at step " + std::to_string(step) + ": image loss " +
             std::to_string(l.image_loss.item<double>()) + ", samples " + path);
  };
  if (trainer.run(loss, validate) == Trainer::Outcome::Interrupted) {
    result.interrupted = true;
    return result;
  }
  trainer.apply_ema();
  model->eval();

  // 5 export
  done("export", false);
  pipelines::save_dalle_model(tok_dir.string(), dvae, model, c.reranker, model_dir.string());
  log_info("model: " + model_dir.string());
  return result;
}

}  // namespace genvis::train
