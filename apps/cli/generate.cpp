#include "commands.h"
#include "default_model.h"
#include "flag_names.h"

#include "core/device.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "genvis/version.h"
#include "io/image.h"
#include "io/image_tensor.h"
#include "io/infotext.h"
#include "io/safetensors.h"
#include "io/video.h"
#include "io/weights.h"
#include "pipelines/common/output.h"
#include "pipelines/registry.h"
#include "schedulers/registry.h"

#include <filesystem>
#include <optional>
#include <random>

namespace genvis::cli {

namespace {

// A PNG, or (for exact cross-implementation checks) a safetensors file holding a float tensor
// `image` [1,3,H,W] in [0,1], as --dump writes it. Returns [1,3,H,W] in [-1,1].
at::Tensor read_init_image(const std::string& path) {
  if (std::filesystem::path(path).extension() != ".safetensors")
    return io::image_to_tensor(io::read_png(path).with_channels(3));
  auto reader = io::open_weights(path);
  if (!reader->contains("image")) throw LoadError(path, "image", "no such tensor (the init image, [1,3,H,W] in [0,1])");
  at::Tensor image = reader->load("image", at::kFloat);
  if (image.dim() != 4 || image.size(0) != 1 || image.size(1) != 3)
    throw LoadError(path, "image", "shape " + c10::str(image.sizes()) + ", expected [1, 3, H, W]");
  if (!image.isfinite().all().item<bool>() || image.min().item<float>() < 0 || image.max().item<float>() > 1)
    throw LoadError(path, "image", "values must be finite and in [0, 1]");
  return image * 2 - 1;
}

// "FILE" or "FILE:WEIGHT" (a trailing number after the last ':').
pipelines::AdapterRequest parse_lora_option(const std::string& spec) {
  pipelines::AdapterRequest m;
  std::string file = spec;
  if (const auto colon = spec.rfind(':'); colon != std::string::npos && colon + 1 < spec.size()) {
    try {
      size_t used = 0;
      const std::string tail = spec.substr(colon + 1);
      const double w = std::stod(tail, &used);
      if (used == tail.size()) {
        m.unet_multiplier = m.text_encoder_multiplier = w;
        file = spec.substr(0, colon);
      }
    } catch (const std::exception&) {
    }
  }
  if (!std::filesystem::is_regular_file(file)) throw UsageError("--lora " + spec + ": no such file " + file);
  m.file = file;
  return m;
}

}  // namespace


namespace {

template <class Options>
void run_generate(Options& opt) {
  pipelines::Request& q = opt.request;
  const ComputePolicy policy = resolve_policy(opt.device, opt.dtype);
  opt.source.device = policy.device;
  opt.source.dtype = policy.dtype;
  q.seed = opt.seed < 0 ? std::random_device{}() : static_cast<uint64_t>(opt.seed);
  if (opt.fps) io::check_fps(*opt.fps);
  if (!opt.init_image.empty()) q.init_image = read_init_image(opt.init_image);
  if (!opt.init_video.empty()) {  // [3,T,H,W] in [0,1] -> [1,3,T,H,W] in [-1,1]
    const io::Video v = io::read_video(opt.init_video, {.max_frames = q.num_frames.value_or(0)});
    q.init_video = (v.frames.to(at::kFloat) * 2 - 1).unsqueeze(0);
  }
  if (!opt.extras.empty()) {
    const nlohmann::json extras = nlohmann::json::parse(opt.extras, nullptr, false);
    if (!extras.is_object()) throw UsageError("--extras must be a JSON object, e.g. '{\"flow_shift\": 5}'");
    for (const auto& [k, v] : extras.items()) q.extras[k] = v;
  }
  if (opt.source.model.empty() && opt.source.unet.empty() && opt.source.vae.empty() && opt.source.text_encoder.empty())
    opt.source.model = q.num_frames.value_or(1) > 1 || q.init_video.defined() ? pipelines::find_default_video_model()
                                                                               : find_default_model();
  if (!opt.mask.empty()) q.mask = (io::image_to_tensor(io::read_png(opt.mask).to_8bit().with_channels(1)) + 1) / 2;
  if (!opt.init_noise.empty()) {
    auto reader = io::open_weights(opt.init_noise);
    if (!reader->contains("latents")) throw LoadError(opt.init_noise, "latents", "no such tensor (the initial noise)");
    q.init_noise = reader->load("latents", at::kFloat);
    if (reader->contains("posterior_noise")) q.posterior_noise = reader->load("posterior_noise", at::kFloat);
  }
  for (const auto& spec : opt.loras) q.adapters.push_back(parse_lora_option(spec));
  if (opt.clip_skip) q.extras["clip_skip"] = *opt.clip_skip;
  if (opt.vae_tiling) q.extras["vae_tiling"] = true;
  if (opt.vae_tile_size) q.extras["vae_tile_size"] = *opt.vae_tile_size;
  if (opt.rerank) q.extras["rerank"] = *opt.rerank;
  if (opt.top_k) q.extras["top_k"] = *opt.top_k;
  if (opt.top_p) q.extras["top_p"] = *opt.top_p;
  if (opt.temperature) q.extras["temperature"] = *opt.temperature;
  if (!q.lora_dir.empty() && !std::filesystem::is_directory(q.lora_dir))
    throw UsageError("--lora-dir " + q.lora_dir + " is not a folder");
  if (!q.embeddings_dir.empty() && !std::filesystem::is_directory(q.embeddings_dir))
    throw UsageError("--embeddings-dir " + q.embeddings_dir + " is not a folder");
  pipelines::precheck_request(q);  // before the (slow) model load
  const std::unique_ptr<pipelines::Pipeline> pipeline = pipelines::load_pipeline(opt.source);

  std::optional<Progress> progress;
  pipelines::Callbacks callbacks;
  callbacks.on_step = [&](int64_t i, int64_t total) {
    if (!progress) progress.emplace("sampling", total);
    progress->update(i);
  };
  const pipelines::Result r = pipeline->generate(q, callbacks);
  if (progress) progress->finish();

  if (!opt.dump.empty()) {
    std::vector<std::pair<std::string, at::Tensor>> tensors = {{"image", r.samples}};
    if (r.latents.defined()) tensors.insert(tensors.begin(), {"latents", r.latents.to(at::kFloat).cpu()});
    io::save_safetensors(opt.dump, tensors);
  }
  const double fps = opt.fps ? *opt.fps : pipeline->info().native_fps > 0 ? pipeline->info().native_fps : 16.0;
  const std::vector<std::string> files = pipelines::write_result(r, {.path = opt.output, .fps = fps});
  for (size_t i = 0; i < files.size(); ++i)
    log_info("wrote " + files[i] + " (seed " + std::to_string(q.seed + i) + ")");
}

}  // namespace

Command add_generate_command(CLI::App& app) {
  struct Options {
    pipelines::ModelSource source;
    pipelines::Request request;
    int64_t seed = -1;
    std::optional<int> clip_skip;
    bool vae_tiling = false;
    std::optional<double> fps;  // unset: the model's own (PipelineInfo::native_fps), else 16
    std::optional<int64_t> vae_tile_size;
    std::optional<int64_t> rerank, top_k;         // token models (DALL·E)
    std::optional<double> top_p, temperature;
    std::string init_image, init_video, extras, mask, init_noise, dump, output = "output.png", device = "auto",
        dtype = "auto";
    std::vector<std::string> loras;
  };
  auto o = std::make_shared<Options>();
  auto& q = o->request;
  CLI::App* cmd = app.add_subcommand("generate", "Generate images from a prompt (Stable Diffusion 1.x/2.x/XL: txt2img; "
                                                 "img2img with --init-image; inpainting with --mask)");
  cmd->add_option("--model", o->source.model, "Model folder (model_index.json names its pipeline class; or a Wan 2.1 "
                                             "release folder, config.json WanModel), an original SD1/SD2/SDXL "
                                             "single-file checkpoint (.safetensors, .ckpt, .gguf), or a Wan 2.1 transformer "
                                             "file (original/ComfyUI layout). Default: the "
                                             "built-in " + std::string(kDefaultModelName) +
                                             " when no components (--unet, --vae, --text-encoder) are given; with "
                                             "--frames > 1 or --init-video, the built-in video model " +
                                             pipelines::kDefaultVideoModelName);
  cmd->add_option("--model-config", o->source.model_config,
                  "Single files: JSON file merged onto the configs read off the shapes, e.g. "
                  "{\"unet\": {\"attention_head_dim\": 8}}; Wan: components transformer, vae, text_encoder, "
                  "image_encoder, also as JSON text");
  cmd->add_option("--unet", o->source.unet,
                  "UNet component folder (overrides the model's), or a UNet file in the original names (ComfyUI's "
                  "diffusion_models/*.safetensors, ComfyUI-GGUF's *.gguf; config read off the shapes, --model-config "
                  "'{\"unet\": {...}}' for what they do not tell)");
  cmd->add_option("--vae", o->source.vae, "VAE component folder (overrides the model's); Wan: also Wan2.1_VAE.pth or "
                                          "ComfyUI's wan_2.1_vae.safetensors");
  cmd->add_option("--text-encoder", o->source.text_encoder, "CLIP text encoder folder (overrides the model's); Wan: "
                                                            "UMT5 folder, models_t5_umt5-xxl-enc-bf16.pth or "
                                                            "ComfyUI's umt5_xxl_fp16.safetensors");
  cmd->add_option("--text-encoder-2", o->source.text_encoder_2, "SDXL: OpenCLIP bigG text encoder folder (with projection)");
  cmd->add_option("--image-encoder", o->source.image_encoder,
                  "Wan image-to-video: CLIP image encoder folder, the release's "
                  "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth or ComfyUI's clip_vision_h.safetensors");
  cmd->add_option("--vocab,--tokenizer", o->source.vocab,
                  "bpe_simple_vocab_16e6.txt.gz or a tokenizer/ folder; Wan: a google/umt5-xxl tokenizer folder "
                  "(spiece.model)");
  cmd->add_option("--scheduler-config", o->source.scheduler_config, "A diffusers scheduler_config.json");
  cmd->add_option("--prediction-type", o->source.prediction_type,
                  "Override the scheduler's prediction type: epsilon or v_prediction (SD 2.x 768 models)");
  cmd->add_option("--pipeline", o->source.class_name,
                  "Pipeline class to load the model with (default: model_index.json's _class_name, or detected)");
  cmd->add_option("-p,--prompt", q.prompt, "Prompt (A1111 emphasis syntax: (word:1.2), [word], BREAK)")->required();
  cmd->add_option("-n,--negative-prompt", q.negative_prompt, "Negative prompt");
  cmd->add_option("--steps", q.steps, "Sampling steps (default: the model's; 20 for Stable Diffusion)");
  cmd->add_option("--sampler", q.sampler, "Sampler (default euler): " + [] {
    std::string s;
    for (const auto& n : schedulers::sampler_names()) s += (s.empty() ? "" : ", ") + n;
    return s;
  }());
  cmd->add_option("--schedule", q.schedule, "Sigma schedule: default, karras, exponential, sgm_uniform");
  cmd->add_option("--cfg-scale", q.guidance, "Classifier-free guidance scale (default: the model's; 7 for Stable Diffusion)");
  cmd->add_option("--seed", o->seed, "Seed (-1: random); image i of a batch uses seed + i")->capture_default_str();
  cmd->add_option("--width", q.width, "Width in pixels, a multiple of 8 (default: the init image's, else the "
                                      "model's native size: 512 for SD 1.x, 1024 for SDXL, 32 for genvis-emoji-32)");
  cmd->add_option("--height", q.height, "Height in pixels, a multiple of 8 (default: as --width)");
  cmd->add_option("--batch", q.batch, "Images computed together as one batch")->capture_default_str();
  cmd->add_option("--clip-skip", o->clip_skip, "Skip the last N CLIP layers (0 = none)");
  cmd->add_option("--init-image", o->init_image, "PNG to start from (img2img); its size must match --width/--height. "
                                                 "A .safetensors file with a float tensor 'image' [1,3,H,W] in [0,1] "
                                                 "is read exactly");
  cmd->add_option("--frames", q.num_frames,
                  "Video models: number of frames (Wan: 4k+1, default 81; with --init-video, its first N frames)");
  cmd->add_option("--init-video", o->init_video,
                  "Video to start from (video-to-video: MP4/WebM/GIF/WebP or a folder of PNG frames), with --strength");
  cmd->add_option("--extras", o->extras,
                  "Per-family settings as a JSON object (Wan: {\"max_sequence_length\": 512, \"flow_shift\": 5})");
  cmd->add_option("--rerank", o->rerank, "DALL·E: draw N candidates per image and keep the one the model's "
                                          "contrastive reranker scores best (default 1: no reranking)");
  cmd->add_option("--top-k", o->top_k, "DALL·E: sample each image token from the k most likely (0: all)");
  cmd->add_option("--top-p", o->top_p, "DALL·E: nucleus sampling, the smallest set of tokens reaching this probability");
  cmd->add_option("--temperature", o->temperature, "DALL·E: token sampling temperature (default 1; 0: greedy)");
  cmd->add_option("--mask", o->mask, "Inpainting mask PNG, same size as --init-image: white (>= 50%) is repainted");
  cmd->add_option("--strength", q.strength,
                  "Fraction of the schedule to run from the init image (default 0.75; 1.0 with --mask)");
  cmd->add_flag("--vae-tiling", o->vae_tiling,
                "Decode/encode the VAE in overlapping tiles with blended seams (large images in bounded memory)");
  cmd->add_option("--vae-tile-size", o->vae_tile_size, "Tile size in pixels for --vae-tiling (0 = the VAE's "
                                                       "sample_size, e.g. 512 for SD 1.x)");
  cmd->add_option("-o,--output", o->output, "Output PNG (batches: NAME-0.png, NAME-1.png, ...); videos: .mp4 (H.264), "
                                            ".webp (animated), .png (a frame strip: the frames left to right) or a "
                                            "folder of PNG frames (DIR/ or a name without extension)")->capture_default_str();
  cmd->add_option("--fps", o->fps,
                  "Frames per second of a video output (0 < fps <= 1000; default: the model's own, e.g. 16 for Wan "
                  "2.1, 8 for genvis-shapes-video)");
  cmd->add_option("--init-noise", o->init_noise, "safetensors with a tensor 'latents': the initial noise, before sigma "
                                                 "scaling (replaces the seeded noise); optionally 'posterior_noise' "
                                                 "for sampling the VAE posterior of the init image");
  cmd->add_option("--dump", o->dump, "Also write the final 'latents' and float 'image' [0,1] to this safetensors file");
  cmd->add_option("--lora", o->loras, "LoRA file (kohya/A1111 or diffusers/PEFT safetensors), optionally with a "
                                      "strength: FILE:0.8 (default 1). Repeatable")
      ->take_all();
  cmd->add_option("--lora-dir", q.lora_dir, "Folder searched for <lora:NAME:WEIGHT> tags in the prompt (NAME.safetensors)");
  cmd->add_option("--lora-mode", q.lora_mode, "merge (folded into the weights once) or on-the-fly (adapters evaluated "
                                              "beside attention and CLIP layers)")
      ->check(CLI::IsMember({"merge", "on-the-fly"}))
      ->capture_default_str();
  cmd->add_option("--embeddings-dir", q.embeddings_dir, "Folder of textual-inversion embeddings (A1111 .safetensors/.pt, "
                                                        "diffusers learned_embeds); each is used by its name in prompts");
  cmd->add_option("--cache-interval", q.cache_interval,
                  "Step caching for UNet models (DeepCache): the whole UNet at every N-th network evaluation and only "
                  "its outermost blocks in between (1: off; docs/performance.md measures speed and quality)")
      ->capture_default_str();
  cmd->add_option("--cache-threshold", q.cache_threshold,
                  "Step caching for transformer video models (first-block cache): the other blocks' cached residual is "
                  "reused while the first block's output changes by less than this (0: off)")
      ->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "auto, f32, bf16 or f16")->capture_default_str();
  cmd->add_option("--quant", o->source.quant,
                  "none or int8: the denoiser's and text encoders' linears and convolutions as int8 products "
                  "(per-channel weights, activations quantised on the fly; CPU; docs/performance.md)")
      ->check(CLI::IsMember({"none", "int8"}));

  return {cmd, [o, cmd] {
    try {
      run_generate(*o);
    } catch (const UsageError& e) {
      throw UsageError(with_flag_names(e.what(), cmd,
                                       {{"guidance", "--cfg-scale"}, {"adapters", "--lora"}, {"prompts", "--prompt"},
                                        {"width/height", "--width/--height"}, {"extras.clip_skip", "--clip-skip"},
                                        {"extras.vae_tiling", "--vae-tiling"}, {"extras.vae_tile_size", "--vae-tile-size"},
                                        {"extras.rerank", "--rerank"}, {"extras.top_k", "--top-k"},
                                        {"extras.top_p", "--top-p"}, {"extras.temperature", "--temperature"},
                                        {"num_frames", "--frames"}}));
    }
  }};
}

}  // namespace genvis::cli
