#include "commands.h"

#include "core/error.h"
#include "core/log.h"
#include "train/classifier_recipe.h"
#include "train/contrastive_recipe.h"
#include "train/ldm_recipe.h"

#include <filesystem>
#include <iostream>

namespace genvis::cli {

Command add_train_command(CLI::App& app) {
  struct Options {
    std::string config, out;
    bool resume = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model from scratch with a recipe (ldm, contrastive, classifier)");
  cmd->require_subcommand(1);
  CLI::App* ldm = cmd->add_subcommand(
      "ldm", "Latent diffusion: tokenizer, VAE, then UNet + text encoder; exports a diffusers folder <out>/model");
  ldm->add_option("--config", o->config, "Recipe JSON (see configs/ldm-shapes-tiny.json)")->required();
  ldm->add_option("--out", o->out, "Output folder (default: runs/<config file name>)");
  ldm->add_flag("--resume", o->resume, "Continue an unfinished stage from its latest checkpoint");
  CLI::App* contrastive = cmd->add_subcommand(
      "contrastive", "Contrastive text-image encoder (R-precision judge): tokenizer, then InfoNCE training; <out>/model");
  contrastive->add_option("--config", o->config, "Recipe JSON (see configs/contrastive-emoji.json)")->required();
  contrastive->add_option("--out", o->out, "Output folder (default: runs/<config file name>)");
  contrastive->add_flag("--resume", o->resume, "Continue an unfinished training from its latest checkpoint");
  CLI::App* classifier = cmd->add_subcommand(
      "classifier", "Image classifier (FID features, class accuracy judge): cross-entropy training; <out>/model, <out>/eval.json");
  classifier->add_option("--config", o->config, "Recipe JSON (see configs/fmnist-classifier.json)")->required();
  classifier->add_option("--out", o->out, "Output folder (default: runs/<config file name>)");
  classifier->add_flag("--resume", o->resume, "Continue an unfinished training from its latest checkpoint");

  return {cmd, [o, contrastive, classifier] {
    const std::string out_dir =
        o->out.empty() ? (std::filesystem::path("runs") / std::filesystem::path(o->config).stem()).string() : o->out;
    if (contrastive->parsed()) {
      const auto config = train::ContrastiveRecipeConfig::from_file(o->config);
      const auto result = train::run_contrastive_recipe(config, {.out_dir = out_dir, .resume = o->resume});
      if (result.interrupted)
        throw RuntimeError("interrupted: a checkpoint was written; continue with --resume --out " + out_dir);
      std::cout << result.model_dir << "\n";
      return;
    }
    if (classifier->parsed()) {
      const auto config = train::ClassifierRecipeConfig::from_file(o->config);
      const auto result = train::run_classifier_recipe(config, {.out_dir = out_dir, .resume = o->resume});
      if (result.interrupted)
        throw RuntimeError("interrupted: a checkpoint was written; continue with --resume --out " + out_dir);
      std::cout << result.model_dir << "\n";
      return;
    }
    const auto config = train::LDMRecipeConfig::from_file(o->config);
    train::LDMRecipeOptions options;
    options.out_dir = out_dir;
    options.resume = o->resume;
    const auto result = train::run_ldm_recipe(config, options);
    if (result.interrupted) throw RuntimeError("interrupted: a checkpoint was written; continue with --resume --out " +
                                               options.out_dir);
    std::cout << result.model_dir << "\n";
  }};
}

}  // namespace genvis::cli
