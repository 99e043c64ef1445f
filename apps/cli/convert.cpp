#include "commands.h"

#include "core/device.h"
#include "core/log.h"
#include "core/progress.h"
#include "io/convert.h"

#include <iostream>

namespace genvis::cli {

Command add_convert_command(CLI::App& app) {
  struct Options {
    std::string in, out, dtype = "keep";
    bool force = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a .ckpt/.pt/.bin or safetensors file to safetensors, "
                                                "optionally casting floating-point tensors");
  cmd->add_option("input", opts->in, "Input weight file")->required();
  cmd->add_option("output", opts->out, "Output .safetensors file (written atomically)")->required();
  cmd->add_option("--dtype", opts->dtype, "Cast floating tensors to f32, f16 or bf16 (default: keep)")
      ->check(CLI::IsMember({"keep", "f32", "f16", "bf16"}));
  cmd->add_flag("-f,--force", opts->force, "Replace the output file if it exists");
  return {cmd, [opts] {
    io::ConvertOptions options;
    if (opts->dtype != "keep") options.dtype = parse_dtype(opts->dtype);
    options.overwrite = opts->force;
    std::unique_ptr<Progress> progress;
    options.on_progress = [&](size_t done, size_t total) {
      if (!progress) progress = std::make_unique<Progress>("convert", static_cast<int64_t>(total));
      progress->update(static_cast<int64_t>(done));
    };
    const io::ConvertResult r = io::convert_to_safetensors(opts->in, opts->out, options);
    if (progress) progress->finish();
    log_info("wrote " + opts->out + ": " + std::to_string(r.tensors) + " tensors (" + std::to_string(r.cast) +
             " cast), " + std::to_string(r.bytes_out) + " bytes");
  }};
}

}  // namespace genvis::cli
