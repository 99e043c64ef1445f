#include "train/video_classifier_recipe.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/torch_compat.h"
#include "data/registry.h"
#include "io/image_tensor.h"
#include "models/video_classifier/video_classifier.h"

#include <ATen/CPUGeneratorImpl.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using recipe::check_keys;
using recipe::read;

// Clips [0, n) of a split: the model's input and each head's label (-1: not among its classes).
struct ClipSet {
  at::Tensor videos;                   // [N,3,T,S,S] in [-1,1]
  std::vector<at::Tensor> labels;      // per head [N] int64
};

data::DatasetSpec clip_spec(const VideoClassifierRecipeConfig& c, data::Split split, bool training) {
  data::DatasetSpec spec = recipe::dataset_spec(c.dataset, split, c.seed);
  spec.num_frames = static_cast<int>(c.frames);
  if (training) spec.size = static_cast<size_t>(c.dataset.size);
  return spec;
}

// Clips [0, n) of a split as rendered: chunks of [<=256,3,T,H,W] in [0,1] and each clip's meta.
struct RenderedClips {
  std::vector<at::Tensor> chunks;
  std::vector<json> metas;
};

RenderedClips render(const data::VideoDataset& ds, size_t n, const std::string& what) {
  RenderedClips r;
  std::vector<at::Tensor> rows;
  Progress progress("rendering " + what, static_cast<int64_t>(n));
  for (size_t i = 0; i < n; ++i) {
    data::VideoSample s = ds.get(i);
    std::vector<at::Tensor> frames;
    for (const auto& f : s.frames) frames.push_back(io::image_to_tensor(f.to_8bit().with_channels(3)));  // [1,3,H,W] [-1,1]
    rows.push_back((at::stack(frames, 2) + 1) * 0.5);  // [1,3,T,H,W] in [0,1]
    r.metas.push_back(std::move(s.meta));
    if (rows.size() == 256 || i + 1 == n) {
      r.chunks.push_back(at::cat(rows));
      rows.clear();
    }
    progress.update(static_cast<int64_t>(i + 1));
  }
  progress.finish();
  return r;
}

// Rendered clips through the classifier's preprocessing, with each head's label (consumes `clips`).
ClipSet to_clip_set(RenderedClips&& clips, const models::VideoClassifier& model) {
  ClipSet r;
  std::vector<at::Tensor> inputs;
  for (auto& chunk : clips.chunks) {
    inputs.push_back(model.preprocess(chunk));
    chunk = at::Tensor();
  }
  r.videos = inputs.empty() ? torch::empty({0}) : at::cat(inputs);
  std::vector<std::vector<int64_t>> labels(model.config().heads.size());
  for (const auto& meta : clips.metas) {
    const auto l = model.labels_of(meta);
    for (size_t h = 0; h < l.size(); ++h) labels[h].push_back(l[h]);
  }
  for (auto& l : labels) r.labels.push_back(at::tensor(l, at::kLong));
  return r;
}

// The classes of each head: the sorted distinct values over the training clips' metas.
std::vector<std::vector<std::string>> collect_classes(const std::vector<json>& metas, const std::string& dataset,
                                                      const VideoClassifierRecipeConfig& c) {
  std::vector<std::set<std::string>> seen(c.heads.size());
  for (size_t i = 0; i < metas.size(); ++i)
    for (size_t h = 0; h < c.heads.size(); ++h) {
      const auto value = models::meta_class_name(metas[i], c.heads[h].key);
      if (!value)
        throw UsageError("dataset " + dataset + ": clip " + std::to_string(i) + " has no string value at " +
                         c.heads[h].key + " (heads[].key must point into every clip's meta)");
      seen[h].insert(*value);
    }
  std::vector<std::vector<std::string>> out;
  for (size_t h = 0; h < c.heads.size(); ++h) {
    if (seen[h].size() < 2)
      throw UsageError("heads[" + std::to_string(h) + "] (" + c.heads[h].name + "): the training clips show only " +
                       std::to_string(seen[h].size()) + " value(s) at " + c.heads[h].key + "; a head needs at least 2");
    out.emplace_back(seen[h].begin(), seen[h].end());
  }
  return out;
}

