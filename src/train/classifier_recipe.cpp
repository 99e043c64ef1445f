#include "train/classifier_recipe.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/torch_compat.h"
#include "data/loader.h"
#include "data/registry.h"
#include "io/image_tensor.h"
#include "models/classifier/image_classifier.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using recipe::check_keys;
using recipe::read;

constexpr int64_t kRenderChunk = 512;

// ---- config -------------------------------------------------------------------------------

// The model config with the recipe's derived key (image_size = dataset.resolution).
json derive_model_config(const ClassifierRecipeConfig& c, std::vector<std::string>& problems) {
  json m = c.model_config.is_object() ? c.model_config : json::object();
  if (m.contains("image_size") && m["image_size"] != json(c.dataset.resolution))
    problems.push_back("model.image_size is set by the recipe to dataset.resolution " +
                       std::to_string(c.dataset.resolution) + ", got " + m["image_size"].dump());
  m["image_size"] = c.dataset.resolution;
  return m;
}

// ---- data ---------------------------------------------------------------------------------

// Samples [0, n) of a dataset with their labels.
struct LabelledSet {
  at::Tensor images;   // training: [N,in_channels,S,S] model input in [-1,1]; evaluation: [N,3,R,R] in [0,1]
  at::Tensor labels;   // [N] int64
  at::Tensor flip_ok;  // [N] bool
  std::map<int64_t, std::string> class_names;  // label -> meta.class, where samples carry one
};

// Renders samples [0, n) at `resolution` as [0,1] RGB, hands them to `sink` in chunks, and reads
// the labels (meta.label, an integer in [0, num_classes)).
LabelledSet render(const data::Dataset& ds, size_t n, int64_t resolution, int64_t num_classes, const std::string& what,
                   const std::function<at::Tensor(const at::Tensor& images01)>& convert) {
  LabelledSet r;
  const auto total = static_cast<int64_t>(n);
  r.labels = torch::empty({total}, at::kLong);
  r.flip_ok = torch::empty({total}, at::kBool);
  auto labels = r.labels.accessor<int64_t, 1>();
  auto flip_ok = r.flip_ok.accessor<bool, 1>();
  std::vector<at::Tensor> chunks, rows;
  Progress progress("rendering " + what, total);
  for (int64_t i = 0; i < total; ++i) {
    const data::Sample s = ds.get(static_cast<size_t>(i));
    const auto label = s.meta.is_object() ? s.meta.find("label") : s.meta.end();
    if (!s.meta.is_object() || label == s.meta.end() || !label->is_number_integer())
      throw UsageError("dataset " + ds.name() + ": sample " + std::to_string(i) +
                       " has no class label (an integer meta.label); the classifier recipe needs a labelled dataset");
    labels[i] = label->get<int64_t>();
    if (labels[i] < 0 || labels[i] >= num_classes)
      throw UsageError("dataset " + ds.name() + ": sample " + std::to_string(i) + " has label " +
                       std::to_string(labels[i]) + ", outside model.num_classes " + std::to_string(num_classes));
    if (const auto cls = s.meta.find("class"); cls != s.meta.end() && cls->is_string())
      r.class_names.emplace(labels[i], cls->get<std::string>());
    flip_ok[i] = ds.flip_allowed(s);
    rows.push_back(data::resize_and_crop(io::image_to_tensor(s.image.to_8bit().with_channels(3)), resolution));
    if (static_cast<int64_t>(rows.size()) == kRenderChunk || i + 1 == total) {
      chunks.push_back(convert((at::cat(rows) + 1.0) * 0.5));  // [-1,1] -> [0,1]
      rows.clear();
    }
    progress.update(i + 1);
  }
  progress.finish();
  r.images = chunks.empty() ? torch::empty({0}) : at::cat(chunks);
  return r;
}

