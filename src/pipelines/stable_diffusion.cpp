#include "pipelines/stable_diffusion.h"

#include "pipelines/common/quantize.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "core/progress.h"
#include "core/rng.h"
#include "models/clip_text/clip_text_loader.h"
#include "models/single_file/single_file.h"
#include "nn/memory_format.h"
#include "pipelines/common/diffusion_loop.h"
#include "pipelines/common/guidance.h"
#include "pipelines/common/noise.h"
#include "schedulers/registry.h"
#include "tokenizers/prompt_weights.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace fs = std::filesystem;

namespace {

std::string pick(const std::string& override_path, const std::string& model, const std::string& sub) {
  if (!override_path.empty()) return override_path;
  if (model.empty()) return "";
  return (fs::path(model) / sub).string();
}

// The components must fit together: context width, pooled/time-id width, latent channels.
void check_components(const StableDiffusion& m, const std::string& unet_path, const std::string& te2_path) {
  const auto& u = m.unet->config;
  const bool text_time = u.addition_embed_type && *u.addition_embed_type == "text_time";
  if (text_time && !m.text_encoder_2)
    throw UsageError(unet_path + ": an SDXL UNet needs the second text encoder (--text-encoder-2)");
  if (!text_time && m.text_encoder_2)
    throw UsageError(te2_path + ": a second text encoder was given but the UNet is not an SDXL UNet");
  int64_t width = m.text_encoder->text_model->config.hidden_size;
  if (m.text_encoder_2) width += m.text_encoder_2->text_model->config.hidden_size;
  const int64_t expected = u.cross_attention_dim.empty() ? 0 : u.cross_attention_dim.front();
  if (width != expected)
    throw LoadError(unet_path, "the UNet expects text conditioning of width " + std::to_string(expected) +
                                   " but the text encoder(s) give " + std::to_string(width));
  if (text_time && u.projection_class_embeddings_input_dim && u.addition_time_embed_dim) {
    const int64_t pooled = m.text_encoder_2->text_projection->options.out_features();
    const int64_t got = 6 * *u.addition_time_embed_dim + pooled;
    if (got != *u.projection_class_embeddings_input_dim)
      throw LoadError(unet_path, "the UNet's added conditioning takes " +
                                     std::to_string(*u.projection_class_embeddings_input_dim) +
                                     " values but 6 time ids and the pooled text embedding give " + std::to_string(got));
  }
  const int64_t lc = m.vae->config.latent_channels;
  if (u.in_channels != lc && u.in_channels != 2 * lc + 1)
    throw LoadError(unet_path, "the UNet takes " + std::to_string(u.in_channels) + " input channels; the VAE has " +
                                   std::to_string(lc) + " latent channels (expected " + std::to_string(lc) + ", or " +
                                   std::to_string(2 * lc + 1) + " for inpainting)");
}

}  // namespace

bool StableDiffusion::is_inpainting() const {
  return unet && unet->config.in_channels == 2 * vae->config.latent_channels + 1;
}

