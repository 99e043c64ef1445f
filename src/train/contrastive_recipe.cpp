#include "train/contrastive_recipe.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/torch_compat.h"
#include "data/loader.h"
#include "data/registry.h"
#include "eval/r_precision.h"
#include "io/image_tensor.h"
#include "models/contrastive/contrastive_encoder.h"
#include "tokenizers/bpe_trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>
#include <torch/torch.h>
#include <unordered_map>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using recipe::check_keys;
using recipe::read;

// ---- config parsing -------------------------------------------------------------------------

// Lists unknown and missing keys of object `j` at `path`; false when `j` is not an object.

// The model config with the recipe's derived keys (placeholders for the tokenizer's ids).
json derive_model_config(const ContrastiveRecipeConfig& c, std::vector<std::string>& problems) {
  json m = c.model_config.is_object() ? c.model_config : json::object();
  json& v = m["vision_config"];
  if (v.is_null()) v = json::object();
  if (v.is_object()) {
    if (v.contains("image_size") && v["image_size"] != json(c.dataset.resolution))
      problems.push_back("model.vision_config.image_size is set by the recipe to dataset.resolution " +
                         std::to_string(c.dataset.resolution) + ", got " + v["image_size"].dump());
    v["image_size"] = c.dataset.resolution;
  }
  json& t = m["text_config"];
  if (t.is_null()) t = json::object();
  if (t.is_object()) {
    for (const char* key : {"vocab_size", "bos_token_id", "eos_token_id", "pad_token_id"})
      if (t.contains(key)) problems.push_back(std::string("model.text_config.") + key + " is set by the recipe from the tokenizer");
    t["vocab_size"] = std::max<int64_t>(c.vocab_size, 514);
    t["bos_token_id"] = 0;
    t["eos_token_id"] = 1;
    t["pad_token_id"] = 1;
  }
  return m;
}

// ---- datasets -----------------------------------------------------------------------------



// Stage 2: every sample once, unaugmented.
struct RenderedSet {
  at::Tensor images;                  // [N,3,R,R] in [-1,1]
  at::Tensor flip_ok;                 // [N] bool
  std::vector<std::string> captions;  // N
  at::Tensor caption_ids;             // [N] int64: equal texts, equal ids
};

RenderedSet render(const data::Dataset& ds, int64_t resolution) {
  RenderedSet r;
  const auto n = static_cast<int64_t>(ds.size());
  r.images = torch::empty({n, 3, resolution, resolution});
  r.flip_ok = torch::empty({n}, at::kBool);
  r.caption_ids = torch::empty({n}, at::kLong);
  std::unordered_map<std::string, int64_t> ids;
  Progress progress("rendering", n);
  for (int64_t i = 0; i < n; ++i) {
    const data::Sample s = ds.get(static_cast<size_t>(i));
    r.images[i].copy_(data::resize_and_crop(io::image_to_tensor(s.image.to_8bit().with_channels(3)), resolution)[0]);
    r.flip_ok[i] = ds.flip_allowed(s);
    r.caption_ids[i] = ids.emplace(s.caption, static_cast<int64_t>(ids.size())).first->second;
    r.captions.push_back(s.caption);
    progress.update(i + 1);
  }
  progress.finish();
  log_info("data: " + std::to_string(n) + " images at " + std::to_string(resolution) + " px, " +
           std::to_string(ids.size()) + " distinct captions");
  return r;
}

// One affine resample per image (flip, object scale, shift; edges replicated) plus noise.
at::Tensor augment(const at::Tensor& x, const at::Tensor& flip_ok, const ContrastiveRecipeConfig::Augment& a, Rng& rng) {
  const int64_t b = x.size(0);
  const at::Tensor u = rng.rand({b, 4});  // flip, scale, shift x, shift y
  const at::Tensor flip = a.hflip ? (u.select(1, 0) < 0.5).logical_and(flip_ok) : torch::zeros({b}, at::kBool);
  const at::Tensor size = a.scale_min + (a.scale_max - a.scale_min) * u.select(1, 1);  // object size factor
  const at::Tensor zoom = 1.0 / size;                                                   // grid units per output unit
  const at::Tensor sx = at::where(flip, -zoom, zoom);
  const at::Tensor tx = (u.select(1, 2) * 2 - 1) * (2 * a.shift), ty = (u.select(1, 3) * 2 - 1) * (2 * a.shift);
  const at::Tensor zero = torch::zeros({b});
  const at::Tensor theta = at::stack({at::stack({sx, zero, tx}, 1), at::stack({zero, zoom, ty}, 1)}, 1);  // [B,2,3]
  const at::Tensor grid = at::affine_grid_generator(theta, x.sizes(), /*align_corners=*/false);
  at::Tensor y = at::grid_sampler(x, grid, /*bilinear*/ 0, /*border*/ 1, /*align_corners=*/false);
  if (a.noise > 0) y = y + a.noise * rng.randn(y.sizes());
  return y;
}

