#include "commands.h"
#include "default_model.h"

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
#include "io/weights.h"
#include "pipelines/adapters.h"
#include "pipelines/stable_diffusion.h"
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
std::pair<std::string, pipelines::PromptLoRA> parse_lora_option(const std::string& spec) {
  pipelines::PromptLoRA m;
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
  return {file, m};
}

}  // namespace

Command add_generate_command(CLI::App& app) {
  struct Options {
    pipelines::ModelSource source;
    pipelines::GenerateOptions gen;
    int64_t seed = -1;
    std::string init_image, mask, init_noise, dump, output = "output.png", device = "auto", dtype = "auto";
    std::optional<double> strength;
    std::optional<int64_t> width, height;
    std::vector<std::string> loras;
    std::string lora_dir, lora_mode = "merge", embeddings_dir;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate images from a prompt with a Stable Diffusion 1.x/2.x/XL model "
                                                 "(txt2img; img2img with --init-image; inpainting with --mask)");
  cmd->add_option("--model", o->source.model, "Diffusers model folder (model_index.json + components), or an original "
                                             "SD1/SD2/SDXL single-file checkpoint (.safetensors, .ckpt). Default: the "
                                             "built-in " + std::string(kDefaultModelName) +
                                             " when no components (--unet, --vae, --text-encoder) are given");
  cmd->add_option("--model-config", o->source.model_config,
                  "Single files: JSON merged onto the configs read off the shapes, e.g. "
                  "{\"unet\": {\"attention_head_dim\": 8}}");
  cmd->add_option("--unet", o->source.unet, "UNet component folder (overrides the model's)");
  cmd->add_option("--vae", o->source.vae, "VAE component folder (overrides the model's)");
  cmd->add_option("--text-encoder", o->source.text_encoder, "CLIP text encoder folder (overrides the model's)");
  cmd->add_option("--text-encoder-2", o->source.text_encoder_2, "SDXL: OpenCLIP bigG text encoder folder (with projection)");
  cmd->add_option("--vocab", o->source.vocab, "bpe_simple_vocab_16e6.txt.gz or a tokenizer/ folder");
  cmd->add_option("--scheduler-config", o->source.scheduler_config, "A diffusers scheduler_config.json");
  cmd->add_option("--prediction-type", o->source.prediction_type,
                  "Override the scheduler's prediction type: epsilon or v_prediction (SD 2.x 768 models)");
  cmd->add_option("-p,--prompt", o->gen.prompt, "Prompt (A1111 emphasis syntax: (word:1.2), [word], BREAK)")->required();
  cmd->add_option("-n,--negative-prompt", o->gen.negative_prompt, "Negative prompt");
  cmd->add_option("--steps", o->gen.steps, "Sampling steps")->capture_default_str();
  cmd->add_option("--sampler", o->gen.sampler, "Sampler: " + [] {
    std::string s;
    for (const auto& n : schedulers::sampler_names()) s += (s.empty() ? "" : ", ") + n;
    return s;
  }())->capture_default_str();
  cmd->add_option("--schedule", o->gen.schedule, "Sigma schedule: default, karras, exponential, sgm_uniform")
      ->capture_default_str();
  cmd->add_option("--cfg-scale", o->gen.cfg_scale, "Classifier-free guidance scale")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed (-1: random); image i of a batch uses seed + i")->capture_default_str();
  cmd->add_option("--width", o->width, "Width in pixels, a multiple of 8 (default: the init image's, else the "
                                      "model's native size: 512 for SD 1.x, 1024 for SDXL, 32 for genvis-emoji-32)");
  cmd->add_option("--height", o->height, "Height in pixels, a multiple of 8 (default: as --width)");
  cmd->add_option("--batch", o->gen.batch, "Images computed together as one batch")->capture_default_str();
  cmd->add_option("--clip-skip", o->gen.clip_skip, "Skip the last N CLIP layers (0 = none)")->capture_default_str();
  cmd->add_option("--init-image", o->init_image, "PNG to start from (img2img); its size must match --width/--height. "
                                                 "A .safetensors file with a float tensor 'image' [1,3,H,W] in [0,1] "
                                                 "is read exactly");
  cmd->add_option("--mask", o->mask, "Inpainting mask PNG, same size as --init-image: white (>= 50%) is repainted");
  cmd->add_option("--strength", o->strength,
                  "Fraction of the schedule to run from the init image (default 0.75; 1.0 with --mask)");
  cmd->add_flag("--vae-tiling", o->gen.vae_tiling,
                "Decode/encode the VAE in overlapping tiles with blended seams (large images in bounded memory)");
  cmd->add_option("--vae-tile-size", o->gen.vae_tile_size, "Tile size in pixels for --vae-tiling (0 = the VAE's "
                                                           "sample_size, e.g. 512 for SD 1.x)")
      ->capture_default_str();
  cmd->add_option("-o,--output", o->output, "Output PNG (batches: NAME-0.png, NAME-1.png, ...)")->capture_default_str();
  cmd->add_option("--init-noise", o->init_noise, "safetensors with a tensor 'latents': the initial noise, before sigma "
                                                 "scaling (replaces the seeded noise); optionally 'posterior_noise' "
                                                 "for sampling the VAE posterior of the init image");
  cmd->add_option("--dump", o->dump, "Also write the final 'latents' and float 'image' [0,1] to this safetensors file");
  cmd->add_option("--lora", o->loras, "LoRA file (kohya/A1111 or diffusers/PEFT safetensors), optionally with a "
                                      "strength: FILE:0.8 (default 1). Repeatable")
      ->take_all();
  cmd->add_option("--lora-dir", o->lora_dir, "Folder searched for <lora:NAME:WEIGHT> tags in the prompt (NAME.safetensors)");
  cmd->add_option("--lora-mode", o->lora_mode, "merge (folded into the weights once) or on-the-fly (adapters evaluated "
                                               "beside attention and CLIP layers)")
      ->check(CLI::IsMember({"merge", "on-the-fly"}))
      ->capture_default_str();
  cmd->add_option("--embeddings-dir", o->embeddings_dir, "Folder of textual-inversion embeddings (A1111 .safetensors/.pt, "
                                                         "diffusers learned_embeds); each is used by its name in prompts");
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "auto, f32, bf16 or f16")->capture_default_str();

  return {cmd, [o] {
    const ComputePolicy policy = resolve_policy(o->device, o->dtype);
    o->source.device = policy.device;
    o->source.dtype = policy.dtype;
    o->gen.seed = o->seed < 0 ? std::random_device{}() : static_cast<uint64_t>(o->seed);
    if (!o->init_image.empty()) o->gen.init_image = read_init_image(o->init_image);
    // Sizes not given: the init image's, else (after loading) the model's native size. Until the
    // model is known, validate with the given size or a valid placeholder.
    const at::Tensor& init = o->gen.init_image;
    o->gen.width = o->width.value_or(init.defined() ? init.size(3) : 512);
    o->gen.height = o->height.value_or(init.defined() ? init.size(2) : o->gen.width);
    if (o->source.model.empty() && o->source.unet.empty() && o->source.vae.empty() && o->source.text_encoder.empty())
      o->source.model = find_default_model();
    if (!o->mask.empty()) o->gen.mask = (io::image_to_tensor(io::read_png(o->mask).to_8bit().with_channels(1)) + 1) / 2;
    o->gen.strength = o->strength.value_or(o->mask.empty() ? 0.75 : 1.0);
    if (!o->init_noise.empty()) {
      auto reader = io::open_weights(o->init_noise);
      if (!reader->contains("latents")) throw LoadError(o->init_noise, "latents", "no such tensor (the initial noise)");
      o->gen.init_noise = reader->load("latents", at::kFloat);
      if (reader->contains("posterior_noise")) o->gen.posterior_noise = reader->load("posterior_noise", at::kFloat);
    }
    // <lora:NAME:W> tags: taken out of the prompts, loaded from --lora-dir.
    std::vector<pipelines::PromptLoRA> tags;
    const std::string written_prompt = o->gen.prompt;
    o->gen.prompt = pipelines::extract_lora_tags(o->gen.prompt, tags);
    o->gen.negative_prompt = pipelines::extract_lora_tags(o->gen.negative_prompt, tags);
    std::vector<std::pair<std::string, pipelines::PromptLoRA>> loras;  // file, multipliers
    for (const auto& spec : o->loras) loras.push_back(parse_lora_option(spec));
    for (const auto& tag : tags) {
      if (o->lora_dir.empty()) throw UsageError("the prompt has <lora:" + tag.name + ":...>: give --lora-dir");
      loras.emplace_back(pipelines::find_lora_file(o->lora_dir, tag.name), tag);
    }
    if (!o->embeddings_dir.empty() && !std::filesystem::is_directory(o->embeddings_dir))
      throw UsageError("--embeddings-dir " + o->embeddings_dir + " is not a folder");
    o->gen.validate();  // before the (slow) model load
    pipelines::StableDiffusion model = pipelines::load_stable_diffusion(o->source);
    const auto mode = o->lora_mode == "merge" ? models::LoRAMode::Merge : models::LoRAMode::OnTheFly;
    for (const auto& [file, m] : loras) pipelines::load_lora(model, file, m.unet_multiplier, mode, m.text_encoder_multiplier);
    if (!o->embeddings_dir.empty()) {
      const size_t n = pipelines::load_embeddings(model, o->embeddings_dir);
      log_info("embeddings: " + std::to_string(n) + " from " + o->embeddings_dir);
    }
    if (!init.defined() && (!o->width || !o->height)) {
      o->gen.width = o->width.value_or(o->height.value_or(model.native_size()));
      o->gen.height = o->height.value_or(o->gen.width);
      o->gen.validate();
    }

    Progress progress("sampling", o->gen.steps);
    o->gen.on_step = [&](int64_t i, int64_t total) {
      (void)total;
      progress.update(i);
    };
    const pipelines::GenerateResult r = pipelines::generate(model, o->gen);
    progress.finish();

    if (!o->dump.empty())
      io::save_safetensors(o->dump, {{"latents", r.latents.to(at::kFloat).cpu()}, {"image", r.images.cpu()}});
    io::GenerationParameters p;
    p.prompt = written_prompt;  // with its <lora:...> tags, as A1111 writes it
    p.negative_prompt = o->gen.negative_prompt;
    p.steps = o->gen.steps;
    p.sampler = schedulers::sampler_info(o->gen.sampler).display;
    p.schedule = schedulers::schedule_display_name(schedulers::schedule_spacing(o->gen.schedule));
    p.cfg_scale = o->gen.cfg_scale;
    p.width = static_cast<int>(o->gen.width);
    p.height = static_cast<int>(o->gen.height);
    p.model = model.name;
    if (!loras.empty()) {
      std::string list;
      for (const auto& [file, m] : loras)
        list += (list.empty() ? "" : ", ") + std::filesystem::path(file).stem().string() + ": " + std::to_string(m.unet_multiplier);
      p.extra.emplace_back("LoRA", list);
    }
    if (o->gen.init_image.defined()) p.extra.emplace_back("Denoising strength", std::to_string(o->gen.strength));
    if (o->gen.clip_skip > 0) p.extra.emplace_back("Clip skip", std::to_string(o->gen.clip_skip));
    p.extra.emplace_back("Version", std::string("genvis ") + GENVIS_VERSION);
    const std::filesystem::path out(o->output);
    for (int64_t i = 0; i < o->gen.batch; ++i) {
      p.seed = o->gen.seed + static_cast<uint64_t>(i);
      std::string path = o->output;
      if (o->gen.batch > 1)
        path = (out.parent_path() / (out.stem().string() + "-" + std::to_string(i) + out.extension().string())).string();
      io::write_png(path, io::tensor_to_image(r.images[i] * 2 - 1), {{io::kInfotextKey, io::format_infotext(p)}});
      log_info("wrote " + path + " (seed " + std::to_string(*p.seed) + ")");
    }
  }};
}

}  // namespace genvis::cli
