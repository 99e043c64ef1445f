// AttnGANs trained by genvis (genvis.AttnGANPipeline): the multi-stage generator conditioned on a
// DAMSM's sentence vector and word features, one forward pass per image; the last stage's image
// is the result.
//
//   auto p = load_pipeline({.model = "models/genvis-attngan-emoji"});
//   Request r;  r.prompt = "grinning face";  r.seed = 7;  r.batch = 4;
//   at::Tensor images = p->generate(r).samples;  // [4,3,64,64] in [0,1]
//
// Folder: model_index.json {"_class_name": "genvis.AttnGANPipeline", "generator": ["genvis",
// "AttnGANGenerator"], "text_encoder": ["genvis", "DAMSM"]}, generator/ (config.json:
// AttnGANConfig, model.safetensors), text_encoder/ (a DamsmEncoder folder). Sample i's noise is
// seeded_noise(seed + i) of z_dim + condition_dim values: z, then the conditioning augmentation's
// eps (as the official sampler, which draws both); a sample does not depend on its batch.
#pragma once
#include "models/attngan/attngan_model.h"
#include "models/damsm/damsm_encoder.h"
#include "pipelines/pipeline.h"

#include <memory>
#include <optional>
#include <string>

namespace genvis::pipelines {

inline constexpr const char* kAttnGANClass = "genvis.AttnGANPipeline";

struct AttnGANModel {
  std::optional<models::DamsmEncoder> text_encoder;
  models::AttnGANGenerator generator{nullptr};
  std::string name;
};

AttnGANModel load_attngan_model(const ModelSource& source);
void save_attngan_model(models::AttnGANGenerator& generator, const models::DamsmEncoder& text_encoder,
                        const std::string& folder);

class AttnGANPipeline : public Pipeline {
public:
  explicit AttnGANPipeline(AttnGANModel model);
  const PipelineInfo& info() const override { return info_; }
  AttnGANModel& model() { return model_; }

protected:
  Result run(const Request& request, const Callbacks& callbacks) override;

private:
  AttnGANModel model_;
  PipelineInfo info_;
};

std::unique_ptr<Pipeline> load_attngan_pipeline(const ModelSource& source);

}  // namespace genvis::pipelines