StableDiffusion load_stable_diffusion(const ModelSource& source) {
  bool sdxl_folder = false;
  StableDiffusion m;
  std::optional<models::SingleFileModel> single;
  // --unet may name a UNet file in the original names (ComfyUI's, ComfyUI-GGUF's): its config is
  // read off the shapes like a single file's, and --model-config's "unet" applies to it.
  const bool unet_file = !source.unet.empty() && !is_directory(source.unet) && file_exists(source.unet);
  nlohmann::json overrides = nlohmann::json::object();
  if (!source.model_config.empty()) overrides = config::read_file(source.model_config);
  if (!source.model.empty() && !is_directory(source.model)) {
    if (!file_exists(source.model)) throw LoadError(source.model, "no such model file or folder");
    single = models::load_single_file(source.model, overrides, source.dtype, source.device);
  } else if (!source.model_config.empty() && !unet_file) {
    throw UsageError("--model-config applies to single-file checkpoints and UNet files; a diffusers folder has its own configs");
  }
  if (!source.model.empty() && !single) {
    const std::string index = (fs::path(source.model) / "model_index.json").string();
    if (file_exists(index)) {
      const auto j = config::read_file(index);
      sdxl_folder = j.contains("text_encoder_2");
      if (j.value("_class_name", "").find("XL") != std::string::npos && !j.contains("text_encoder"))
        throw UsageError(source.model + ": an SDXL refiner (no first text encoder); only base models are supported");
      if (j.contains("force_zeros_for_empty_prompt") && j["force_zeros_for_empty_prompt"].is_boolean())
        m.force_zeros_for_empty_prompt = j["force_zeros_for_empty_prompt"].get<bool>();
    }
  }
  m.dtype = source.dtype;
  m.device = source.device;
  const std::string folder = single ? "" : source.model;
  const std::string te = pick(source.text_encoder, folder, "text_encoder");
  const std::string te2 = pick(source.text_encoder_2, sdxl_folder ? folder : "", "text_encoder_2");
  const std::string unet = pick(source.unet, folder, "unet");
  const std::string vae = pick(source.vae, folder, "vae");
  const std::string vocab = pick(source.vocab, folder, "tokenizer");
  std::vector<std::string> missing;
  if (te.empty() && !single) missing.push_back("text encoder (--text-encoder)");
  if (unet.empty() && !single) missing.push_back("UNet (--unet)");
  if (vae.empty() && !single) missing.push_back("VAE (--vae)");
  if (vocab.empty()) missing.push_back("tokenizer vocabulary (--vocab)");
  if (!missing.empty()) {
    std::string what = single ? "a single-file checkpoint holds no tokenizer; missing:" : "no model given; missing:";
    for (const auto& s : missing) what += " " + s + ",";
    what.pop_back();
    throw UsageError(what + (single ? " (bpe_simple_vocab_16e6.txt.gz or a tokenizer/ folder)" : " (or give --model DIR)"));
  }

  m.tokenizer = std::make_shared<tokenizers::CLIPTokenizer>(tokenizers::CLIPTokenizer::load(vocab));
  models::CLIPTextLoadOptions te_options;
  te_options.dtype = source.dtype;
  te_options.device = source.device;
  m.text_encoder = te.empty() ? single->text_encoder : models::load_clip_text_model(te, te_options);
  if (!te2.empty())
    m.text_encoder_2 = models::load_clip_text_model_with_projection(te2, te_options);
  else if (single)
    m.text_encoder_2 = single->text_encoder_2;
  if (unet.empty()) {
    m.unet = single->unet;
  } else if (unet_file) {
    if (!overrides.is_object()) throw UsageError("--model-config must hold a JSON object");
    m.unet = models::load_ldm_unet_file(unet, overrides.value("unet", nlohmann::json::object()), source.dtype);
  } else {
    m.unet = models::load_unet2d_condition(unet, source.dtype);
  }
  // f16 VAEs usually ask to run in f32 (force_upcast): load those straight to f32, no second copy.
  m.vae = vae.empty() ? single->vae
                      : models::load_autoencoder_kl(vae, source.dtype == at::kHalf ? at::kFloat : source.dtype);
  single.reset();  // components not taken are freed here
  m.vae_dtype = source.dtype == at::kHalf && m.vae->config.force_upcast ? at::kFloat : source.dtype;
  m.vae->to(source.device, m.vae_dtype);
  m.unet->to(source.device);
  m.text_encoder->eval();
  m.unet->eval();
  m.vae->eval();
  // CPU convolutions (and the GroupNorms between them) run faster in channels-last (NHWC) with the
  // same values; see docs/performance.md.
  if (source.device.is_cpu()) {
    nn::to_channels_last(*m.unet);
    nn::to_channels_last(*m.vae);
  }
  check_components(m, unet.empty() ? source.model : unet, te2.empty() ? source.model : te2);
  if (!quant::requested(source).empty()) quantize_int8(m);

  std::string scheduler = source.scheduler_config;
  if (scheduler.empty() && !source.model.empty()) {
    const auto p = fs::path(source.model) / "scheduler" / "scheduler_config.json";
    if (fs::exists(p)) scheduler = p.string();
  }
  m.scheduler = scheduler.empty() ? schedulers::NoiseScheduleConfig{}
                                  : schedulers::NoiseScheduleConfig::from_json(config::read_file(scheduler));
  if (!source.prediction_type.empty()) {
    schedulers::parse_prediction_type(source.prediction_type);  // UsageError for an unknown one
    m.scheduler.prediction_type = source.prediction_type;
  }
  const fs::path name_from(source.model.empty() ? unet : source.model);
  m.name = is_directory(name_from.string()) ? name_from.filename().string() : name_from.stem().string();
  return m;
}

