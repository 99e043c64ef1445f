// Pipeline families by their diffusers `_class_name` (model_index.json), or for a single file by
// the class the detected layout converts to (models/detect.h). The built-in families are listed
// in registry.cpp, one line each; a program (or a test) adds its own with register_pipeline().
//
//   register_pipeline({"MyPipeline", "my family", [](const ModelSource& s) { return load_mine(s); }});
//   std::unique_ptr<Pipeline> p = load_pipeline({.model = "path/to/model"});
#pragma once
#include "pipelines/pipeline.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace genvis::pipelines {

using PipelineLoader = std::function<std::unique_ptr<Pipeline>(const ModelSource& source)>;

struct PipelineRegistration {
  std::string class_name;   // "StableDiffusionPipeline", "WanPipeline", "genvis.DFGANPipeline", ...
  std::string description;  // one line for `genvis info --pipelines`
  PipelineLoader load;
};

// Adds a family; UsageError when the class name is already registered.
void register_pipeline(PipelineRegistration registration);
// Every registered family, built-in ones first, in registration order.
std::vector<PipelineRegistration> registered_pipelines();
// nullptr when unknown.
const PipelineRegistration* find_pipeline(const std::string& class_name);

// The class name that loads `source`: source.class_name when set; a folder's model_index.json
// `_class_name`, or for the Wan 2.1 release's folder (config.json "_class_name": "WanModel")
// WanPipeline / WanImageToVideoPipeline by its model_type; a single file's detected pipeline class
// (an original SD checkpoint's, a Wan transformer's: models/detect.h LayoutGuess::pipeline);
// StableDiffusionPipeline for components alone (--unet/--vae/--text-encoder). LoadError naming the
// file when it cannot tell.
std::string pipeline_class_of(const ModelSource& source);

// Loads through the family registered for pipeline_class_of(source). UsageError listing the
// registered classes for an unknown one.
std::unique_ptr<Pipeline> load_pipeline(const ModelSource& source);

}  // namespace genvis::pipelines