// Symmetric InfoNCE over a batch; `same` [B,B] marks pairs with the same caption text.
at::Tensor info_nce(const at::Tensor& image_embeds, const at::Tensor& text_embeds, const at::Tensor& logit_scale,
                    const at::Tensor& same) {
  compat::AutocastGuard f32(image_embeds.device().type(), at::kBFloat16, /*enabled=*/false);
  namespace F = torch::nn::functional;
  const auto unit = F::NormalizeFuncOptions().dim(1);
  const at::Tensor img = F::normalize(image_embeds.to(at::kFloat), unit), txt = F::normalize(text_embeds.to(at::kFloat), unit);
  const at::Tensor logits = logit_scale.clamp_max(std::log(100.0)).exp() * img.matmul(txt.t());  // [B,B]
  const at::Tensor targets = same / same.sum(1, /*keepdim=*/true);                                // rows sum to 1
  const at::Tensor image_to_text = -(targets * logits.log_softmax(1)).sum(1).mean();
  const at::Tensor text_to_image = -(targets * logits.t().log_softmax(1)).sum(1).mean();
  return 0.5 * (image_to_text + text_to_image);
}

// ---- evaluation ---------------------------------------------------------------------------

// Real images of one split with their R-precision samples, rendered once.
struct EvalSet {
  std::string split;
  eval::RPrecisionSamples samples;
  at::Tensor images;  // [n,3,R,R] in [0,1]
};

std::vector<EvalSet> eval_sets(const ContrastiveRecipeConfig& c, const data::Dataset& train_ds, const RenderedSet& train) {
  std::vector<EvalSet> sets;
  if (c.eval.num <= 0) return sets;
  const auto k = static_cast<size_t>(c.eval.k);
  // The training split: the rendered images and captions (the same draw choose_r_precision_samples makes).
  {
    EvalSet s{c.dataset.split, {}, {}};
    s.samples.pool = train.captions;
    s.samples.indices = eval::choose_indices(train_ds.size(), std::min<size_t>(c.eval.num, train_ds.size()), c.eval.seed);
    for (const size_t i : s.samples.indices) s.samples.captions.push_back(train.captions[i]);
    const at::Tensor idx = at::tensor(std::vector<int64_t>(s.samples.indices.begin(), s.samples.indices.end()), at::kLong);
    s.images = (train.images.index_select(0, idx) + 1.0) * 0.5;
    if (std::set<std::string>(s.samples.pool.begin(), s.samples.pool.end()).size() >= k) sets.push_back(std::move(s));
  }
  // The held-out split, when the dataset has one with enough distinct captions.
  if (c.dataset.split == "train" && c.dataset.name != "folder") {
    try {
      const auto held = data::make_dataset(recipe::dataset_spec(c.dataset, data::Split::HeldOut, c.seed));
      EvalSet s{"heldout", {}, {}};
      s.samples = eval::choose_r_precision_samples(*held, std::min<size_t>(c.eval.num, held->size()), c.eval.seed);
      if (std::set<std::string>(s.samples.pool.begin(), s.samples.pool.end()).size() >= k) {
        const at::Tensor x = eval::dataset_images(*held, s.samples.indices);
        std::vector<at::Tensor> rows;
        for (int64_t i = 0; i < x.size(0); ++i)
          rows.push_back(data::resize_and_crop(x.narrow(0, i, 1), c.dataset.resolution));
        s.images = at::cat(rows);
        sets.push_back(std::move(s));
      }
    } catch (const Error& e) {
      log_warn(std::string("no held-out evaluation: ") + e.what());
    }
  }
  return sets;
}

json evaluate(models::ContrastiveEncoder& encoder, const std::vector<EvalSet>& sets, const ContrastiveRecipeConfig& c) {
  json out = json::object();
  for (const auto& s : sets) {
    const auto r = eval::encoder_r_precision(encoder, s.images, s.samples, {.k = c.eval.k, .seed = c.eval.seed});
    out[s.split] = {{"r_precision", r.value}, {"num", s.samples.indices.size()}};
  }
  return out;
}

