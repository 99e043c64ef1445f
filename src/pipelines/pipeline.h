// One interface for every generation paradigm (diffusion, flow matching, GANs, autoregressive
// token models): a Request that every family reads, a Result holding images or videos, and a
// Pipeline that generates. Families are found by their diffusers `_class_name` in
// pipelines/registry.h.
//
//   std::unique_ptr<Pipeline> p = load_pipeline({.model = "models/genvis-emoji-32"});
//   Request r;  r.prompt = "grinning face";  r.seed = 1;
//   Result out = p->generate(r, {.on_step = [](int64_t i, int64_t n) { ... }});
//   write_result(out, {.path = "face.png"});                // pipelines/common/output.h
//
// Requests a family cannot serve are refused with one UsageError naming the request field
// ("mask", "num_frames", ...); the CLI and the C API map field names to their own spelling.
#pragma once
#include "core/error.h"
#include "io/infotext.h"

#include <ATen/ATen.h>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace genvis::pipelines {

// Where a model comes from: a diffusers folder or a single file, completed or overridden by
// components (the component fields are Stable Diffusion's; other families refuse them).
struct ModelSource {
  std::string model;  // diffusers folder (model_index.json + component folders) or a single file
  std::string unet, vae, text_encoder, text_encoder_2, vocab, scheduler_config;  // component overrides
  std::string image_encoder;  // Wan image-to-video's CLIP image encoder (folder or file)
  std::string prediction_type;  // overrides the scheduler's ("epsilon", "v_prediction")
  // Single files: JSON {"unet": {...}, "vae": {...}, "text_encoder": {...}, "text_encoder_2": {...}}
  // (Wan: "transformer", "vae", "text_encoder", "image_encoder") merged onto the configs inferred
  // from shapes (head counts and other unseen settings): a file, or (Wan) the JSON text itself.
  std::string model_config;
  // Forces a family by its registered class name; empty = read model_index.json or detect.
  std::string class_name;
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::Device(at::kCPU);
  // "int8": linears and convolutions of the denoiser and text encoders run int8 products
  // (pipelines/common/quantize.h; the families that have it say so in PipelineInfo::quant).
  std::string quant;
};

// A LoRA to apply for a request: a file, or a name looked up in Request::lora_dir.
struct AdapterRequest {
  std::string file;
  double unet_multiplier = 1.0, text_encoder_multiplier = 1.0;
};

struct Request {
  // The prompt as written (A1111 emphasis; <lora:NAME:W> tags are adapters, taken out by the
  // families that support them and kept in the written parameters).
  std::string prompt, negative_prompt;
  // One prompt per sample (evaluation); when set its size must equal `batch` and `prompt` is unused.
  std::vector<std::string> prompts;
  uint64_t seed = 0;  // sample i uses seed + i
  // Unset: the family's default (PipelineInfo::defaults).
  std::optional<int64_t> steps;
  std::optional<double> guidance;  // classifier-free guidance scale
  std::string sampler, schedule;   // empty: the family's default
  std::optional<int64_t> width, height;  // unset: the init image's size, else the native size
  std::optional<int64_t> num_frames;     // video families
  int64_t batch = 1;
  at::Tensor init_image;  // [1,3,H,W] in [-1,1] (img2img, inpainting, image-to-video)
  at::Tensor init_video;  // [1,3,T,H,W] in [-1,1] (video-to-video)
  at::Tensor mask;        // [1,1,H,W] in [0,1]; >= 0.5 is repainted
  std::optional<double> strength;  // how much of the schedule runs from the init image/video
  std::vector<AdapterRequest> adapters;  // LoRAs
  std::string lora_dir;                  // where <lora:NAME:...> tags are looked up
  std::string lora_mode = "merge";       // "merge" or "on-the-fly"
  std::string embeddings_dir;            // textual-inversion embeddings usable in prompts
  // Per-family settings, e.g. Stable Diffusion's {"clip_skip": 2, "vae_tiling": true,
  // "vae_tile_size": 512, "original_size": [h, w], "target_size": [h, w], "crop_top_left": [y, x]}.
  // Keys a family does not know are refused, naming them.
  nlohmann::json extras = nlohmann::json::object();
  // Exact-reproduction inputs: replace the seeded initial noise (before any sigma scaling) and
  // the noise that samples the VAE posterior of init images.
  at::Tensor init_noise, posterior_noise;
  // Step caching, off by default (families without it refuse a setting): reuse of deep features
  // across adjacent sampling steps. UNet families: the whole network at every `cache_interval`-th
  // network evaluation and only its outermost blocks in between (DeepCache). Transformer
  // families: when the first block's output changed by less than `cache_threshold` (relative
  // mean absolute change) since the last full pass, the other blocks' cached residual is reused
  // (first-block cache).
  int64_t cache_interval = 1;
  double cache_threshold = 0;
};

