// Each subcommand registers its options on the app and returns the function that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace genvis::cli {

struct Command {
  CLI::App* app;              // the subcommand
  std::function<void()> run;  // runs it after parsing
};

// The command line this process was started with (argv of run()), for `train --nproc`, which
// starts copies of it.
const std::vector<std::string>& invocation();

Command add_info_command(CLI::App& app);
Command add_convert_command(CLI::App& app);
Command add_tokenize_command(CLI::App& app);
Command add_generate_command(CLI::App& app);
Command add_dataset_command(CLI::App& app);
Command add_train_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_serve_command(CLI::App& app);
// genvis eval personalization (registered by add_eval_command).
Command add_personalization_eval_command(CLI::App* eval);

}  // namespace genvis::cli
