#include "train/text_gan_recipe.h"

#include "core/error.h"
#include "core/log.h"
#include "io/image_tensor.h"
#include "models/damsm/damsm_loss.h"
#include "train/recipe_config.h"
#include "train/sample_grid.h"

#include <cmath>
#include <fstream>
#include <set>
#include <torch/torch.h>

namespace genvis::train::text_gan {

namespace fs = std::filesystem;
using json = nlohmann::json;

void read_common(const json& j, const std::vector<std::string>& own, const std::string& source, CommonConfig& c,
                 std::vector<std::string>& problems) {
  std::set<std::string> optional = {"seed", "tokenizer", "augment", "generator", "discriminator", "samples"};
  optional.insert(own.begin(), own.end());
  if (!recipe::check_keys(j, "config", {"dataset", "damsm", "model", "batch_size", "train"}, optional, problems))
    throw UsageError(source + ": the recipe config must be a JSON object");
  recipe::read(j, "config", "seed", c.seed, problems);
  recipe::read(j, "config", "batch_size", c.batch_size, problems);
  if (j.contains("batch_size") && c.batch_size < 2) problems.push_back("batch_size must be >= 2 (the mismatched pairs)");
  recipe::read(j, "config", "samples", c.samples, problems);
  if (c.samples < 1 || c.samples > 64) problems.push_back("samples must be in 1..64");
  recipe::read_dataset_section(j, c.dataset, problems);
  if (j.contains("tokenizer")) recipe::read_tokenizer_section(j, c.vocab_size, problems);
  recipe::read(j, "config", "model", c.model_config, problems);
  if (!c.model_config.is_object()) {
    problems.push_back("model must be a JSON object");
    c.model_config = json::object();
  }
  read_augment_section(j, c.augment, problems);
  recipe::read_train_section(j, "", c.seed, c.train, problems);
  read_damsm_section(j, c.vocab_size, c.seed, c.damsm, problems);
}

std::optional<models::DamsmEncoder> begin(const CommonConfig& c, const char* recipe_name, const fs::path& out,
                                          bool resume, const std::function<void(const char*, bool)>& done,
                                          bool& interrupted) {
  interrupted = false;
  fs::create_directories(out);
  recipe::write_json(out / "recipe.json", {{"recipe", recipe_name}, {"seed", c.seed}});
  if (fs::exists(out / "model" / "model_index.json")) {
    for (const char* stage : {"damsm", "data", "train", "export"}) done(stage, true);
    return std::nullopt;
  }
  const auto dir = resolve_damsm(c.damsm, out, resume, done);
  if (!dir) {
    interrupted = true;
    return std::nullopt;
  }
  auto damsm = models::DamsmEncoder::load(*dir);
  log_info("damsm: " + *dir + " (word and sentence features of " + std::to_string(damsm.config().embedding_dim) + ")");
  return damsm;
}

BatchOrder::BatchOrder(std::shared_ptr<const data::Dataset> ds, const CommonConfig& c) {
  data::LoaderOptions lo;
  lo.batch_size = c.batch_size;
  lo.resolution = c.dataset.resolution;
  lo.seed = c.seed;
  loader_ = std::make_unique<data::DataLoader>(std::move(ds), lo);
}

at::Tensor BatchOrder::rows(int64_t step) const {
  const auto picked = loader_->indices(step);
  return at::tensor(std::vector<int64_t>(picked.begin(), picked.end()), at::kLong);
}

int64_t DamsmSource::embedding_dim() const {
  return pretrain ? pretrain->model_config.value("embedding_dim", int64_t{256}) : 0;
}

void read_damsm_section(const json& j, int64_t vocab_size, uint64_t seed, DamsmSource& out,
                        std::vector<std::string>& problems) {
  if (!j.contains("damsm")) return;  // check_keys names the missing key
  const json& d = j.at("damsm");
  if (d.is_string()) {
    out.dir = d.get<std::string>();
    if (out.dir.empty()) problems.push_back("damsm: an empty folder name");
  } else if (d.is_object()) {
    json dj = d;
    for (const char* key : {"seed", "dataset", "tokenizer"})
      if (dj.contains(key)) problems.push_back(std::string("damsm.") + key + " is the recipe's own " + key);
    if (j.contains("dataset")) dj["dataset"] = j.at("dataset");
    dj["tokenizer"] = {{"vocab_size", vocab_size}};
    dj["seed"] = seed;
    try {
      out.pretrain = DamsmRecipeConfig::from_json(dj, "damsm");
    } catch (const UsageError& e) {
      problems.push_back(e.what());
    }
  } else {
    problems.push_back("damsm must be a DAMSM folder or a DAMSM recipe config object");
  }
}

std::optional<std::string> resolve_damsm(const DamsmSource& source, const fs::path& out, bool resume,
                                         const std::function<void(const char*, bool)>& done) {
  done("damsm", !source.pretrain.has_value());
  if (!source.pretrain) return source.dir;
  const auto r = run_damsm_recipe(*source.pretrain, {.out_dir = (out / "damsm").string(), .resume = resume});
  if (r.interrupted) return std::nullopt;
  return r.model_dir;
}

void read_group(const json& j, const char* key, const GroupDefaults& d, GroupConfig& out,
                std::vector<std::string>& problems) {
  GroupConfig defaults;
  defaults.lr = d.lr;
  defaults.beta1 = d.beta1;
  defaults.beta2 = d.beta2;
  defaults.ema_decay = d.ema_decay;
  defaults.weight_decay = 0.0;
  defaults.grad_clip = 0.0;
  out = defaults;
  if (j.contains(key)) {
    try {
      out = GroupConfig::from_json(j.at(key), key, defaults);
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  if (d.constant_lr && !(j.contains(key) && j.at(key).is_object() && j.at(key).contains("min_lr"))) out.min_lr = out.lr;
}

void read_damsm_lambda(const json& j, double& out, std::vector<std::string>& problems) {
  recipe::read(j, "config", "damsm_lambda", out, problems);
  if (!(out >= 0 && out <= 1000)) problems.push_back("damsm_lambda must be in [0, 1000]");
}

void check_finite(const at::Tensor& loss, const char* recipe, const char* group, int64_t step) {
  if (!std::isfinite(loss.item<double>()))
    throw RuntimeError(std::string(recipe) + ": the " + group + " loss is not finite at step " + std::to_string(step + 1) +
                       "; the run diverged (lower the learning rates, or resume from an earlier checkpoint)");
}

DamsmImageLoss::DamsmImageLoss(models::DamsmEncoder& damsm, const models::DamsmTexts& texts, at::Tensor caption_ids)
    : damsm_(damsm), texts_(texts), caption_ids_(std::move(caption_ids)) {
  models::DamsmModel& matcher = damsm_.model();
  matcher->eval();
  for (auto& p : matcher->parameters()) p.requires_grad_(false);
}

at::Tensor DamsmImageLoss::operator()(const at::Tensor& images, const at::Tensor& rows) const {
  const auto& dc = damsm_.config();
  const models::damsm::Gammas gammas{dc.gamma1, dc.gamma2, dc.gamma3};
  const auto image = damsm_.model()->encode_image(resize_to(images, dc.vision_config.image_size));
  const at::Tensor same = models::damsm::same_caption_mask(caption_ids_.index_select(0, rows));
  const at::Tensor words = models::damsm::word_scores(texts_.words.index_select(0, rows),
                                                      texts_.mask.index_select(0, rows), image.regions, gammas);
  const at::Tensor sentences = models::damsm::sentence_scores(texts_.sentence.index_select(0, rows), image.global);
  return models::damsm::matching_loss(words, gammas.gamma3, same) +
         models::damsm::matching_loss(sentences, gammas.gamma3, same);
}

at::Tensor resize_to(const at::Tensor& x, int64_t size) {
  return x.size(2) == size ? x : at::adaptive_avg_pool2d(x, {size, size});
}

double mean_pairwise_distance(const at::Tensor& x, int64_t per) {
  const at::Tensor flat = x.reshape({x.size(0) / per, per, -1}).to(at::kDouble);
  const at::Tensor d = at::cdist(flat, flat);  // [G,per,per]
  return d.sum().item<double>() / static_cast<double>(flat.size(0) * per * (per - 1));
}

Validation::Validation(const RenderedImageTextSet& data, int64_t samples, fs::path out, int64_t resolution)
    : out_(std::move(out)), resolution_(resolution) {
  std::set<std::string> seen;
  for (size_t i = 0; i < data.captions.size() && captions_.size() < static_cast<size_t>(samples); ++i)
    if (seen.insert(data.captions[i]).second) {
      captions_.push_back(data.captions[i]);
      rows_.push_back(static_cast<int64_t>(i));
    }
  n_real_ = std::min<int64_t>(static_cast<int64_t>(rows_.size()) * kSeeds, data.images.size(0));
  // The real batch's diversity does not change as the models train.
  diversity_real_ = mean_pairwise_distance(data.images.narrow(0, 0, (n_real_ / kSeeds) * kSeeds), kSeeds);
}

at::Tensor Validation::rows() const { return at::tensor(rows_, at::kLong).repeat_interleave(kSeeds); }

std::string Validation::log_path() const { return (out_ / "train" / "validation.jsonl").string(); }

void Validation::report(const at::Tensor& fake, const at::Tensor& real_logits, const at::Tensor& fake_logits,
                        int64_t step) const {
  std::vector<io::Image> images;
  std::vector<std::string> labels;
  for (int64_t i = 0; i < fake.size(0); ++i) {
    images.push_back(io::tensor_to_image(fake[i]));
    labels.push_back(i % kSeeds == 0 ? captions_[static_cast<size_t>(i / kSeeds)] : "");
  }
  const std::string grid = write_sample_grid(images, labels, resolution_, out_ / "samples", step, kSeeds);
  const double acc_real = (real_logits > 0).to(at::kDouble).mean().item<double>();
  const double acc_fake = (fake_logits < 0).to(at::kDouble).mean().item<double>();
  const double diversity = mean_pairwise_distance(fake, kSeeds);
  const json record = {{"step", step},
                       {"d_accuracy_real", acc_real},
                       {"d_accuracy_fake", acc_fake},
                       {"diversity", diversity},
                       {"diversity_real", diversity_real_}};
  std::ofstream(log_path(), std::ios::app) << record.dump() << "\n";
  std::string warn;
  if (acc_real > 0.99 && acc_fake > 0.99) warn += "; the discriminator wins outright (the generator may have collapsed)";
  if (diversity < 0.1 * diversity_real_) warn += "; little diversity across z (mode collapse?)";
  log_info("step " + std::to_string(step) + ": D accuracy real " + std::to_string(acc_real) + ", generated " +
           std::to_string(acc_fake) + "; diversity " + std::to_string(diversity) + " (real images " +
           std::to_string(diversity_real_) + ")" + warn + "; samples " + grid);
}

}  // namespace genvis::train::text_gan
