// Library errors name request fields in quotes ('steps', 'init_image'); the command line names its
// flags (--steps, --init-image). Each command maps the messages it passes on.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

namespace genvis::cli {

// Replaces each quoted field: by its entry in `renames` ({"guidance", "--cfg-scale"}), else by
// --field-with-dashes when `command` has that option; other quoted text is left alone.
std::string with_flag_names(std::string message, const CLI::App* command,
                            const std::vector<std::pair<std::string, std::string>>& renames = {});

}  // namespace genvis::cli
