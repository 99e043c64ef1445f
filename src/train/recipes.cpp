#include "train/recipes.h"

#include "core/error.h"
#include "train/classifier_recipe.h"
#include "train/contrastive_recipe.h"
#include "train/dalle_recipe.h"
#include "train/damsm_recipe.h"
#include "train/attngan_recipe.h"
#include "train/dfgan_recipe.h"
#include "train/dvae_recipe.h"
#include "train/ldm_recipe.h"
#include "train/video_classifier_recipe.h"
#include "train/video_recipe.h"

#include <algorithm>
#include <mutex>

namespace genvis::train {
namespace {

RecipeRunResult run_ldm(const std::string& config_path, const RecipeRunOptions& o) {
  const auto config = LDMRecipeConfig::from_file(config_path);
  const auto r = run_ldm_recipe(config, {.out_dir = o.out_dir, .resume = o.resume});
  return {.output = r.model_dir, .interrupted = r.interrupted};
}

RecipeRunResult run_contrastive(const std::string& config_path, const RecipeRunOptions& o) {
  const auto config = ContrastiveRecipeConfig::from_file(config_path);
  const auto r = run_contrastive_recipe(config, {.out_dir = o.out_dir, .resume = o.resume});
  return {.output = r.model_dir, .interrupted = r.interrupted};
}

RecipeRunResult run_damsm(const std::string& config_path, const RecipeRunOptions& o) {
  const auto config = DamsmRecipeConfig::from_file(config_path);
  const auto r = run_damsm_recipe(config, {.out_dir = o.out_dir, .resume = o.resume});
  return {.output = r.model_dir, .interrupted = r.interrupted};
}

RecipeRunResult run_dfgan(const std::string& config_path, const RecipeRunOptions& o) {
  const auto config = DFGANRecipeConfig::from_file(config_path);
  const auto r = run_dfgan_recipe(config, {.out_dir = o.out_dir, .resume = o.resume});
  return {.output = r.model_dir, .interrupted = r.interrupted};
}

RecipeRunResult run_attngan(const std::string& config_path, const RecipeRunOptions& o) {
  const auto config = AttnGANRecipeConfig::from_file(config_path);
  const auto r = run_attngan_recipe(config, {.out_dir = o.out_dir, .resume = o.resume});
  return {.output = r.model_dir, .interrupted = r.interrupted};
}

RecipeRunResult run_dalle(const std::string& config_path, const RecipeRunOptions& o) {
  const auto config = DalleRecipeConfig::from_file(config_path);
  const auto r = run_dalle_recipe(config, {.out_dir = o.out_dir, .resume = o.resume});
  return {.output = r.model_dir, .interrupted = r.interrupted};
}

RecipeRunResult run_dvae(const std::string& config_path, const RecipeRunOptions& o) {
  const auto config = DVAERecipeConfig::from_file(config_path);
  const auto r = run_dvae_recipe(config, {.out_dir = o.out_dir, .resume = o.resume});
  return {.output = r.model_dir, .interrupted = r.interrupted};
}

RecipeRunResult run_classifier(const std::string& config_path, const RecipeRunOptions& o) {
  const auto config = ClassifierRecipeConfig::from_file(config_path);
  const auto r = run_classifier_recipe(config, {.out_dir = o.out_dir, .resume = o.resume});
  return {.output = r.model_dir, .interrupted = r.interrupted};
}

RecipeRunResult run_video(const std::string& config_path, const RecipeRunOptions& o) {
  const auto config = VideoRecipeConfig::from_file(config_path);
  const auto r = run_video_recipe(config, {.out_dir = o.out_dir, .resume = o.resume});
  return {.output = r.model_dir, .interrupted = r.interrupted};
}

RecipeRunResult run_video_classifier(const std::string& config_path, const RecipeRunOptions& o) {
  const auto config = VideoClassifierRecipeConfig::from_file(config_path);
  const auto r = run_video_classifier_recipe(config, {.out_dir = o.out_dir, .resume = o.resume});
  return {.output = r.model_dir, .interrupted = r.interrupted};
}

struct Table {
  std::mutex mutex;
  std::vector<Recipe> entries = {
      {"ldm", "Latent diffusion: tokenizer, VAE, then UNet + text encoder; exports a diffusers folder <out>/model",
       "configs/ldm-shapes-quick.json", "Continue an unfinished stage from its latest checkpoint", run_ldm},
      {"contrastive",
       "Contrastive text-image encoder (R-precision judge): tokenizer, then InfoNCE training; <out>/model",
       "configs/contrastive-emoji.json", "Continue an unfinished training from its latest checkpoint", run_contrastive},
      {"damsm",
       "DAMSM (AttnGAN's text-image matching model; GAN loss and text encoder, R-precision judge): tokenizer, "
       "then word- and sentence-level matching losses; <out>/model",
       "configs/damsm-emoji.json", "Continue an unfinished training from its latest checkpoint", run_damsm},
      {"dfgan",
       "DF-GAN text-to-image GAN: DAMSM (trained first or given), then alternating D/G training with MA-GP; "
       "exports a genvis.DFGANPipeline folder <out>/model",
       "configs/dfgan-emoji.json", "Continue an unfinished stage from its latest checkpoint", run_dfgan},
      {"attngan",
       "AttnGAN text-to-image GAN: DAMSM (trained first or given), then multi-stage generator with word attention "
       "against one discriminator per stage plus the DAMSM loss; exports a genvis.AttnGANPipeline folder <out>/model",
       "configs/attngan-emoji.json", "Continue an unfinished stage from its latest checkpoint", run_attngan},
      {"dvae",
       "DALL·E's discrete VAE: Gumbel-softmax relaxation with annealed temperature and KL weight, logit-Laplace "
       "or MSE reconstruction; <out>/model, <out>/reconstruction.json (PSNR, codebook use)",
       "configs/dvae-emoji.json", "Continue an unfinished training from its latest checkpoint", run_dvae},
      {"dalle",
       "DALL·E: tokenizer, dVAE (trained first or given), image tokens, then the text+image-token transformer with "
       "sparse attention; exports a genvis.DallePipeline folder <out>/model",
       "configs/dalle-shapes-tiny.json", "Continue an unfinished stage from its latest checkpoint", run_dalle},
      {"classifier",
       "Image classifier (FID features, class accuracy judge): cross-entropy training; <out>/model, <out>/eval.json",
       "configs/fmnist-classifier.json", "Continue an unfinished training from its latest checkpoint", run_classifier},
      {"video",
       "Text-to-video: tokenizer, causal 3D VAE + latent cache, then spacetime-patch DiT + text encoder (flow "
       "matching); <out>/model",
       "configs/video-shapes-quick.json", "Continue an unfinished stage from its latest checkpoint", run_video},
      {"video-classifier",
       "Video encoder (FVD[...] features, motion/shape/colour judge): 3D CNN, one cross-entropy head per fact; "
       "<out>/model, <out>/eval.json",
       "configs/video-encoder-shapes.json", "Continue an unfinished training from its latest checkpoint",
       run_video_classifier},
  };
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

std::vector<Recipe> recipes() {
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  return t.entries;
}

std::vector<std::string> recipe_names() {
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  std::vector<std::string> names;
  for (const auto& r : t.entries) names.push_back(r.name);
  return names;
}

Recipe find_recipe(const std::string& name) {
  {
    Table& t = table();
    const std::lock_guard lock(t.mutex);
    const auto it = std::find_if(t.entries.begin(), t.entries.end(), [&](const Recipe& r) { return r.name == name; });
    if (it != t.entries.end()) return *it;
  }
  std::string known;
  for (const auto& n : recipe_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("unknown training recipe '" + name + "' (known: " + known + ")");
}

void register_recipe(Recipe recipe) {
  if (recipe.name.empty()) throw UsageError("register_recipe: the recipe needs a name");
  if (!recipe.run) throw UsageError("register_recipe: recipe '" + recipe.name + "' has no run function");
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  if (std::any_of(t.entries.begin(), t.entries.end(), [&](const Recipe& r) { return r.name == recipe.name; }))
    throw UsageError("training recipe '" + recipe.name + "' is already registered");
  t.entries.push_back(std::move(recipe));
}

}  // namespace genvis::train