// One resample per image: horizontal flip, object scale, shift (whole pixels when the scale is 1,
// so that nothing is blurred), edges replicated.
at::Tensor augment(const at::Tensor& x, const at::Tensor& flip_ok, const ClassifierRecipeConfig::Augment& a, Rng& rng) {
  const int64_t b = x.size(0), side = x.size(3);
  const at::Tensor u = rng.rand({b, 4});  // flip, scale, shift x, shift y
  const at::Tensor flip = a.hflip ? (u.select(1, 0) < 0.5).logical_and(flip_ok) : torch::zeros({b}, at::kBool);
  const at::Tensor zoom = 1.0 / (a.scale_min + (a.scale_max - a.scale_min) * u.select(1, 1));  // grid units per output unit
  const at::Tensor sx = at::where(flip, -zoom, zoom);
  at::Tensor shift = (u.narrow(1, 2, 2) * 2 - 1) * (a.shift * static_cast<double>(side));  // [B,2] pixels
  if (a.scale_min == 1.0 && a.scale_max == 1.0) shift = shift.round();
  shift = shift * (2.0 / static_cast<double>(side));  // grid units
  const at::Tensor zero = torch::zeros({b});
  const at::Tensor theta = at::stack({at::stack({sx, zero, shift.select(1, 0)}, 1), at::stack({zero, zoom, shift.select(1, 1)}, 1)}, 1);  // [B,2,3]
  const at::Tensor grid = at::affine_grid_generator(theta, x.sizes(), /*align_corners=*/false);
  return at::grid_sampler(x, grid, /*bilinear*/ 0, /*border*/ 1, /*align_corners=*/false);
}

// ---- evaluation ---------------------------------------------------------------------------

json evaluate(models::ImageClassifier& classifier, const LabelledSet& set, const ClassifierRecipeConfig& c) {
  const int64_t k = classifier.config().num_classes;
  const at::Tensor predicted = classifier.logits(set.images).argmax(1);
  at::Tensor confusion = torch::zeros({k * k}, at::kLong);
  confusion.index_add_(0, set.labels * k + predicted, torch::ones_like(set.labels));
  confusion = confusion.view({k, k});  // [true, predicted]
  const auto n = set.labels.size(0);
  const int64_t correct = confusion.diagonal().sum().item<int64_t>();
  json per_class = json::array(), rows = json::array();
  const auto& names = classifier.config().class_names;
  for (int64_t i = 0; i < k; ++i) {
    const at::Tensor row = confusion[i].contiguous();
    const int64_t num = row.sum().item<int64_t>();
    per_class.push_back({{"label", i},
                         {"class", i < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(i)] : std::to_string(i)},
                         {"num", num},
                         {"accuracy", num ? static_cast<double>(row[i].item<int64_t>()) / static_cast<double>(num) : 0.0}});
    rows.push_back(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + k));
  }
  return {{"metric", "accuracy"},
          {"dataset", c.dataset.name},
          {"split", c.eval.split},
          {"resolution", c.dataset.resolution},
          {"num", n},
          {"accuracy", n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0},
          {"per_class", per_class},
          {"confusion", rows}};
}

}  // namespace

