// The config-file training recipes by name: one table that the CLI (`genvis train <name>
// --config FILE`) and any other front end read, instead of a chain of ifs per recipe.
//
//   const genvis::train::Recipe recipe = genvis::train::find_recipe("ldm");
//   auto r = recipe.run("configs/ldm-shapes-quick.json", {.out_dir = "runs/ldm", .resume = true});
//   if (!r.interrupted) std::cout << r.output << "\n";            // runs/ldm/model
//
//   // A program (or test) adds its own; it is then found, listed and run like the built-in ones.
//   genvis::train::register_recipe({.name = "mine", .description = "...", .run = run_mine});
//
// The built-in entries, in this order: ldm, contrastive, damsm, dfgan, attngan, dvae, dalle,
// classifier, video, video-classifier (train/<name>_recipe.h). Each reads its JSON config
// with the recipe's from_file (every bad key at once, as a UsageError naming the file) and runs it.
// The personalisation methods (train/personalize_recipe.h) take options rather than a config
// file and are not in the table.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace genvis::train {

struct RecipeRunOptions {
  std::string out_dir;  // the recipe's output folder
  // Continue an unfinished run from its latest checkpoint. Without it an unfinished run that has
  // checkpoints is a UsageError (nothing is overwritten). Finished stages are always skipped.
  bool resume = false;
};

struct RecipeRunResult {
  std::string output;        // what the recipe produced: <out>/model for the built-in recipes
  bool interrupted = false;  // SIGINT/SIGTERM: a checkpoint was written, rerun with resume
};

struct Recipe {
  std::string name;            // `genvis train <name>`
  std::string description;     // one line: what it trains and writes
  std::string example_config;  // a shipped config to start from, e.g. configs/ldm-shapes-quick.json
  std::string resume_help;     // what --resume continues, in one line
  // Reads the config file and runs the recipe.
  std::function<RecipeRunResult(const std::string& config_path, const RecipeRunOptions& options)> run;
};

// The table: the built-in recipes, then registered ones in registration order.
std::vector<Recipe> recipes();
std::vector<std::string> recipe_names();
// UsageError listing the known names for an unknown one.
Recipe find_recipe(const std::string& name);
// Adds an entry at the end of the table. UsageError for an empty name, a missing run function or
// a name already in the table. Thread-safe.
void register_recipe(Recipe recipe);

}  // namespace genvis::train