std::string summary(const json& e) {
  std::string s;
  for (const auto& [split, v] : e.items())
    s += (s.empty() ? "" : ", ") + split + " " + std::to_string(v.at("r_precision").get<double>());
  return s;
}

void write_json(const fs::path& path, const json& j) {
  fs::create_directories(path.parent_path());
  write_file_atomic(path.string(), j.dump(2) + "\n");
}

}  // namespace

ContrastiveRecipeConfig ContrastiveRecipeConfig::from_json(const json& j, const std::string& source) {
  ContrastiveRecipeConfig c;
  std::vector<std::string> problems;
  if (!check_keys(j, "config", {"dataset", "tokenizer", "model", "batch_size", "train"}, {"seed", "augment", "eval"},
                  problems))
    throw UsageError(source + ": the recipe config must be a JSON object");
  read(j, "config", "seed", c.seed, problems);
  read(j, "config", "batch_size", c.batch_size, problems);
  if (j.contains("batch_size") && c.batch_size < 2) problems.push_back("batch_size must be >= 2");
  const auto section = [&](const char* key) { return j.contains(key) ? j.at(key) : json::object(); };

  recipe::read_dataset_section(j, c.dataset, problems);
  recipe::read_tokenizer_section(j, c.vocab_size, problems);
  read(j, "config", "model", c.model_config, problems);
  if (!c.model_config.is_object()) {
    problems.push_back("model must be a JSON object");
    c.model_config = json::object();
  }

  const json aug = section("augment");
  if (check_keys(aug, "augment", {}, {"hflip", "scale", "shift", "noise"}, problems)) {
    read(aug, "augment", "hflip", c.augment.hflip, problems);
    std::vector<double> scale = {c.augment.scale_min, c.augment.scale_max};
    read(aug, "augment", "scale", scale, problems);
    if (scale.size() != 2 || !(scale[0] > 0 && scale[0] <= scale[1] && scale[1] <= 4))
      problems.push_back("augment.scale must be [min, max] with 0 < min <= max <= 4");
    else
      c.augment.scale_min = scale[0], c.augment.scale_max = scale[1];
    read(aug, "augment", "shift", c.augment.shift, problems);
    read(aug, "augment", "noise", c.augment.noise, problems);
    if (!(c.augment.shift >= 0 && c.augment.shift <= 0.5)) problems.push_back("augment.shift must be in [0, 0.5]");
    if (!(c.augment.noise >= 0 && c.augment.noise <= 1)) problems.push_back("augment.noise must be in [0, 1]");
  }
  const json ev = section("eval");
  if (check_keys(ev, "eval", {}, {"num", "k", "seed"}, problems)) {
    read(ev, "eval", "num", c.eval.num, problems);
    read(ev, "eval", "k", c.eval.k, problems);
    read(ev, "eval", "seed", c.eval.seed, problems);
    if (c.eval.num < 0) problems.push_back("eval.num must be >= 0");
    if (c.eval.k < 2) problems.push_back("eval.k must be >= 2");
  }
  recipe::read_train_section(j, "", c.seed, c.train, problems);

  // The model config as the recipe will build it.
  try {
    models::ContrastiveConfig::from_json(derive_model_config(c, problems), "model");
  } catch (const Error& e) {
    problems.push_back(e.what());
  }

  recipe::throw_if_problems(source, problems);
  return c;
}

ContrastiveRecipeConfig ContrastiveRecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