json model_config_with(const VideoClassifierRecipeConfig& c, const std::vector<std::vector<std::string>>& classes) {
  json m = c.model_config;
  m["image_size"] = c.dataset.resolution;
  m["heads"] = json::array();
  for (size_t h = 0; h < c.heads.size(); ++h)
    m["heads"].push_back({{"name", c.heads[h].name}, {"key", c.heads[h].key},
                          {"classes", h < classes.size() ? classes[h] : std::vector<std::string>{"a", "b"}}});
  return m;
}

json evaluate(models::VideoClassifier& model, const ClipSet& set, const VideoClassifierRecipeConfig& c) {
  json heads = json::object();
  const auto out = model.run((set.videos + 1) * 0.5);
  for (size_t h = 0; h < out.logits.size(); ++h) {
    const at::Tensor known = set.labels[h] >= 0;
    const int64_t n = known.sum().item<int64_t>();
    const int64_t correct = (out.logits[h].argmax(1) == set.labels[h]).logical_and(known).sum().item<int64_t>();
    heads[model.config().heads[h].name] = {{"accuracy", n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0},
                                           {"num", n}};
  }
  return {{"dataset", c.dataset.name},
          {"split", c.eval.split},
          {"frames", c.frames},
          {"resolution", c.dataset.resolution},
          {"num", set.videos.size(0)},
          {"heads", heads}};
}

}  // namespace

