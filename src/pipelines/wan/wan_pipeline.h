// Wan 2.1 behind the Pipeline interface, registered for diffusers' WanPipeline (text-to-video,
// and video-to-video with Request::init_video) and WanImageToVideoPipeline (Request::init_image
// is the first frame). Reads a diffusers folder: model_index.json, tokenizer/, text_encoder/
// (UMT5), transformer/, vae/ (AutoencoderKLWan), scheduler/ and, for I2V, image_encoder/.
//
//   auto p = load_pipeline({.model = "Wan2.1-T2V-1.3B-Diffusers"});
//   Request r;  r.prompt = "a cat walks on the beach";  r.num_frames = 33;  r.width = 832;  r.height = 480;
//   write_result(p->generate(r), {.path = "cat.mp4", .fps = 16});
//
// Frames must be 4k + 1 (the VAE packs 4 frames per latent frame after the first); width and
// height multiples of 16 (VAE 8 x patch 2). Extras: max_sequence_length (512), flow_shift.
#pragma once
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "models/clip_vision/clip_vision_model.h"
#include "pipelines/pipeline.h"
#include "pipelines/wan/wan_sampling.h"

#include <memory>
#include <optional>

namespace genvis::pipelines {

struct WanModel {
  std::optional<tokenizers::T5Tokenizer> tokenizer;
  models::UMT5EncoderModel text_encoder{nullptr};
  models::WanTransformer3DModel transformer{nullptr};
  models::AutoencoderKLWan vae{nullptr};
  models::CLIPVisionModel image_encoder{nullptr};  // I2V only
  schedulers::NoiseScheduleConfig scheduler;
  std::string name;
};

// Loads the components of a diffusers Wan folder (LoadError naming the missing one).
WanModel load_wan_model(const ModelSource& source);

class WanVideoPipeline : public Pipeline {
public:
  WanVideoPipeline(WanModel model, std::string class_name);
  const PipelineInfo& info() const override { return info_; }

protected:
  Result run(const Request& request, const Callbacks& callbacks) override;

private:
  at::Tensor image_embeds(const at::Tensor& image);  // [1,3,H,W] in [-1,1] -> CLIP penultimate states
  WanModel model_;
  PipelineInfo info_;
};

// UsageError unless frames = 4k + 1 (naming the nearest valid counts).
void check_wan_frames(int64_t frames);

std::unique_ptr<Pipeline> load_wan_pipeline(const ModelSource& source);

}  // namespace genvis::pipelines
