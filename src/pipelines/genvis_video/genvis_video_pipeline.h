// genvis's own text-to-video family (genvis.TextToVideoPipeline), the model `genvis train video`
// trains: a spacetime-patch diffusion transformer (the Wan transformer class with our own small
// config) over the latents of a small causal 3D VAE (the AutoencoderKLWan class), conditioned on a
// CLIP text encoder trained with it, sampled by the Wan samplers (UniPC flow, flow Euler).
//
//   auto p = load_pipeline({.model = "models/genvis-shapes-video"});
//   Request r;  r.prompt = "a red star moving to the left";  r.num_frames = 9;
//   write_result(p->generate(r), {.path = "star.webp", .fps = 8});
//
// One model does text-to-video, image-to-video and video continuation (masked latent
// conditioning, as Wan's I2V and Sora's report describe): when the transformer takes
// 2 z_dim + temporal_factor channels it sees, beside the noisy latents, a mask of the latent
// frames that are given and those frames' normalised latents (zero elsewhere). Given frames:
//   - none (text-to-video): mask and condition zero;
//   - Request::init_image: the first frame (latent frame 0);
//   - Request::init_video with extras {"keep_frames": k}: its first k = 1 + temporal_factor * m
//     frames (latent frames 0..m), continued to num_frames.
// The given latent frames are also put back into the sampler's x0 estimate at every step and into
// the final latents, so the decoded video starts with the VAE's reconstruction of the given
// frames exactly (the causal VAE decodes frame 0 from latent frame 0 alone). Request::init_video
// without keep_frames is video-to-video (its latents noised to the strength's first sigma).
//
// Folder: model_index.json {"_class_name": "genvis.TextToVideoPipeline", "default_frames",
// "default_width", "default_height", "fps", components}, tokenizer/ (CLIP BPE), text_encoder/
// (CLIPTextModel), transformer/ (WanTransformer3DModel), vae/ (AutoencoderKLWan with our
// latents_mean/std), scheduler/ (a flow config, UniPC).
#pragma once
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "models/clip_text/clip_text_model.h"
#include "models/wan/wan_transformer.h"
#include "pipelines/pipeline.h"
#include "schedulers/schedule.h"
#include "tokenizers/clip_tokenizer.h"

#include <memory>
#include <optional>
#include <string>

namespace genvis::pipelines {

inline constexpr const char* kGenvisVideoClass = "genvis.TextToVideoPipeline";

struct GenvisVideoModel {
  std::optional<tokenizers::CLIPTokenizer> tokenizer;
  models::CLIPTextModel text_encoder{nullptr};
  models::WanTransformer3DModel transformer{nullptr};
  models::AutoencoderKLWan vae{nullptr};
  schedulers::NoiseScheduleConfig scheduler;
  int64_t default_frames = 9, default_width = 32, default_height = 32;
  double fps = 8;
  std::string name;
  std::string quant;  // "int8": the transformer and text encoder carry int8 copies (pipelines/common/quantize.h)
  // The transformer reads the frame condition (mask + given latents) beside the noisy latents.
  bool frame_conditioned() const;
};

// LoadError naming the file for anything missing or inconsistent (the VAE's z_dim against the
// transformer's channels, the text encoder's width against the transformer's text_dim).
GenvisVideoModel load_genvis_video_model(const ModelSource& source);

// The frame condition [B, tf + C, F, h, w] for normalised latents z [B, C, F, h, w]: channels
// 0..tf-1 are 1 on latent frames j < keep[b] (the given ones) and 0 elsewhere, channels tf.. are
// z on those frames and 0 elsewhere. keep [B] int64 (0: text-to-video). tf: the VAE's temporal factor.
at::Tensor video_frame_condition(const at::Tensor& z, const at::Tensor& keep, int64_t temporal_factor);

// The CLIP conditioning [B, 77, C] of each prompt (EOS-padded, last hidden state).
at::Tensor genvis_video_prompt_embeds(const tokenizers::CLIPTokenizer& tokenizer, models::CLIPTextModel& text_encoder,
                                      const std::vector<std::string>& prompts);

class GenvisVideoPipeline : public Pipeline {
public:
  explicit GenvisVideoPipeline(GenvisVideoModel model);
  const PipelineInfo& info() const override { return info_; }
  GenvisVideoModel& model() { return model_; }

protected:
  Result run(const Request& request, const Callbacks& callbacks) override;

private:
  GenvisVideoModel model_;
  PipelineInfo info_;
};

std::unique_ptr<Pipeline> load_genvis_video_pipeline(const ModelSource& source);

}  // namespace genvis::pipelines
