// The recipe shared by genvis' text-image encoders (the contrastive encoder, DAMSM): one dataset
// rendered once, a BPE tokenizer trained on its captions, augmentation, a matching loss of the
// encoder's kind, R-precision of real images as the evaluation. contrastive_recipe.h and
// damsm_recipe.h each supply a TextImageEncoderKind; their headers document the stages.
//
//   auto c = TextImageEncoderRecipeConfig::from_json(j, "config.json", kind);
//   auto r = run_text_image_encoder_recipe(c, {.out_dir = "runs/x"}, kind);
#pragma once
#include "data/dataset.h"
#include "eval/r_precision.h"
#include "train/recipe_config.h"
#include "train/trainer.h"

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::train {

struct TextImageEncoderRecipeConfig {
  using Dataset = recipe::DatasetSection;
  Dataset dataset;
  int64_t vocab_size = 0;
  nlohmann::json model_config;  // the encoder kind's config keys
  int64_t batch_size = 0;
  struct Augment {
    bool hflip = true;
    double scale_min = 1.0, scale_max = 1.0;  // object size factor, uniform
    double shift = 0.0;                       // max shift, fraction of the side
    double noise = 0.0;                       // Gaussian noise std (pixels in [-1,1])
  } augment;
  struct Eval {
    int64_t num = 200;  // samples per split (0: no evaluation)
    int64_t k = 100;
    uint64_t seed = 0;
  } eval;
  TrainConfig train;
  uint64_t seed = 0;
};

struct TextImageEncoderRecipeOptions {
  std::string out_dir;
  // Continue an unfinished training from its latest checkpoint. Without it, an unfinished
  // training that has checkpoints is a UsageError (nothing is overwritten).
  bool resume = false;
};

struct TextImageEncoderRecipeResult {
  std::string model_dir;                  // <out>/model
  std::vector<std::string> ran, skipped;  // stage names
  bool interrupted = false;               // SIGINT/SIGTERM: a checkpoint was written, rerun with resume
  nlohmann::json eval;                    // the contents of <out>/eval.json (null when not evaluated)
};

// One encoder being trained, as the shared recipe sees it.
class TextImageEncoderModel {
public:
  virtual ~TextImageEncoderModel() = default;
  virtual torch::nn::Module& module() = 0;
  virtual nlohmann::json config_json() const = 0;
  virtual void save(const std::string& folder) const = 0;
  // Tokenises the training captions once; loss() then names them by row.
  virtual void set_captions(const std::vector<std::string>& captions) = 0;
  // The matching loss of a batch: images [B,3,R,R] in [-1,1], rows [B] int64 into the captions
  // given to set_captions, caption_ids [B] int64 (equal texts, equal ids: not negatives).
  virtual at::Tensor loss(const at::Tensor& images, const at::Tensor& rows, const at::Tensor& caption_ids) = 0;
  // L2-normalised embeddings for R-precision (no gradients).
  virtual eval::TextImageEmbedder embedder() = 0;
  // Extra words for the validation log line ("" for none).
  virtual std::string describe() { return ""; }
};

struct TextImageEncoderKind {
  std::string recipe;  // "contrastive", "damsm": recipe.json, the trainer's extra state, messages
  // The model config with the keys the recipe derives (image size, vocabulary); a problem for a
  // derived key the user set to something else.
  std::function<nlohmann::json(const TextImageEncoderRecipeConfig&, std::vector<std::string>&)> derive_model_config;
  // Parses a derived model config; throws Error naming every problem.
  std::function<void(const nlohmann::json&)> check_model_config;
  std::function<std::unique_ptr<TextImageEncoderModel>(const nlohmann::json& model_config, const std::string& tokenizer_dir)>
      create;
  std::function<std::unique_ptr<TextImageEncoderModel>(const std::string& folder)> load;
  int64_t min_batch_size = 2;
};

// A dataset split rendered once, unaugmented (the data stage of the text-image recipes and GANs).
struct RenderedImageTextSet {
  at::Tensor images;                  // [N,3,R,R] in [-1,1]
  at::Tensor flip_ok;                 // [N] bool: the caption allows a horizontal flip
  std::vector<std::string> captions;  // N
  at::Tensor caption_ids;             // [N] int64: equal texts, equal ids
};
RenderedImageTextSet render_image_text_set(const data::Dataset& ds, int64_t resolution);

// One affine resample per image of x [B,3,R,R] (a horizontal flip where flip_ok and a.hflip,
// object scale in [scale_min, scale_max], shift up to a.shift of the side; edges replicated),
// plus Gaussian noise of std a.noise, all drawn from `rng`.
at::Tensor augment_images(const at::Tensor& x, const at::Tensor& flip_ok, const TextImageEncoderRecipeConfig::Augment& a,
                          Rng& rng);

// root["augment"] (optional; keys hflip, scale [min, max], shift, noise) into `a`.
void read_augment_section(const nlohmann::json& root, TextImageEncoderRecipeConfig::Augment& a,
                          std::vector<std::string>& problems);

// Every unknown key, missing key and invalid value (the model config's and the TrainConfig's
// too) in one UsageError naming `source`.
TextImageEncoderRecipeConfig parse_text_image_encoder_config(const nlohmann::json& json, const std::string& source,
                                                             const TextImageEncoderKind& kind);

TextImageEncoderRecipeResult run_text_image_encoder_recipe(const TextImageEncoderRecipeConfig& config,
                                                           const TextImageEncoderRecipeOptions& options,
                                                           const TextImageEncoderKind& kind);

}  // namespace genvis::train