int64_t StableDiffusion::native_size() const {
  if (unet->config.sample_size) return *unet->config.sample_size * vae->downscale_factor();
  return is_sdxl() ? 1024 : 512;
}

void GenerateOptions::validate() const {
  std::vector<std::string> problems;
  if (steps < 1 || steps > 1000) problems.push_back("--steps must be 1..1000 (got " + std::to_string(steps) + ")");
  if (cfg_scale < 0 || !std::isfinite(cfg_scale)) problems.push_back("--cfg-scale must be >= 0");
  if (width < 8 || height < 8 || width % 8 || height % 8 || width > 8192 || height > 8192)
    problems.push_back("--width/--height must be multiples of 8 in 8..8192 (got " + std::to_string(width) + "x" +
                       std::to_string(height) + ")");
  if (batch < 1 || batch > 64) problems.push_back("--batch must be 1..64");
  if (!prompts.empty() && static_cast<int64_t>(prompts.size()) != batch)
    problems.push_back(std::to_string(prompts.size()) + " prompts for a batch of " + std::to_string(batch));
  if (clip_skip < 0 || clip_skip > 10) problems.push_back("--clip-skip must be 0..10");
  if (init_image.defined() && !(strength > 0 && strength <= 1)) problems.push_back("--strength must be in (0, 1]");
  if (init_image.defined() && (init_image.size(2) != height || init_image.size(3) != width))
    problems.push_back("the init image is " + std::to_string(init_image.size(3)) + "x" +
                       std::to_string(init_image.size(2)) + " but the size asked for is " + std::to_string(width) +
                       "x" + std::to_string(height));
  if (vae_tile_size < 0 || vae_tile_size % 8) problems.push_back("--vae-tile-size must be a positive multiple of 8");
  if (mask.defined()) {
    if (!init_image.defined()) problems.push_back("--mask needs --init-image (the image to inpaint)");
    if (mask.dim() != 4 || mask.size(0) != 1 || mask.size(1) != 1)
      problems.push_back("the mask must be a single-channel image tensor [1,1,H,W]");
    else if (mask.size(2) != height || mask.size(3) != width)
      problems.push_back("the mask is " + std::to_string(mask.size(3)) + "x" + std::to_string(mask.size(2)) +
                         " but the image is " + std::to_string(width) + "x" + std::to_string(height));
  }
  try {
    schedulers::sampler_info(sampler);
  } catch (const UsageError& e) {
    problems.push_back(e.what());
  }
  try {
    schedulers::schedule_spacing(schedule);
  } catch (const UsageError& e) {
    problems.push_back(e.what());
  }
  if (!problems.empty()) {
    std::string what;
    for (const auto& p : problems) what += (what.empty() ? "" : "; ") + p;
    throw UsageError(what);
  }
}