struct Result {
  // [B,3,H,W] (images) or [B,3,T,H,W] (videos), float32 in [0,1], on the CPU.
  at::Tensor samples;
  // The final latents where the family has them (diffusion), else undefined.
  at::Tensor latents;
  // The parameters that made sample i (seed + i), as written into PNG `parameters` chunks.
  std::vector<io::GenerationParameters> parameters;
  bool is_video() const { return samples.defined() && samples.dim() == 5; }
};

struct Callbacks {
  // After each step (steps done, total).
  std::function<void(int64_t step, int64_t total)> on_step;
  // Polled before each step; returning true stops the run with a Cancelled error.
  std::function<bool()> cancelled;
  // Every `preview_every` steps (0: never): the current estimate of the samples, as `samples`.
  std::function<void(int64_t step, const at::Tensor& samples)> on_preview;
  int64_t preview_every = 0;
};

// Thrown when Callbacks::cancelled returns true (a RuntimeError: the CLI exits 1).
class Cancelled : public RuntimeError {
public:
  Cancelled() : RuntimeError("cancelled") {}
};

struct PipelineDefaults {
  int64_t steps = 0;        // 0: the family has no steps
  double guidance = 0;      // 0 with supports.guidance false: no guidance
  std::string sampler, schedule;
  double strength = 0.75;   // img2img
};

struct PipelineInfo {
  std::string class_name;  // the registry key, e.g. "StableDiffusionPipeline"
  std::string family;      // e.g. "sd1", "sd2", "sdxl", "wan2.1"
  std::string name;        // the model's name ("Model" in the written parameters)
  int64_t native_width = 0, native_height = 0;
  int64_t native_frames = 0;  // video families: the frame count when a request gives none (0: images)
  double native_fps = 0;      // video families: the frame rate clips are made for (0: images)
  int64_t size_multiple = 8;  // width/height must be multiples of this
  int64_t max_batch = 64;
  struct Supports {
    bool text_to_image = true, image_to_image = false, inpainting = false, video = false, video_to_video = false;
    bool negative_prompt = false, guidance = false, steps = false, sampler = false, schedule = false;
    bool adapters = false, embeddings = false;
    bool inpainting_only = false;  // a dedicated inpainting model: needs init_image and mask
    bool cache_interval = false, cache_threshold = false;  // step caching (Request::cache_*)
  } supports;
  PipelineDefaults defaults;
  std::vector<std::string> samplers;   // names accepted in Request::sampler
  std::vector<std::string> extras;     // keys accepted in Request::extras
  bool open_extras = false;            // any key is accepted (the family checks them itself)
  bool resizes_init_image = false;     // an init image of another size than width x height is resized
  std::string quant;                   // "int8" when loaded with ModelSource::quant = "int8"
  nlohmann::json to_json() const;
};

class Pipeline {
public:
  virtual ~Pipeline() = default;
  virtual const PipelineInfo& info() const = 0;
  // Checks the request against info() (every problem at once, naming request fields), fills
  // its defaults, then runs the family's generation.
  Result generate(const Request& request, const Callbacks& callbacks = {});

protected:
  // `request` has every default filled (steps, guidance, sampler, schedule, width, height,
  // strength when there is an init image) and has passed check_request().
  virtual Result run(const Request& request, const Callbacks& callbacks) = 0;
};

// The request with the family's defaults filled in, after refusing what the family cannot do:
// UsageError listing every problem, each naming its request field.
Request complete_request(const PipelineInfo& info, const Request& request);

// The request's prompts, one per sample: `prompts`, or `prompt` repeated `batch` times.
std::vector<std::string> prompts_of(const Request& r);

// Calls `call(b, e)` for prompts [b, e) in runs of `batch` (the last run may be shorter) under a
// progress bar named `label`, and concatenates the results: the batching every generate_each
// shares.
at::Tensor generate_in_batches(size_t n, int64_t batch, const std::string& label,
                               const std::function<at::Tensor(size_t b, size_t e)>& call);

// One sample per prompt, `batch` prompts per generate() call (the call for prompts[b..] uses seed
// base.seed + b), with a progress bar named `label`: [N,3,H,W] (or [N,3,T,H,W]) f32 on the CPU.
// Evaluation uses it, so that a score depends on the seed and batch size, not on the caller.
at::Tensor generate_each(Pipeline& pipeline, const std::vector<std::string>& prompts, Request base, int64_t batch,
                         const std::string& label);

// The checks that hold for every family (value ranges, shapes, pairs of fields), so that a program
// can refuse a bad request before a slow model load. UsageError as complete_request.
void precheck_request(const Request& request);

}  // namespace genvis::pipelines
