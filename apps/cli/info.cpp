#include "commands.h"

#include "core/error.h"
#include "core/file.h"
#include "models/inspect.h"
#include "pipelines/registry.h"

#include <filesystem>
#include <iostream>

namespace genvis::cli {

namespace {

// The pipeline class a model folder or single-file checkpoint loads with, and whether this build
// has that family; null for anything else (components, adapters, PNGs).
nlohmann::ordered_json pipeline_of(const std::string& path, const nlohmann::ordered_json& info) {
  const bool index = is_directory(path) && file_exists((std::filesystem::path(path) / "model_index.json").string());
  const bool single = info.value("layout", "") == "sd-single-file";
  if (!index && !single) return nullptr;
  try {
    const std::string c = pipelines::pipeline_class_of({.model = path});
    return {{"class_name", c}, {"registered", pipelines::find_pipeline(c) != nullptr}};
  } catch (const Error& e) {
    return {{"error", e.what()}};
  }
}

}  // namespace

Command add_info_command(CLI::App& app) {
  struct Options {
    std::vector<std::string> paths;
    bool json = false, pipelines = false;
    models::InspectOptions inspect;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Describe weight files, model folders, PNG images or videos: tensors, dtypes, parameter count, detected "
              "layout, family and pipeline class; for a PNG or a video, its size and generation parameters");
  cmd->add_option("paths", opts->paths, "Weight file (.safetensors, .gguf, .ckpt/.pt/.pth/.bin, .safetensors.index.json), "
                                        "diffusers folder, PNG, video (.mp4, .webm, .gif, .webp) or folder of PNG frames");
  cmd->add_flag("--tensors", opts->inspect.list_tensors, "List every tensor's name, dtype and shape");
  cmd->add_flag("--hash", opts->inspect.hash, "Compute the SHA-256 and the A1111 model hash (reads the whole file)");
  cmd->add_flag("--json", opts->json, "Print JSON instead of text");
  cmd->add_flag("--pipelines", opts->pipelines, "List the pipeline classes (model families) this build can load");
  return {cmd, [opts] {
    if (opts->paths.empty() && !opts->pipelines)
      throw UsageError("info: give one or more paths (weight files, model folders, PNGs, videos), or --pipelines");
    if (opts->pipelines) {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const auto& r : pipelines::registered_pipelines())
        list.push_back({{"class_name", r.class_name}, {"description", r.description}});
      if (opts->json) {
        std::cout << nlohmann::ordered_json{{"pipelines", list}}.dump(2) << "\n";
      } else {
        for (const auto& r : list)
          std::cout << r["class_name"].get<std::string>() << "  " << r["description"].get<std::string>() << "\n";
      }
    }
    for (const auto& path : opts->paths) {
      auto info = models::inspect_path(path, opts->inspect);
      const auto pipeline = pipeline_of(path, info);
      if (!pipeline.is_null()) info["pipeline"] = pipeline;
      if (opts->json) {
        std::cout << info.dump(2) << "\n";
        continue;
      }
      std::cout << models::format_inspection(info);
      if (pipeline.contains("class_name"))
        std::cout << "pipeline: " << pipeline["class_name"].get<std::string>()
                  << (pipeline["registered"].get<bool>() ? "" : " (no family registered for it in this build)") << "\n";
    }
  }};
}

}  // namespace genvis::cli
