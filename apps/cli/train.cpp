#include "commands.h"

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/distributed.h"
#include "train/personalize_recipe.h"
#include "train/recipes.h"
#include "default_model.h"
#include "launch.h"

#include <filesystem>
#include <iostream>
#include <vector>

namespace genvis::cli {
namespace {

// Runs `train` (a recipe or a personalisation) as this process's share of a distributed run when
// the environment names one (WORLD_SIZE > 1), else as it is. Returns what `train` returns.
// `primary` is set to whether this process is rank 0 (or alone): the one that prints the result.
template <typename Train>
auto run_maybe_distributed(const std::string& out_dir, bool& primary, Train train) {
  primary = join_from_env();
  if (!dist::active()) return train(out_dir);
  const std::string mine = dist::rank_folder(out_dir);
  auto result = train(mine);
  dist::finalize();
  if (!primary) {  // this rank's working copy; the next launch recreates it
    std::error_code ec;
    std::filesystem::remove_all(mine, ec);
    std::filesystem::remove(std::filesystem::path(out_dir) / ".ranks", ec);  // when it is empty
  }
  return result;
}

}  // namespace

Command add_train_command(CLI::App& app) {
  struct Options {
    std::string config, out;
    bool resume = false;
    int nproc = 1;
  };
  auto o = std::make_shared<Options>();
  std::string recipe_list;
  for (const auto& name : train::recipe_names()) recipe_list += (recipe_list.empty() ? "" : ", ") + name;
  CLI::App* cmd = app.add_subcommand("train", "Train a model from scratch (" + recipe_list +
                                                   ") or personalise one (dreambooth, lora, textual-inversion)");
  cmd->require_subcommand(1);
  // The config-file recipes, one subcommand per table entry.
  std::vector<CLI::App*> recipe_commands;
  for (const auto& recipe : train::recipes()) {
    CLI::App* sub = cmd->add_subcommand(recipe.name, recipe.description);
    sub->add_option("--config", o->config, "Recipe JSON (see " + recipe.example_config + ")")->required();
    sub->add_option("--out", o->out, "Output folder (default: runs/<config file name>)");
    sub->add_flag("--resume", o->resume, recipe.resume_help);
    add_nproc_option(sub, o->nproc, "Train");
    recipe_commands.push_back(sub);
  }

  // Personalisation: the three methods share their options.
  auto pc = std::make_shared<train::PersonalizeConfig>();
  pc->train.lr = 1e-4;
  pc->train.steps = 400;
  pc->train.checkpoint_every = 100;
  pc->train.weight_decay = 0.01;
  const auto personalize = [&](const std::string& name, const std::string& what) {
    CLI::App* sub = cmd->add_subcommand(name, what);
    sub->add_option("--model", pc->model, "Base SD 1.x/2.x model: diffusers folder or single file (default: the built-in model)");
    sub->add_option("--instance-dir", pc->instance_dir, "PNG images of the subject (optional same-named .txt captions)")
        ->required();
    sub->add_option("--instance-prompt", pc->instance_prompt, "Caption for the instance images, e.g. \"a photo of sks dog\"")
        ->required();
    sub->add_option("--out", o->out, "Output folder (default: runs/<method>-<instance folder name>)");
    sub->add_flag("--resume", o->resume, "Continue from the latest checkpoint in --out");
    add_nproc_option(sub, o->nproc, "Train");
    sub->add_option("--steps", pc->train.steps, "Training steps")->capture_default_str();
    sub->add_option("--lr", pc->train.lr, "Peak learning rate (AdamW; default 1e-4, textual-inversion 5e-3)");
    sub->add_option("--warmup-steps", pc->train.warmup_steps, "Linear warmup steps")->capture_default_str();
    sub->add_option("--batch", pc->batch_size, "Instance images per step (as many class images are added)")
        ->capture_default_str();
    sub->add_option("--grad-accum", pc->train.grad_accum, "Gradient accumulation steps")->capture_default_str();
    sub->add_option("--resolution", pc->resolution, "Training size in pixels (default: the model's native size)");
    sub->add_flag("--random-flip", pc->random_flip, "Also train on mirrored instance images");
    sub->add_option("--seed", pc->train.seed, "Seed (adapter init, noise, class image seeds)")->capture_default_str();
    sub->add_option("--checkpoint-every", pc->train.checkpoint_every, "Checkpoint interval in steps")->capture_default_str();
    sub->add_option("--validate-every", pc->train.validate_every, "Sample grid interval in steps (0: at the end)")
        ->capture_default_str();
    sub->add_option("--validation-prompt", pc->validation_prompts, "Prompt for the sample grids (repeatable; default: "
                                                                   "the instance prompt)");
    sub->add_option("--sample-steps", pc->class_steps, "Sampling steps for class images and sample grids")->capture_default_str();
    sub->add_option("--sample-cfg", pc->class_cfg_scale, "CFG scale for class images and sample grids")->capture_default_str();
    sub->add_option("--autocast", pc->train.autocast, "none or bf16")->capture_default_str();
    sub->add_option("--save-dtype", pc->save_dtype, "Exported weights: f16 or f32")->capture_default_str();
    return sub;
  };
  const auto prior_options = [&](CLI::App* sub) {
    sub->add_option("--class-prompt", pc->class_prompt, "Prior preservation: the subject's class, e.g. \"a photo of a dog\"");
    sub->add_option("--class-dir", pc->class_dir, "Class images (generated when missing; default <out>/class_images)");
    sub->add_option("--num-class-images", pc->num_class_images, "Class images to use (generated with the frozen model)")
        ->capture_default_str();
    sub->add_option("--prior-loss-weight", pc->prior_loss_weight, "Weight of the class-prior loss (0: no prior preservation)")
        ->capture_default_str();
    sub->add_flag("--train-text-encoder", pc->train_text_encoder, "Also train the text encoder");
  };
  const auto lora_options = [&](CLI::App* sub) {
    sub->add_option("--rank", pc->lora_rank, "LoRA rank")->capture_default_str();
    sub->add_option("--alpha", pc->lora_alpha, "LoRA alpha (scale alpha/rank; 0: alpha = rank)")->capture_default_str();
    sub->add_option("--lora-targets", pc->lora_targets, "transformer (attention + feed-forward + proj_in/out, kohya's "
                                                        "default) or attention (to_q/k/v/out only)")
        ->capture_default_str();
    sub->add_option("--output-name", pc->output_name, "LoRA file name without extension (default: the --out folder name)");
  };
  CLI::App* dreambooth = personalize(
      "dreambooth", "DreamBooth with prior preservation: fine-tunes the UNet (or a LoRA with --lora) on a subject; "
                    "writes <out>/model (diffusers) or <out>/<name>.safetensors");
  prior_options(dreambooth);
  dreambooth->add_flag("--lora", pc->lora, "Train a LoRA instead of the full UNet");
  lora_options(dreambooth);
  CLI::App* lora = personalize("lora", "LoRA on the UNet's attention layers (and the text encoder's with "
                                       "--train-text-encoder); writes <out>/<name>.safetensors (kohya format)");
  prior_options(lora);
  lora_options(lora);
  CLI::App* ti = personalize("textual-inversion", "Textual inversion: learns new token vectors for a placeholder word; "
                                                  "writes <out>/<placeholder>.safetensors (A1111 embedding)");
  ti->add_option("--placeholder", pc->placeholder, "The new word, used in prompts (e.g. sks-face)")->required();
  ti->add_option("--initializer", pc->initializer, "Text whose token embeddings start the vectors (e.g. face)")->required();
  ti->add_option("--num-vectors", pc->num_vectors, "Vectors per token")->capture_default_str();

  return {cmd, [o, recipe_commands, dreambooth, lora, ti, pc] {
    bool primary = true;
    const auto finish = [&primary](bool interrupted, const std::string& output, const std::string& out_dir) {
      if (interrupted)
        throw RuntimeError("interrupted: a checkpoint was written; continue with --resume --out " + out_dir);
      if (primary) std::cout << output << "\n";
    };
    if (o->nproc > 1) {
      launch_local(o->nproc);
      return;
    }
    for (CLI::App* sub : {dreambooth, lora, ti}) {
      if (!sub->parsed()) continue;
      pc->method = sub == dreambooth ? train::PersonalizeMethod::DreamBooth
                   : sub == lora     ? train::PersonalizeMethod::LoRA
                                     : train::PersonalizeMethod::TextualInversion;
      if (pc->model.empty()) pc->model = find_default_model();
      if (sub == ti && ti->count("--lr") == 0) pc->train.lr = 5e-3;  // vectors alone take a larger step
      const std::string out_dir =
          o->out.empty() ? (std::filesystem::path("runs") /
                            (std::string(train::method_name(pc->method)) + "-" +
                             std::filesystem::path(pc->instance_dir).filename().string()))
                               .string()
                         : o->out;
      const auto result = run_maybe_distributed(out_dir, primary, [&](const std::string& dir) {
        return train::run_personalize(*pc, {.out_dir = dir, .resume = o->resume});
      });
      finish(result.interrupted, result.output, out_dir);
      return;
    }
    for (CLI::App* sub : recipe_commands) {
      if (!sub->parsed()) continue;
      const std::string out_dir =
          o->out.empty() ? (std::filesystem::path("runs") / std::filesystem::path(o->config).stem()).string() : o->out;
      const auto recipe = train::find_recipe(sub->get_name());
      const auto result = run_maybe_distributed(
          out_dir, primary, [&](const std::string& dir) { return recipe.run(o->config, {.out_dir = dir, .resume = o->resume}); });
      finish(result.interrupted, result.output, out_dir);
      return;
    }
  }};
}

}  // namespace genvis::cli
