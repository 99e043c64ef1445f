// Wan 2.1 behind the Pipeline interface, registered for diffusers' WanPipeline (text-to-video,
// and video-to-video with Request::init_video) and WanImageToVideoPipeline (Request::init_image
// is the first frame). Reads every published layout (ModelSource::model):
//  - a diffusers folder: model_index.json, tokenizer/, text_encoder/ (UMT5), transformer/, vae/
//    (AutoencoderKLWan), scheduler/ and, for I2V, image_encoder/;
//  - the Wan release's folder (Wan-AI/Wan2.1-T2V-1.3B, -14B, -I2V-14B-480P/720P): config.json
//    ("_class_name": "WanModel"), diffusion_pytorch_model*.safetensors,
//    models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth, google/umt5-xxl/ (tokenizer) and, for I2V,
//    models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth;
//  - a transformer file alone (ComfyUI's split_files/diffusion_models/wan2.1_*.safetensors), with
//    the other components given: vae (split_files/vae/wan_2.1_vae.safetensors), text_encoder
//    (split_files/text_encoders/umt5_xxl_fp16.safetensors), vocab (a google/umt5-xxl tokenizer
//    folder: ComfyUI ships none) and, for I2V, image_encoder (split_files/clip_vision/clip_vision_h.safetensors).
// The component fields override a folder's too. Without a scheduler config (the release's folder,
// single files) sampling follows Wan's generate.py: UniPC on flow sigmas with shift 5, or 3 for
// image-to-video at 832x480 or smaller; 50 steps (image-to-video 40), guidance 5.
//
//   auto p = load_pipeline({.model = "Wan2.1-T2V-1.3B-Diffusers"});
//   Request r;  r.prompt = "a cat walks on the beach";  r.num_frames = 33;  r.width = 832;  r.height = 480;
//   write_result(p->generate(r), {.path = "cat.mp4", .fps = 16});
//
// Frames must be 4k + 1 (the VAE packs 4 frames per latent frame after the first); width and
// height multiples of 16 (VAE 8 x patch 2). Extras: max_sequence_length (512; a release folder's
// text_len), flow_shift.
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
  // No scheduler config was given: the flow shift follows Wan's generate.py (5; 3 for I2V at
  // 480p and below) unless a request sets it.
  bool release_schedule = false;
  int64_t max_sequence_length = 512;
  std::string name;
  std::string quant;  // "int8": the transformer and text encoder carry int8 copies (pipelines/common/quantize.h)
};

// Loads the components of a Wan model in any of the layouts above (LoadError naming the file and
// the problem; UsageError naming the option a single transformer file still needs).
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
