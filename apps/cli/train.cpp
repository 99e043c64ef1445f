#include "commands.h"

#include "core/error.h"
#include "core/log.h"
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
  CLI::App* cmd = app.add_subcommand("train", "Train a model from scratch with a recipe (ldm)");
  cmd->require_subcommand(1);
  CLI::App* ldm = cmd->add_subcommand(
      "ldm", "Latent diffusion: tokenizer, VAE, then UNet + text encoder; exports a diffusers folder <out>/model");
  ldm->add_option("--config", o->config, "Recipe JSON (see configs/ldm-shapes-tiny.json)")->required();
  ldm->add_option("--out", o->out, "Output folder (default: runs/<config file name>)");
  ldm->add_flag("--resume", o->resume, "Continue an unfinished stage from its latest checkpoint");

  return {cmd, [o] {
    const auto config = train::LDMRecipeConfig::from_file(o->config);
    train::LDMRecipeOptions options;
    options.out_dir = o->out.empty() ? (std::filesystem::path("runs") / std::filesystem::path(o->config).stem()).string()
                                     : o->out;
    options.resume = o->resume;
    const auto result = train::run_ldm_recipe(config, options);
    if (result.interrupted) throw RuntimeError("interrupted: a checkpoint was written; continue with --resume --out " +
                                               options.out_dir);
    std::cout << result.model_dir << "\n";
  }};
}

}  // namespace genvis::cli