VideoClassifierRecipeConfig VideoClassifierRecipeConfig::from_json(const json& j, const std::string& source) {
  VideoClassifierRecipeConfig c;
  std::vector<std::string> problems;
  if (!check_keys(j, "config", {"dataset", "heads", "model", "batch_size", "train"}, {"seed", "frames", "eval"}, problems))
    throw UsageError(source + ": the recipe config must be a JSON object");
  read(j, "config", "seed", c.seed, problems);
  read(j, "config", "frames", c.frames, problems);
  if (c.frames < 1 || c.frames > 256) problems.push_back("frames must be in 1..256");
  read(j, "config", "batch_size", c.batch_size, problems);
  if (j.contains("batch_size") && c.batch_size < 1) problems.push_back("batch_size must be >= 1");
  recipe::read_dataset_section(j, c.dataset, problems);
  if (!c.dataset.name.empty()) {
    try {
      if (!data::is_video_dataset(c.dataset.name))
        problems.push_back("dataset.name: " + c.dataset.name + " is an image dataset; the video encoder needs clips");
    } catch (const Error& e) {
      problems.push_back(std::string("dataset.name: ") + e.what());
    }
  }
  if (j.contains("heads")) {
    if (!j["heads"].is_array() || j["heads"].empty()) problems.push_back("heads must be a non-empty list of {name, key}");
    else
      for (size_t i = 0; i < j["heads"].size(); ++i) {
        const std::string at = "heads[" + std::to_string(i) + "]";
        Head h;
        if (check_keys(j["heads"][i], at, {"name", "key"}, {}, problems)) {
          read(j["heads"][i], at, "name", h.name, problems);
          read(j["heads"][i], at, "key", h.key, problems);
        }
        c.heads.push_back(h);
      }
  }
  read(j, "config", "model", c.model_config, problems);
  if (!c.model_config.is_object()) {
    problems.push_back("model must be a JSON object");
    c.model_config = json::object();
  }
  for (const char* k : {"image_size", "heads"})
    if (c.model_config.contains(k)) problems.push_back(std::string("model.") + k + " is set by the recipe; remove it");
  recipe::read_eval_section(j, c.eval, problems);

  recipe::read_train_section(j, "", c.seed, c.train, problems);
  // The model config as the recipe will build it (placeholder classes until the data is read).
  if (problems.empty()) {
    try {
      models::VideoClassifierConfig::from_json(model_config_with(c, {}), "model");
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  recipe::throw_if_problems(source, problems);
  return c;
}

VideoClassifierRecipeConfig VideoClassifierRecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

VideoClassifierRecipeResult run_video_classifier_recipe(const VideoClassifierRecipeConfig& c,
                                                        const VideoClassifierRecipeOptions& o) {
  if (o.out_dir.empty()) throw UsageError("run_video_classifier_recipe: no output folder");
  const fs::path out = o.out_dir, model_dir = out / "model";
  fs::create_directories(model_dir);
  recipe::write_json(out / "recipe.json", {{"recipe", "video-classifier"}, {"seed", c.seed}});
  VideoClassifierRecipeResult result;
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
  const auto train_ds = data::make_video_dataset(clip_spec(c, data::parse_split(c.dataset.split), true));
  torch::manual_seed(c.seed);
  std::optional<models::VideoClassifier> model;
  ClipSet train_set;
  if (have_model) {
    model.emplace(models::VideoClassifier::load(model_dir.string()));
  } else {
    RenderedClips clips = render(*train_ds, train_ds->size(), "train");
    model.emplace(models::VideoClassifierConfig::from_json(model_config_with(c, collect_classes(clips.metas, train_ds->name(), c)), "model"));
    train_set = to_clip_set(std::move(clips), *model);
  }
  const auto eval_ds = data::make_video_dataset(clip_spec(c, data::parse_split(c.eval.split), false));
  if (c.eval.split == c.dataset.split) log_warn("eval.split is the training split: the accuracy is not a held-out one");
  const size_t eval_n = c.eval.num > 0 ? std::min<size_t>(static_cast<size_t>(c.eval.num), eval_ds->size()) : eval_ds->size();
  if (eval_n == 0) throw UsageError("dataset " + c.dataset.name + " has no clips in the evaluation split " + c.eval.split);
  const ClipSet eval_set = to_clip_set(render(*eval_ds, eval_n, c.eval.split), *model);
  log_info("data: " + std::to_string(have_model ? 0 : train_ds->size()) + " training and " + std::to_string(eval_n) +
           " " + c.eval.split + " clips of " + std::to_string(c.frames) + " frames at " +
           std::to_string(c.dataset.resolution) + " px");

  // 2 train
  done("train", have_model);
  if (!have_model) {
    models::VideoClassifierModel& net = model->model();
    Trainer trainer(*net, c.train, (out / "train").string());
    trainer.extra_state = {{"recipe", "video-classifier"}, {"model", net->config.to_json()}};
    if (trainer.resume_if_allowed(o.resume, "training"))
      recipe::truncate_log((out / "train" / "validation.jsonl").string(), trainer.step());
    const int64_t n = train_set.videos.size(0), per_epoch = std::max<int64_t>(1, n / c.batch_size);
    const int64_t accum = c.train.grad_accum;
    const auto outcome = trainer.run(
        [&](int64_t step, int64_t micro, Rng&) {
          // Epoch e's order: a permutation seeded by (seed, e); batch b of it.
          const int64_t s = step * accum + micro, epoch = s / per_epoch, b = s % per_epoch;
          const at::Tensor order = at::randperm(n, at::make_generator<at::CPUGeneratorImpl>(c.seed * 1000003 + epoch), at::kLong);
          const at::Tensor idx = order.narrow(0, b * std::min(c.batch_size, n), std::min(c.batch_size, n));
          const at::Tensor x = train_set.videos.index_select(0, idx);
          std::vector<at::Tensor> logits;
          {
            compat::AutocastGuard autocast(at::kCPU, at::kBFloat16, c.train.autocast == "bf16");
            logits = net->classify(net->features(x));
          }
          at::Tensor loss = torch::zeros({});
          for (size_t h = 0; h < logits.size(); ++h)
            loss = loss + torch::nn::functional::cross_entropy(logits[h].to(at::kFloat), train_set.labels[h].index_select(0, idx));
          return loss / static_cast<double>(logits.size());
        },
        [&](int64_t step) {
          if (step == c.train.steps) return;  // the end is stage 4
          json record = evaluate(*model, eval_set, c)["heads"];
          std::string line;
          for (const auto& [name, v] : record.items()) line += " " + name + " " + std::to_string(v["accuracy"].get<double>());
          record["step"] = step;
          std::ofstream(out / "train" / "validation.jsonl", std::ios::app) << record.dump() << "\n";
          log_info("step " + std::to_string(step) + ": " + c.eval.split + " accuracy" + line);
        });
    if (outcome == Trainer::Outcome::Interrupted) {
      result.interrupted = true;
      return result;
    }
    // 3 save (the EMA weights when the run keeps them)
    trainer.apply_ema();
    net->eval();
    model->save(model_dir.string());
  }
  done("save", have_model);

  // 4 eval
  done("eval", false);
  result.eval = evaluate(*model, eval_set, c);
  recipe::write_json(out / "eval.json", result.eval);
  std::string line;
  for (const auto& [name, v] : result.eval["heads"].items()) line += " " + name + " " + std::to_string(v["accuracy"].get<double>());
  log_info(c.eval.split + " accuracy (" + std::to_string(eval_n) + " clips):" + line + "; encoder: " + model_dir.string());
  return result;
}

}  // namespace genvis::train
