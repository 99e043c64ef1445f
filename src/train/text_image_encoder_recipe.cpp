#include "train/text_image_encoder_recipe.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/torch_compat.h"
#include "data/loader.h"
#include "data/registry.h"
#include "io/image_tensor.h"

#include <chrono>
#include <filesystem>
#include <set>
#include <torch/torch.h>
#include <unordered_map>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using recipe::check_keys;
using recipe::read;

// ---- evaluation ---------------------------------------------------------------------------

// Real images of one split with their R-precision samples, rendered once.
struct EvalSet {
  std::string split;
  eval::RPrecisionSamples samples;
  at::Tensor images;  // [n,3,R,R] in [0,1]
};

std::vector<EvalSet> eval_sets(const TextImageEncoderRecipeConfig& c, const data::Dataset& train_ds, const RenderedImageTextSet& train) {
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

json evaluate(TextImageEncoderModel& encoder, const std::vector<EvalSet>& sets, const TextImageEncoderRecipeConfig& c) {
  json out = json::object();
  const eval::TextImageEmbedder embedder = encoder.embedder();
  for (const auto& s : sets) {
    const auto r = eval::encoder_r_precision(embedder, s.images, s.samples, {.k = c.eval.k, .seed = c.eval.seed});
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

}  // namespace

RenderedImageTextSet render_image_text_set(const data::Dataset& ds, int64_t resolution) {
  RenderedImageTextSet r;
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

at::Tensor augment_images(const at::Tensor& x, const at::Tensor& flip_ok, const TextImageEncoderRecipeConfig::Augment& a, Rng& rng) {
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

void read_augment_section(const json& root, TextImageEncoderRecipeConfig::Augment& a, std::vector<std::string>& problems) {
  const json aug = root.contains("augment") ? root.at("augment") : json::object();
  if (check_keys(aug, "augment", {}, {"hflip", "scale", "shift", "noise"}, problems)) {
    read(aug, "augment", "hflip", a.hflip, problems);
    std::vector<double> scale = {a.scale_min, a.scale_max};
    read(aug, "augment", "scale", scale, problems);
    if (scale.size() != 2 || !(scale[0] > 0 && scale[0] <= scale[1] && scale[1] <= 4))
      problems.push_back("augment.scale must be [min, max] with 0 < min <= max <= 4");
    else
      a.scale_min = scale[0], a.scale_max = scale[1];
    read(aug, "augment", "shift", a.shift, problems);
    read(aug, "augment", "noise", a.noise, problems);
    if (!(a.shift >= 0 && a.shift <= 0.5)) problems.push_back("augment.shift must be in [0, 0.5]");
    if (!(a.noise >= 0 && a.noise <= 1)) problems.push_back("augment.noise must be in [0, 1]");
  }
}

TextImageEncoderRecipeConfig parse_text_image_encoder_config(const json& j, const std::string& source,
                                                             const TextImageEncoderKind& kind) {
  TextImageEncoderRecipeConfig c;
  std::vector<std::string> problems;
  if (!check_keys(j, "config", {"dataset", "tokenizer", "model", "batch_size", "train"}, {"seed", "augment", "eval"},
                  problems))
    throw UsageError(source + ": the recipe config must be a JSON object");
  read(j, "config", "seed", c.seed, problems);
  read(j, "config", "batch_size", c.batch_size, problems);
  if (j.contains("batch_size") && c.batch_size < kind.min_batch_size)
    problems.push_back("batch_size must be >= " + std::to_string(kind.min_batch_size));
  const auto section = [&](const char* key) { return j.contains(key) ? j.at(key) : json::object(); };

  recipe::read_dataset_section(j, c.dataset, problems);
  recipe::read_tokenizer_section(j, c.vocab_size, problems);
  read(j, "config", "model", c.model_config, problems);
  if (!c.model_config.is_object()) {
    problems.push_back("model must be a JSON object");
    c.model_config = json::object();
  }

  read_augment_section(j, c.augment, problems);
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
    kind.check_model_config(kind.derive_model_config(c, problems));
  } catch (const Error& e) {
    problems.push_back(e.what());
  }

  recipe::throw_if_problems(source, problems);
  return c;
}

TextImageEncoderRecipeResult run_text_image_encoder_recipe(const TextImageEncoderRecipeConfig& c,
                                                           const TextImageEncoderRecipeOptions& o,
                                                           const TextImageEncoderKind& kind) {
  if (o.out_dir.empty()) throw UsageError("run_" + kind.recipe + "_recipe: no output folder");
  const fs::path out = o.out_dir, model_dir = out / "model", tok_dir = model_dir / "tokenizer";
  fs::create_directories(model_dir);
  recipe::write_json(out / "recipe.json", {{"recipe", kind.recipe}, {"seed", c.seed}});
  TextImageEncoderRecipeResult result;
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
  const bool have_tokenizer = recipe::has_tokenizer(tok_dir.string());
  done("tokenizer", have_tokenizer);
  if (!have_tokenizer) {
    std::vector<std::string> captions;
    for (size_t i = 0; i < ds->size(); ++i) captions.push_back(ds->get(i).caption);
    recipe::train_tokenizer(captions, c.vocab_size, tok_dir.string());
  }

  // 2 data
  done("data", false);
  const RenderedImageTextSet data = render_image_text_set(*ds, c.dataset.resolution);
  std::vector<std::string> problems;
  const json model_config = kind.derive_model_config(c, problems);
  torch::manual_seed(c.seed);
  const std::unique_ptr<TextImageEncoderModel> encoder =
      have_model ? kind.load(model_dir.string()) : kind.create(model_config, tok_dir.string());
  encoder->set_captions(data.captions);
  const std::vector<EvalSet> sets = eval_sets(c, *ds, data);

  // 3 train
  done("train", have_model);
  if (!have_model) {
    Trainer trainer(encoder->module(), c.train, (out / "train").string());
    trainer.extra_state = {{"recipe", kind.recipe}, {"model", encoder->config_json()}};
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
            x = augment_images(data.images.index_select(0, idx), data.flip_ok.index_select(0, idx), c.augment, rng);
          }
          return encoder->loss(x, idx, data.caption_ids.index_select(0, idx));
        },
        [&](int64_t step) {
          if (sets.empty()) return;
          const json e = evaluate(*encoder, sets, c);
          const std::string extra = encoder->describe();
          log_info("step " + std::to_string(step) + ": R-precision of real images: " + summary(e) +
                   (extra.empty() ? "" : ", " + extra));
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
    encoder->module().eval();
    encoder->save(model_dir.string());
  }
  done("save", have_model);

  // 5 eval
  done("eval", false);
  result.eval = {{"metric", "r_precision"}, {"images", "dataset"}, {"k", c.eval.k}, {"seed", c.eval.seed},
                 {"dataset", c.dataset.name}, {"resolution", c.dataset.resolution}, {"splits", evaluate(*encoder, sets, c)}};
  recipe::write_json(out / "eval.json", result.eval);
  if (!sets.empty()) log_info("R-precision of real images: " + summary(result.eval["splits"]));
  log_info("encoder: " + model_dir.string());
  return result;
}

}  // namespace genvis::train
