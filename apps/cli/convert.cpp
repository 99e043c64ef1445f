#include "commands.h"

#include "core/device.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/error.h"
#include "core/text.h"
#include "io/convert.h"
#include "io/gguf.h"

#include <iostream>

namespace genvis::cli {

Command add_convert_command(CLI::App& app) {
  struct Options {
    std::string in, out, dtype = "keep", quant;
    bool force = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a .ckpt/.pt/.bin, safetensors or GGUF file to safetensors or GGUF, "
                                                "optionally casting or quantising floating-point tensors");
  cmd->add_option("input", opts->in, "Input weight file")->required();
  cmd->add_option("output", opts->out, "Output .safetensors or .gguf file (written atomically)")->required();
  cmd->add_option("--dtype", opts->dtype, "Cast floating tensors to f32, f16 or bf16 (default: keep; GGUF: f16)")
      ->check(CLI::IsMember({"keep", "f32", "f16", "bf16"}));
  cmd->add_option("--quant", opts->quant,
                  "GGUF output: quantise weight matrices to q8_0 or q4_0 (1-D and small tensors stay F32, rows that are "
                  "not whole 32-value blocks F16)")
      ->check(CLI::IsMember({"q8_0", "q4_0"}));
  cmd->add_flag("-f,--force", opts->force, "Replace the output file if it exists");
  return {cmd, [opts] {
    const bool gguf = ends_with(opts->out, ".gguf");
    if (!opts->quant.empty() && !gguf) throw UsageError("--quant " + opts->quant + " needs a .gguf output");
    if (!opts->quant.empty() && opts->dtype != "keep") throw UsageError("give --dtype or --quant, not both");
    std::unique_ptr<Progress> progress;
    const auto on_progress = [&](size_t done, size_t total) {
      if (!progress) progress = std::make_unique<Progress>("convert", static_cast<int64_t>(total));
      progress->update(static_cast<int64_t>(done));
    };
    if (gguf) {
      io::GgufWriteOptions options;
      const std::string type = !opts->quant.empty() ? opts->quant : opts->dtype == "keep" ? "f16" : opts->dtype;
      options.type = *io::parse_ggml_type(type);
      options.overwrite = opts->force;
      options.on_progress = on_progress;
      auto reader = io::open_weights(opts->in);
      const io::GgufWriteResult r = io::write_gguf(opts->out, *reader, options);
      if (progress) progress->finish();
      const std::string type_name = io::ggml_type_name(static_cast<uint32_t>(options.type));
      log_info("wrote " + opts->out + ": " + std::to_string(r.tensors) + " tensors (" +
               (opts->quant.empty() ? type_name : std::to_string(r.quantised) + " as " + type_name) + "), " +
               std::to_string(r.bytes_out) + " bytes");
      return;
    }
    io::ConvertOptions options;
    if (opts->dtype != "keep") options.dtype = parse_dtype(opts->dtype);
    options.overwrite = opts->force;
    options.on_progress = on_progress;
    const io::ConvertResult r = io::convert_to_safetensors(opts->in, opts->out, options);
    if (progress) progress->finish();
    log_info("wrote " + opts->out + ": " + std::to_string(r.tensors) + " tensors (" + std::to_string(r.cast) +
             " cast), " + std::to_string(r.bytes_out) + " bytes");
  }};
}

}  // namespace genvis::cli