ClassifierRecipeConfig ClassifierRecipeConfig::from_json(const json& j, const std::string& source) {
  ClassifierRecipeConfig c;
  std::vector<std::string> problems;
  if (!check_keys(j, "config", {"dataset", "model", "batch_size", "train"}, {"seed", "label_smoothing", "augment", "eval"},
                  problems))
    throw UsageError(source + ": the recipe config must be a JSON object");
  read(j, "config", "seed", c.seed, problems);
  read(j, "config", "batch_size", c.batch_size, problems);
  if (j.contains("batch_size") && c.batch_size < 1) problems.push_back("batch_size must be >= 1");
  read(j, "config", "label_smoothing", c.label_smoothing, problems);
  if (!(c.label_smoothing >= 0 && c.label_smoothing < 1)) problems.push_back("label_smoothing must be in [0, 1)");
  const auto section = [&](const char* key) { return j.contains(key) ? j.at(key) : json::object(); };

  recipe::read_dataset_section(j, c.dataset, problems);
  read(j, "config", "model", c.model_config, problems);
  if (!c.model_config.is_object()) {
    problems.push_back("model must be a JSON object");
    c.model_config = json::object();
  }

  const json aug = section("augment");
  if (check_keys(aug, "augment", {}, {"hflip", "scale", "shift"}, problems)) {
    read(aug, "augment", "hflip", c.augment.hflip, problems);
    std::vector<double> scale = {c.augment.scale_min, c.augment.scale_max};
    read(aug, "augment", "scale", scale, problems);
    if (scale.size() != 2 || !(scale[0] > 0 && scale[0] <= scale[1] && scale[1] <= 4))
      problems.push_back("augment.scale must be [min, max] with 0 < min <= max <= 4");
    else
      c.augment.scale_min = scale[0], c.augment.scale_max = scale[1];
    read(aug, "augment", "shift", c.augment.shift, problems);
    if (!(c.augment.shift >= 0 && c.augment.shift <= 0.5)) problems.push_back("augment.shift must be in [0, 0.5]");
  }
  recipe::read_eval_section(j, c.eval, problems);
  recipe::read_train_section(j, "", c.seed, c.train, problems);

  // The model config as the recipe will build it.
  try {
    models::ImageClassifierConfig::from_json(derive_model_config(c, problems), "model");
  } catch (const Error& e) {
    problems.push_back(e.what());
  }

  recipe::throw_if_problems(source, problems);
  return c;
}

ClassifierRecipeConfig ClassifierRecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

