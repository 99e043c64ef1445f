// Text-conditional GANs trained by genvis (genvis.DFGANPipeline): a DF-GAN generator conditioned
// on a DAMSM sentence vector, one forward pass per image (no steps, no guidance).
//
//   auto p = load_pipeline({.model = "models/genvis-dfgan-emoji"});
//   Request r;  r.prompt = "grinning face";  r.seed = 7;  r.batch = 4;
//   at::Tensor images = p->generate(r).samples;  // [4,3,64,64] in [0,1]
//
// Folder: model_index.json {"_class_name": "genvis.DFGANPipeline", "generator": ["genvis",
// "DFGANGenerator"], "text_encoder": ["genvis", "DAMSM"]}, generator/ (config.json: DFGANConfig,
// model.safetensors), text_encoder/ (a DamsmEncoder folder: config.json, model.safetensors,
// tokenizer/). Sample i's noise z is seeded_noise(seed + i): a sample does not depend on its batch.
#pragma once
#include "models/damsm/damsm_encoder.h"
#include "models/dfgan/dfgan_model.h"
#include "pipelines/pipeline.h"

#include <memory>
#include <optional>
#include <string>

namespace genvis::pipelines {

inline constexpr const char* kDFGANClass = "genvis.DFGANPipeline";

struct DFGANModel {
  std::optional<models::DamsmEncoder> text_encoder;
  models::DFGANGenerator generator{nullptr};
  std::string name;
};

// LoadError naming the file for anything missing or inconsistent (the DAMSM's embedding_dim
// against the generator's cond_dim).
DFGANModel load_dfgan_model(const ModelSource& source);
// Writes a DF-GAN pipeline folder: model_index.json, generator/ and text_encoder/.
void save_dfgan_model(models::DFGANGenerator& generator, const models::DamsmEncoder& text_encoder,
                      const std::string& folder);

class DFGANPipeline : public Pipeline {
public:
  explicit DFGANPipeline(DFGANModel model);
  const PipelineInfo& info() const override { return info_; }
  DFGANModel& model() { return model_; }

protected:
  Result run(const Request& request, const Callbacks& callbacks) override;

private:
  DFGANModel model_;
  PipelineInfo info_;
};

std::unique_ptr<Pipeline> load_dfgan_pipeline(const ModelSource& source);

}  // namespace genvis::pipelines