PromptEmbeds encode_prompt(StableDiffusion& model, const std::string& prompt, int clip_skip, int64_t min_chunks) {
  torch::NoGradGuard no_grad;
  // SDXL's second tokenizer pads with 0 ("!") instead of EOS; the weights are the same.
  const auto tokenize = [&](int64_t pad_id) {
    tokenizers::ChunkOptions chunking;
    chunking.pad_id = pad_id;
    chunking.embeddings = model.embeddings.get();
    tokenizers::WeightedTokens tokens = tokenizers::tokenize_weighted(*model.tokenizer, prompt, chunking);
    const tokenizers::WeightedTokens empty = tokenizers::tokenize_weighted(*model.tokenizer, "", chunking);
    while (static_cast<int64_t>(tokens.chunks.size()) < min_chunks) {
      tokens.chunks.push_back(empty.chunks.front());
      tokens.weights.push_back(empty.weights.front());
    }
    return tokens;
  };
  const tokenizers::WeightedTokens tokens = tokenize(model.tokenizer->eos_id());
  tokenizers::WeightedTokens tokens_2;
  if (model.is_sdxl()) tokens_2 = tokenize(0);
  const auto ids_of = [&](const std::vector<int64_t>& chunk) {
    return torch::tensor(chunk, at::kLong).unsqueeze(0).to(model.device);
  };
  PromptEmbeds out;
  std::vector<at::Tensor> parts;
  for (size_t c = 0; c < tokens.chunks.size(); ++c) {
    at::Tensor z;
    if (model.is_sdxl()) {
      const models::SDXLPromptEmbeds e = models::sdxl_prompt_embeds(
          model.text_encoder, model.text_encoder_2, ids_of(tokens.chunks[c]), ids_of(tokens_2.chunks[c]), clip_skip);
      z = e.prompt_embeds;
      if (c == 0) out.pooled = e.pooled_prompt_embeds;
    } else {
      z = models::sd_prompt_embeds(model.text_encoder, ids_of(tokens.chunks[c]), clip_skip);
    }
    const auto& w = tokens.weights[c];
    if (std::any_of(w.begin(), w.end(), [](float x) { return x != 1.0f; })) {
      const at::Tensor wt = torch::tensor(w, at::kFloat).unsqueeze(0).to(z.device(), z.scalar_type());
      if (model.is_sdxl()) {
        // A1111: each encoder's embedding gets its own emphasis (and mean restoration).
        const int64_t c1 = model.text_encoder->text_model->config.hidden_size;
        z = at::cat({tokenizers::apply_emphasis(z.narrow(-1, 0, c1), wt),
                     tokenizers::apply_emphasis(z.narrow(-1, c1, z.size(-1) - c1), wt)},
                    -1);
      } else {
        z = tokenizers::apply_emphasis(z, wt);
      }
    }
    parts.push_back(z);
  }
  out.context = at::cat(parts, 1);
  return out;
}

at::Tensor decode_latents(StableDiffusion& model, const at::Tensor& latents, const GenerateOptions& o) {
  torch::NoGradGuard no_grad;
  const at::Tensor z = (latents / model.vae->config.scaling_factor).to(model.vae_dtype);
  const at::Tensor decoded =
      o.vae_tiling ? models::tiled_decode(model.vae, z, models::VAETiling{o.vae_tile_size}) : model.vae->decode(z);
  return (decoded.to(at::kFloat) / 2 + 0.5).clamp(0, 1);
}

