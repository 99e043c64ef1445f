#include "commands.h"
#include "models/inspect.h"

#include <iostream>

namespace genvis::cli {

Command add_info_command(CLI::App& app) {
  struct Options {
    std::vector<std::string> paths;
    bool json = false;
    models::InspectOptions inspect;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Describe weight files, model folders or PNG images: tensors, dtypes, parameter count, detected layout "
              "and family; for a PNG, its generation parameters");
  cmd->add_option("paths", opts->paths, "Weight file (.safetensors, .ckpt/.pt/.pth/.bin, .safetensors.index.json), "
                                        "diffusers folder or PNG")
      ->required();
  cmd->add_flag("--tensors", opts->inspect.list_tensors, "List every tensor's name, dtype and shape");
  cmd->add_flag("--hash", opts->inspect.hash, "Compute the SHA-256 and the A1111 model hash (reads the whole file)");
  cmd->add_flag("--json", opts->json, "Print JSON instead of text");
  return {cmd, [opts] {
    for (const auto& path : opts->paths) {
      const auto info = models::inspect_path(path, opts->inspect);
      if (opts->json)
        std::cout << info.dump(2) << "\n";
      else
        std::cout << models::format_inspection(info);
    }
  }};
}

}  // namespace genvis::cli
