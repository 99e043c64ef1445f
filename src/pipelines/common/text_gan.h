// What the text-conditional GAN pipelines (genvis.DFGANPipeline, genvis.AttnGANPipeline) share:
// the folder layout (model_index.json, generator/{config.json, model.safetensors}, text_encoder/
// as a DamsmEncoder folder), the DAMSM text encoder and the per-sample result.
#pragma once
#include "models/damsm/damsm_encoder.h"
#include "pipelines/pipeline.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace genvis::pipelines::text_gan {

// Checks the model folder and that no component override other than --text-encoder is given;
// loads the DAMSM (text_encoder/ or the override). `family` names the model in errors.
models::DamsmEncoder load_text_encoder(const ModelSource& source, const std::string& family);

// LoadError unless the generator's condition width equals the DAMSM's embedding_dim.
void check_embedding_dim(const ModelSource& source, const models::DamsmEncoder& damsm, int64_t generator_dim);

// Loads generator/model.safetensors into `generator` (f32 on disk), then moves it to the source's
// device and dtype in eval mode.
void load_generator_weights(const ModelSource& source, torch::nn::Module& generator);

// The folder's name for PipelineInfo::name.
std::string model_name(const ModelSource& source);

// Writes model_index.json ({class_name, generator: [genvis, generator_class], text_encoder:
// [genvis, DAMSM]}), generator/ (config + f32 weights) and text_encoder/.
void save(torch::nn::Module& generator, const nlohmann::json& generator_config, const models::DamsmEncoder& text_encoder,
          const std::string& class_name, const std::string& generator_class, const std::string& folder);

// UsageError unless the request asks for the generator's one size.
void check_size(const Request& r, int64_t size, const std::string& family);

// Samples [B,3,S,S] in [-1,1] -> a Result in [0,1] with each sample's parameters (seed + i).
Result make_result(const at::Tensor& images, const std::vector<std::string>& prompts, const Request& r,
                   const std::string& model_name);

}  // namespace genvis::pipelines::text_gan
