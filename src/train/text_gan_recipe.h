// What the text-conditional GAN recipes (`genvis train dfgan`, `genvis train attngan`) share:
// the `damsm` section (a folder, or a DAMSM recipe trained first into <out>/damsm/), the Adam
// groups, the divergence check, and the validation report (a sample grid of fixed captions x 4
// seeds, the last discriminator's accuracy on real and generated images, in-batch diversity
// against real images', and the collapse warnings) appended to <out>/train/validation.jsonl.
#pragma once
#include "data/loader.h"
#include "models/damsm/damsm_encoder.h"
#include "train/damsm_recipe.h"
#include "train/recipe_config.h"
#include "train/text_image_encoder_recipe.h"
#include "train/trainer.h"

#include <ATen/ATen.h>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace genvis::train::text_gan {

struct DamsmSource {
  std::string dir;                          // a DAMSM folder, or
  std::optional<DamsmRecipeConfig> pretrain;  // a DAMSM trained first
  int64_t embedding_dim() const;              // 0 when only the folder knows
};

// The settings every text-GAN recipe config has: dataset, tokenizer.vocab_size, damsm, model
// (the family's config keys less the derived ones), batch_size (>= 2: the mismatched pairs),
// augment, samples (validation captions), train, seed.
struct CommonConfig {
  recipe::DatasetSection dataset;
  int64_t vocab_size = 1024;  // the pretrained DAMSM's tokenizer
  DamsmSource damsm;
  nlohmann::json model_config = nlohmann::json::object();
  int64_t batch_size = 32;
  TextImageEncoderRecipeConfig::Augment augment;
  int64_t samples = 8;  // captions in the validation grid (4 seeds each)
  TrainConfig train;
  uint64_t seed = 0;
};

// Reads the common keys (required: dataset, damsm, model, batch_size, train); `own` are the
// recipe's further optional keys, read by the caller. UsageError when root is not an object.
void read_common(const nlohmann::json& root, const std::vector<std::string>& own, const std::string& source,
                 CommonConfig& c, std::vector<std::string>& problems);

// The first two stages every text-GAN recipe runs: writes <out>/recipe.json; when <out>/model is
// exported already marks every stage skipped and returns nullopt; else resolves the DAMSM (its
// stage interrupted: `interrupted` and nullopt) and returns it loaded.
std::optional<models::DamsmEncoder> begin(const CommonConfig& c, const char* recipe, const std::filesystem::path& out,
                                          bool resume, const std::function<void(const char*, bool)>& done,
                                          bool& interrupted);

// The data loader's order of the split (its batches' rows, no images loaded).
class BatchOrder {
public:
  BatchOrder(std::shared_ptr<const data::Dataset> ds, const CommonConfig& c);
  at::Tensor rows(int64_t step) const;  // int64 [batch_size]

private:
  std::unique_ptr<data::DataLoader> loader_;
};

// Reads root["damsm"] (a required key): a folder name, or a DAMSM recipe config object that takes
// this recipe's dataset, tokenizer (vocab_size) and seed.
void read_damsm_section(const nlohmann::json& root, int64_t vocab_size, uint64_t seed, DamsmSource& out,
                        std::vector<std::string>& problems);

// The DAMSM folder to use: the given one, or the pretrain stage run into <out>/damsm (nullopt when
// it was interrupted). `done` marks the "damsm" stage.
std::optional<std::string> resolve_damsm(const DamsmSource& source, const std::filesystem::path& out, bool resume,
                                         const std::function<void(const char*, bool)>& done);

// Adam without weight decay or clipping: `lr`, the betas and the EMA decay as given, root[key]
// overriding (GroupConfig keys). constant_lr: min_lr follows lr unless root[key] sets it.
struct GroupDefaults {
  double lr, beta1, beta2, ema_decay = 0.0;
  bool constant_lr = false;
};
void read_group(const nlohmann::json& root, const char* key, const GroupDefaults& defaults, GroupConfig& out,
                std::vector<std::string>& problems);

// root["damsm_lambda"] (optional; the weight of DamsmImageLoss in the generator's loss) into
// `out`, which keeps the recipe's default when the key is absent; must be in [0, 1000].
void read_damsm_lambda(const nlohmann::json& root, double& out, std::vector<std::string>& problems);

// RuntimeError naming the recipe, group and step when the loss is not finite.
void check_finite(const at::Tensor& loss, const char* recipe, const char* group, int64_t step);

// AttnGAN's DAMSM loss on generated images: the frozen DAMSM (eval mode, no parameter gradients)
// encodes the images (resized to its input size) and scores them against the batch's captions, the
// word-level (attention-driven) plus the sentence-level matching loss; rows with equal captions
// are not negatives. The gradient flows to the images only.
class DamsmImageLoss {
public:
  // texts: the DAMSM's encoding of every caption of the data, kept by reference (it must outlive
  // this); caption_ids [N] (equal texts, equal ids).
  DamsmImageLoss(models::DamsmEncoder& damsm, const models::DamsmTexts& texts, at::Tensor caption_ids);
  // images [B,3,R,R] in [-1,1] generated for the data rows `rows` [B].
  at::Tensor operator()(const at::Tensor& images, const at::Tensor& rows) const;

private:
  models::DamsmEncoder& damsm_;
  const models::DamsmTexts& texts_;
  at::Tensor caption_ids_;
};

// x [B,C,H,W] average-pooled to size x size (unchanged when it has that size already).
at::Tensor resize_to(const at::Tensor& x, int64_t size);

// Mean distance between the images of each group of `per` consecutive rows of x [G*per,...].
double mean_pairwise_distance(const at::Tensor& x, int64_t per);

class Validation {
public:
  static constexpr int64_t kSeeds = 4;
  // The first `samples` distinct captions of `data`, and a fixed real batch of as many images.
  Validation(const RenderedImageTextSet& data, int64_t samples, std::filesystem::path out, int64_t resolution);
  // Data rows of the grid: each caption's row kSeeds times.
  at::Tensor rows() const;
  // The fixed real batch: its first n_real() rows of the data.
  int64_t n_real() const { return n_real_; }
  // fake [G*kSeeds,3,R,R] in [-1,1] for rows(); logits of the last discriminator on the real
  // batch and on fake's first n_real() images. Writes the grid and the record, logs a summary.
  void report(const at::Tensor& fake, const at::Tensor& real_logits, const at::Tensor& fake_logits, int64_t step) const;
  std::string log_path() const;

private:
  std::vector<std::string> captions_;
  std::vector<int64_t> rows_;
  int64_t n_real_ = 0;
  double diversity_real_ = 0;
  std::filesystem::path out_;
  int64_t resolution_;
};

}  // namespace genvis::train::text_gan