ClassifierRecipeResult run_classifier_recipe(const ClassifierRecipeConfig& c, const ClassifierRecipeOptions& o) {
  if (o.out_dir.empty()) throw UsageError("run_classifier_recipe: no output folder");
  const fs::path out = o.out_dir, model_dir = out / "model";
  fs::create_directories(model_dir);
  recipe::write_json(out / "recipe.json", {{"recipe", "classifier"}, {"seed", c.seed}});
  ClassifierRecipeResult result;
  result.model_dir = model_dir.string();
  const auto done = [&](const char* stage, bool finished) { recipe::mark_stage(stage, finished, result.ran, result.skipped); };
  const bool have_model = fs::exists(model_dir / "config.json") && fs::exists(model_dir / "model.safetensors");
  if (have_model && fs::exists(out / "eval.json")) {
    for (const char* stage : {"data", "train", "save", "eval"}) done(stage, true);
    result.eval = json::parse(read_text_file((out / "eval.json").string(), size_t{16} << 20));
    return result;
  }

  // 1 data
  done("data", false);
  std::vector<std::string> problems;
  auto model_config = models::ImageClassifierConfig::from_json(derive_model_config(c, problems), "model");
  const auto ds = recipe::open_dataset(c.dataset, c.seed);
  torch::manual_seed(c.seed);
  std::optional<models::ImageClassifier> classifier;
  if (have_model) classifier.emplace(models::ImageClassifier::load(model_dir.string()));
  else classifier.emplace(model_config);
  const auto preprocess = [&](const at::Tensor& x) { return classifier->preprocess(x); };
  const auto keep = [](const at::Tensor& x) { return x; };
  LabelledSet train_set;
  if (!have_model) train_set = render(*ds, ds->size(), c.dataset.resolution, model_config.num_classes, "train", preprocess);
  const auto eval_ds = data::make_dataset(recipe::dataset_spec(c.dataset, data::parse_split(c.eval.split), c.seed));
  if (c.eval.split == c.dataset.split) log_warn("eval.split is the training split: the accuracy is not a held-out one");
  const size_t eval_n = c.eval.num > 0 ? std::min<size_t>(static_cast<size_t>(c.eval.num), eval_ds->size()) : eval_ds->size();
  if (eval_n == 0) throw UsageError("dataset " + c.dataset.name + " has no samples in the evaluation split " + c.eval.split);
  const LabelledSet eval_set = render(*eval_ds, eval_n, c.dataset.resolution, model_config.num_classes, c.eval.split, keep);
  log_info("data: " + std::to_string(have_model ? 0 : ds->size()) + " training and " + std::to_string(eval_n) + " " +
           c.eval.split + " images at " + std::to_string(c.dataset.resolution) + " px");

  // 2 train
  done("train", have_model);
  if (!have_model) {
    models::ImageClassifierModel& model = classifier->model();
    // Class names from the data when the config gives none (every label must have one).
    std::map<int64_t, std::string> names = train_set.class_names;
    names.insert(eval_set.class_names.begin(), eval_set.class_names.end());
    if (model->config.class_names.empty() && static_cast<int64_t>(names.size()) == model->config.num_classes)
      for (const auto& [label, name] : names) model->config.class_names.push_back(name);
    Trainer trainer(*model, c.train, (out / "train").string());
    trainer.extra_state = {{"recipe", "classifier"}, {"model", model->config.to_json()}};
    if (trainer.resume_if_allowed(o.resume, "training")) recipe::truncate_log((out / "train" / "validation.jsonl").string(), trainer.step());
    data::LoaderOptions lo;
    lo.batch_size = c.batch_size;
    lo.resolution = c.dataset.resolution;
    lo.seed = c.seed;
    lo.prefetch = 0;
    const data::DataLoader order(ds, lo);  // only its order: indices(step)
    const int64_t accum = c.train.grad_accum;
    const auto start = std::chrono::steady_clock::now();
    const auto options = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(c.label_smoothing);
    const auto outcome = trainer.run(
        [&](int64_t step, int64_t micro, Rng& rng) {
          const auto picked = order.indices(step * accum + micro);
          const at::Tensor idx = at::tensor(std::vector<int64_t>(picked.begin(), picked.end()), at::kLong);
          compat::AutocastGuard f32(at::kCPU, at::kBFloat16, /*enabled=*/false);
          const at::Tensor x = augment(train_set.images.index_select(0, idx), train_set.flip_ok.index_select(0, idx), c.augment, rng);
          at::Tensor logits;
          {
            compat::AutocastGuard autocast(at::kCPU, at::kBFloat16, c.train.autocast == "bf16");
            logits = model->forward(x);
          }
          return torch::nn::functional::cross_entropy(logits.to(at::kFloat), train_set.labels.index_select(0, idx), options);
        },
        [&](int64_t step) {
          if (step == c.train.steps) return;  // the end is stage 4
          const double accuracy = evaluate(*classifier, eval_set, c)["accuracy"].get<double>();
          std::ofstream(out / "train" / "validation.jsonl", std::ios::app)
              << json({{"step", step}, {"accuracy", accuracy}}).dump() << "\n";
          log_info("step " + std::to_string(step) + ": " + c.eval.split + " accuracy " + std::to_string(accuracy));
        });
    if (outcome == Trainer::Outcome::Interrupted) {
      result.interrupted = true;
      return result;
    }
    log_info("train: " + std::to_string(c.train.steps) + " steps, " +
             std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()) +
             " s in this run");
    // 3 save (the EMA weights when the run keeps them)
    trainer.apply_ema();
    model->eval();
    classifier->save(model_dir.string());
  }
  done("save", have_model);

  // 4 eval
  done("eval", false);
  result.eval = evaluate(*classifier, eval_set, c);
  recipe::write_json(out / "eval.json", result.eval);
  log_info(c.eval.split + " accuracy " + std::to_string(result.eval["accuracy"].get<double>()) + " (" +
           std::to_string(eval_n) + " images); classifier: " + model_dir.string());
  return result;
}

}  // namespace genvis::train