ContrastiveRecipeResult run_contrastive_recipe(const ContrastiveRecipeConfig& c, const ContrastiveRecipeOptions& o) {
  if (o.out_dir.empty()) throw UsageError("run_contrastive_recipe: no output folder");
  const fs::path out = o.out_dir, model_dir = out / "model", tok_dir = model_dir / "tokenizer";
  fs::create_directories(model_dir);
  write_json(out / "recipe.json", {{"recipe", "contrastive"}, {"seed", c.seed}});
  ContrastiveRecipeResult result;
  result.model_dir = model_dir.string();
  const auto done = [&](const char* stage, bool finished) { recipe::mark_stage(stage, finished, result.ran, result.skipped); };
  const bool have_model = fs::exists(model_dir / "config.json") && fs::exists(model_dir / "model.safetensors");
  const bool have_eval = fs::exists(out / "eval.json");
  if (have_model && have_eval) {
    for (const char* stage : {"tokenizer", "data", "train", "save", "eval"}) done(stage, true);
    result.eval = json::parse(read_text_file((out / "eval.json").string(), size_t{1} << 20));
    return result;
  }
  const auto ds = recipe::open_dataset(c.dataset, c.seed);

  // 1 tokenizer
  const bool have_tokenizer = fs::exists(tok_dir / "vocab.json") && fs::exists(tok_dir / "merges.txt");
  done("tokenizer", have_tokenizer);
  if (!have_tokenizer) {
    std::vector<std::string> captions;
    for (size_t i = 0; i < ds->size(); ++i) captions.push_back(ds->get(i).caption);
    const auto vocab = tokenizers::train_bpe(captions, {.vocab_size = c.vocab_size});
    tokenizers::save_tokenizer_folder(vocab, tok_dir.string());
    log_info("tokenizer: " + std::to_string(vocab.tokens.size()) + " tokens from " + std::to_string(captions.size()) +
             " captions -> " + tok_dir.string());
  }

  // 2 data
  done("data", false);
  const RenderedSet data = render(*ds, c.dataset.resolution);
  std::vector<std::string> problems;
  const auto model_config = models::ContrastiveConfig::from_json(derive_model_config(c, problems), "model");
  torch::manual_seed(c.seed);
  std::optional<models::ContrastiveEncoder> encoder;
  if (have_model) encoder.emplace(models::ContrastiveEncoder::load(model_dir.string()));
  else encoder.emplace(model_config, tok_dir.string());
  const at::Tensor ids = encoder->tokenize(data.captions);  // [N, L]
  const int64_t eos = encoder->tokenizer().eos_id();
  const std::vector<EvalSet> sets = eval_sets(c, *ds, data);

  // 3 train
  done("train", have_model);
  if (!have_model) {
    models::ContrastiveModel& model = encoder->model();
    Trainer trainer(*model, c.train, (out / "train").string());
    trainer.extra_state = {{"recipe", "contrastive"}, {"model", encoder->config().to_json()}};
    trainer.resume_if_allowed(o.resume, "training");
    data::LoaderOptions lo;
    lo.batch_size = c.batch_size;
    lo.resolution = c.dataset.resolution;
    lo.seed = c.seed;
    const data::DataLoader order(ds, lo);  // only its order: indices(step)
    const int64_t accum = c.train.grad_accum;
    const auto start = std::chrono::steady_clock::now();
    const auto outcome = trainer.run(
        [&](int64_t step, int64_t micro, Rng& rng) {
          const auto picked = order.indices(step * accum + micro);
          const at::Tensor idx = at::tensor(std::vector<int64_t>(picked.begin(), picked.end()), at::kLong);
          at::Tensor x;
          {
            compat::AutocastGuard f32(at::kCPU, at::kBFloat16, /*enabled=*/false);
            x = augment(data.images.index_select(0, idx), data.flip_ok.index_select(0, idx), c.augment, rng);
          }
          const at::Tensor text = models::trim_eos_padding(ids.index_select(0, idx), eos);
          const at::Tensor cid = data.caption_ids.index_select(0, idx);
          const at::Tensor same = cid.unsqueeze(1).eq(cid.unsqueeze(0)).to(at::kFloat);
          return info_nce(model->encode_image(x), model->encode_text(text), model->logit_scale, same);
        },
        [&](int64_t step) {
          if (sets.empty()) return;
          const json e = evaluate(*encoder, sets, c);
          log_info("step " + std::to_string(step) + ": R-precision of real images: " + summary(e) +
                   ", logit scale " + std::to_string(model->logit_scale.exp().item<double>()));
        });
    if (outcome == Trainer::Outcome::Interrupted) {
      result.interrupted = true;
      return result;
    }
    log_info("train: " + std::to_string(c.train.steps) + " steps, " +
             std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()) +
             " s in this run");
    // 4 save (the EMA weights when the run keeps them)
    trainer.apply_ema();
    model->eval();
    encoder->save(model_dir.string());
  }
  done("save", have_model);

  // 5 eval
  done("eval", false);
  result.eval = {{"metric", "r_precision"}, {"images", "dataset"}, {"k", c.eval.k}, {"seed", c.eval.seed},
                 {"dataset", c.dataset.name}, {"resolution", c.dataset.resolution}, {"splits", evaluate(*encoder, sets, c)}};
  write_json(out / "eval.json", result.eval);
  if (!sets.empty()) log_info("R-precision of real images: " + summary(result.eval["splits"]));
  log_info("encoder: " + model_dir.string());
  return result;
}

}  // namespace genvis::train