GenerateResult generate(StableDiffusion& model, const GenerateOptions& o, const Callbacks& callbacks) {
  o.validate();
  torch::NoGradGuard no_grad;
  const auto opts = at::TensorOptions().dtype(model.dtype).device(model.device);
  const auto vae_opts = opts.dtype(model.vae_dtype);
  const bool inpaint = o.mask.defined();
  if (model.is_inpainting() && !inpaint)
    throw UsageError("this is an inpainting UNet (" + std::to_string(model.unet->config.in_channels) +
                     " input channels): give --init-image and --mask");

  // 1. Encode prompts (every cond and the uncond padded to the same number of 77-token chunks).
  const std::vector<std::string> prompts = o.prompts.empty() ? std::vector<std::string>{o.prompt} : o.prompts;
  std::vector<PromptEmbeds> conds;
  int64_t chunks = 1;
  for (const auto& p : prompts) {
    conds.push_back(encode_prompt(model, p, o.clip_skip));
    chunks = std::max(chunks, conds.back().context.size(1) / 77);
  }
  PromptEmbeds uncond = encode_prompt(model, o.negative_prompt, o.clip_skip, chunks);
  chunks = std::max(chunks, uncond.context.size(1) / 77);
  for (size_t i = 0; i < conds.size(); ++i)
    if (conds[i].context.size(1) / 77 < chunks) conds[i] = encode_prompt(model, prompts[i], o.clip_skip, chunks);
  if (model.is_sdxl() && model.force_zeros_for_empty_prompt && o.negative_prompt.empty()) {
    uncond.context = at::zeros_like(uncond.context);
    uncond.pooled = at::zeros_like(uncond.pooled);
  }
  PromptEmbeds cond;  // [batch, 77*chunks, C] (and [batch, P] pooled)
  if (conds.size() == 1) {
    cond.context = conds[0].context.expand({o.batch, -1, -1});
    if (conds[0].pooled.defined()) cond.pooled = conds[0].pooled.expand({o.batch, -1});
  } else {
    std::vector<at::Tensor> contexts, pooled;
    for (const auto& c : conds) {
      contexts.push_back(c.context);
      if (c.pooled.defined()) pooled.push_back(c.pooled);
    }
    cond.context = at::cat(contexts);
    if (!pooled.empty()) cond.pooled = at::cat(pooled);
  }
  const at::Tensor context = at::cat({uncond.context.expand({o.batch, -1, -1}), cond.context});
  std::optional<models::UNetAddedConditions> added;
  if (model.is_sdxl()) {
    const auto original = o.original_size.value_or(std::pair{o.height, o.width});
    const auto target = o.target_size.value_or(std::pair{o.height, o.width});
    const std::vector<double> ids = {static_cast<double>(original.first),     static_cast<double>(original.second),
                                     static_cast<double>(o.crop_top_left.first), static_cast<double>(o.crop_top_left.second),
                                     static_cast<double>(target.first),       static_cast<double>(target.second)};
    const at::Tensor time_ids = torch::tensor(ids, at::kDouble).to(opts).unsqueeze(0).expand({2 * o.batch, 6});
    added = models::UNetAddedConditions{
        at::cat({uncond.pooled.expand({o.batch, -1}), cond.pooled}), time_ids};
  }

  // 2. Schedule.
  DiffusionPlan plan = plan_diffusion(model.scheduler, o.sampler, o.schedule, o.steps);
  if (plan.timestep_space() && o.init_image.defined())
    throw UsageError(std::string(inpaint ? "inpainting" : "img2img") +
                     " needs a sigma sampler (euler, euler_a, heun, dpm2, dpmpp_2m, ...), not '" + o.sampler + "'");

  // 3. Initial latents: one seeded noise per image (seed, seed+1, ...), drawn on the CPU.
  const int64_t f = model.vae->downscale_factor();
  const int64_t latent_channels = model.vae->config.latent_channels;
  const double scaling = model.vae->config.scaling_factor;
  const std::vector<int64_t> shape = {1, latent_channels, o.height / f, o.width / f};
  at::Tensor noise;
  if (o.init_noise.defined()) {
    if (o.init_noise.sizes().vec() != std::vector<int64_t>{o.batch, shape[1], shape[2], shape[3]})
      throw UsageError("--init-noise has shape " + c10::str(o.init_noise.sizes()) + ", expected [" +
                       std::to_string(o.batch) + ", " + std::to_string(shape[1]) + ", " + std::to_string(shape[2]) +
                       ", " + std::to_string(shape[3]) + "]");
    noise = o.init_noise.to(opts);
  } else {
    noise = seeded_noise(o.seed, o.batch, at::IntArrayRef(shape).slice(1), opts);
  }
  Rng sampler_rng(sampler_seed(o.seed));
  const models::VAETiling tiling{o.vae_tile_size};
  // Latents of an image sampled from the VAE posterior, times the scaling factor.
  const auto encode_image = [&](const at::Tensor& image, const at::Tensor& recorded_noise) {
    const at::Tensor batch = image.to(vae_opts).expand({o.batch, -1, -1, -1});
    const auto posterior = o.vae_tiling ? models::tiled_encode(model.vae, batch, tiling) : model.vae->encode(batch);
    const at::Tensor eps = recorded_noise.defined() ? recorded_noise.to(vae_opts).expand_as(posterior.mean)
                                                    : sampler_rng.randn(posterior.mean.sizes(), vae_opts);
    return (posterior.sample(eps) * scaling).to(opts);
  };
  at::Tensor x, image_latents, latent_mask, masked_image_latents;
  if (inpaint) {
    // diffusers' mask processing: binarise at 0.5, nearest-neighbour down to the latent grid.
    const at::Tensor binary = (o.mask.to(at::kFloat) >= 0.5).to(at::kFloat);
    latent_mask = at::upsample_nearest2d(binary, {shape[2], shape[3]}).to(opts).expand({o.batch, 1, -1, -1});
    if (model.is_inpainting())
      masked_image_latents = encode_image(o.init_image.to(at::kFloat) * (binary < 0.5), o.posterior_noise);
  }
  const bool full_strength = inpaint && o.strength >= 1.0;
  if (o.init_image.defined() && !full_strength) {
    // img2img (diffusers): skip the first steps - int(steps * strength) sigmas, noise the
    // encoded image to the first remaining sigma.
    plan.skip_for_strength(o.strength);
    image_latents = encode_image(o.init_image, o.posterior_noise);
    x = image_latents + noise * plan.sigmas.front();
  } else {
    if (inpaint && !model.is_inpainting()) image_latents = encode_image(o.init_image, o.posterior_noise);
    x = noise * plan.init_noise_sigma();
  }

  // 4. Denoise loop with classifier-free guidance.
  const double g = o.cfg_scale;
  models::UNetDeepCache deep_cache;
  int64_t evaluations = 0;
  schedulers::Network network = [&](const at::Tensor& model_input, double t) {
    return classifier_free_guidance(model_input, g, [&](const at::Tensor& doubled) {
      at::Tensor in = doubled;
      if (masked_image_latents.defined())
        in = at::cat({in, at::cat({latent_mask, latent_mask}), at::cat({masked_image_latents, masked_image_latents})}, 1);
      const at::Tensor timestep = at::full({in.size(0)}, t, at::TensorOptions().dtype(at::kFloat).device(model.device));
      if (o.cache_interval <= 1) return model.unet->forward(in, timestep, context, added);
      return model.unet->forward(in, timestep, context, added, deep_cache, evaluations++ % o.cache_interval == 0);
    });
  };
  const schedulers::NoiseSource noise_source = [&](at::IntArrayRef s) { return sampler_rng.randn(s, opts); };
  Callbacks loop_callbacks = callbacks;
  if (o.on_step) {
    loop_callbacks.on_step = [&](int64_t i, int64_t total) {
      o.on_step(i, total);
      if (callbacks.on_step) callbacks.on_step(i, total);
    };
  }
  DiffusionLoopOptions loop;
  if (inpaint && !model.is_inpainting()) {
    // An ordinary UNet inpaints by latent blending (A1111): outside the mask the denoised
    // estimate is the image's own latents, so the kept region converges to them exactly.
    loop.wrap_denoiser = [&image_latents, &latent_mask](schedulers::Denoiser inner) -> schedulers::Denoiser {
      return [inner = std::move(inner), &image_latents, &latent_mask](const at::Tensor& xt, double sigma) {
        return at::lerp(image_latents, inner(xt, sigma), latent_mask);
      };
    };
  }
  loop.preview = [&](const at::Tensor& denoised) { return decode_latents(model, denoised, o); };
  x = run_diffusion(plan, model.scheduler, network, x, noise_source, loop_callbacks, loop);

  // 5. Decode.
  GenerateResult r;
  r.latents = x;
  r.images = decode_latents(model, x, o);
  return r;
}

at::Tensor generate_each(StableDiffusion& model, const std::vector<std::string>& prompts, GenerateOptions options,
                         int64_t batch, const std::string& label) {
  const uint64_t seed = options.seed;
  return generate_in_batches(prompts.size(), batch, label, [&](size_t b, size_t e) {
    options.prompt.clear();
    options.prompts.assign(prompts.begin() + static_cast<std::ptrdiff_t>(b), prompts.begin() + static_cast<std::ptrdiff_t>(e));
    options.batch = static_cast<int64_t>(e - b);
    options.seed = seed + b;
    return generate(model, options).images.to(at::kCPU, at::kFloat);
  });
}

void quantize_int8(StableDiffusion& m) {
  quant::apply(*m.unet, "unet", quant::unet_keeps);
  quant::apply(*m.text_encoder, "text_encoder");
  if (m.text_encoder_2) quant::apply(*m.text_encoder_2, "text_encoder_2");
  m.quant = "int8";
}

}  // namespace genvis::pipelines
