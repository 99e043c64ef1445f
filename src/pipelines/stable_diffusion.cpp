#include "pipelines/stable_diffusion.h"

#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "models/clip_text/clip_text_loader.h"
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

nlohmann::json read_json(const std::string& path) {
  try {
    return nlohmann::json::parse(read_text_file(path, 16 << 20));
  } catch (const nlohmann::json::exception& e) {
    throw LoadError(path, std::string("not valid JSON: ") + e.what());
  }
}

}  // namespace

StableDiffusion load_stable_diffusion(const ModelSource& source) {
  if (!source.model.empty()) {
    if (!is_directory(source.model))
      throw LoadError(source.model, "--model must be a diffusers folder (single-file checkpoints: load through "
                                    "--unet/--vae/--text-encoder components for now)");
    const std::string index = (fs::path(source.model) / "model_index.json").string();
    if (file_exists(index)) {
      const auto j = read_json(index);
      if (j.contains("text_encoder_2") || j.value("_class_name", "").find("XL") != std::string::npos)
        throw UsageError(source.model + ": SDXL pipelines are not supported by generate yet");
    }
  }
  StableDiffusion m;
  m.dtype = source.dtype;
  m.device = source.device;
  std::vector<std::string> missing;
  const std::string te = pick(source.text_encoder, source.model, "text_encoder");
  const std::string unet = pick(source.unet, source.model, "unet");
  const std::string vae = pick(source.vae, source.model, "vae");
  const std::string vocab = pick(source.vocab, source.model, "tokenizer");
  if (te.empty()) missing.push_back("text encoder (--text-encoder)");
  if (unet.empty()) missing.push_back("UNet (--unet)");
  if (vae.empty()) missing.push_back("VAE (--vae)");
  if (vocab.empty()) missing.push_back("tokenizer vocabulary (--vocab)");
  if (!missing.empty()) {
    std::string what = "no model given; missing:";
    for (const auto& s : missing) what += " " + s + ",";
    what.pop_back();
    throw UsageError(what + " (or give --model DIR)");
  }

  m.tokenizer = std::make_shared<tokenizers::CLIPTokenizer>(tokenizers::CLIPTokenizer::load(vocab));
  models::CLIPTextLoadOptions te_options;
  te_options.dtype = source.dtype;
  te_options.device = source.device;
  m.text_encoder = models::load_clip_text_model(te, te_options);
  m.unet = models::load_unet2d_condition(unet, source.dtype);
  m.vae = models::load_autoencoder_kl(vae, source.dtype);
  m.unet->to(source.device);
  m.vae->to(source.device);
  m.text_encoder->eval();
  m.unet->eval();
  m.vae->eval();
  if (m.unet->config.addition_embed_type == "text_time")
    throw UsageError(unet + ": an SDXL UNet; generate supports SD 1.x/2.x for now");

  std::string scheduler = source.scheduler_config;
  if (scheduler.empty() && !source.model.empty()) {
    const auto p = fs::path(source.model) / "scheduler" / "scheduler_config.json";
    if (fs::exists(p)) scheduler = p.string();
  }
  m.scheduler = scheduler.empty() ? schedulers::NoiseScheduleConfig{}
                                  : schedulers::NoiseScheduleConfig::from_json(read_json(scheduler));
  m.name = fs::path(source.model.empty() ? unet : source.model).filename().string();
  return m;
}

void GenerateOptions::validate() const {
  std::vector<std::string> problems;
  if (steps < 1 || steps > 1000) problems.push_back("--steps must be 1..1000 (got " + std::to_string(steps) + ")");
  if (cfg_scale < 0 || !std::isfinite(cfg_scale)) problems.push_back("--cfg-scale must be >= 0");
  if (width < 8 || height < 8 || width % 8 || height % 8 || width > 8192 || height > 8192)
    problems.push_back("--width/--height must be multiples of 8 in 8..8192 (got " + std::to_string(width) + "x" +
                       std::to_string(height) + ")");
  if (batch < 1 || batch > 64) problems.push_back("--batch must be 1..64");
  if (clip_skip < 0 || clip_skip > 10) problems.push_back("--clip-skip must be 0..10");
  if (init_image.defined() && !(strength > 0 && strength <= 1)) problems.push_back("--strength must be in (0, 1]");
  if (init_image.defined() && (init_image.size(2) != height || init_image.size(3) != width))
    problems.push_back("the init image is " + std::to_string(init_image.size(3)) + "x" +
                       std::to_string(init_image.size(2)) + " but the size asked for is " + std::to_string(width) +
                       "x" + std::to_string(height));
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

at::Tensor encode_prompt(StableDiffusion& model, const std::string& prompt, int clip_skip, int64_t min_chunks) {
  torch::NoGradGuard no_grad;
  tokenizers::ChunkOptions chunking;
  chunking.pad_id = tokenizers::CLIPTokenizer::kEosId;
  tokenizers::WeightedTokens tokens = tokenizers::tokenize_weighted(*model.tokenizer, prompt, chunking);
  const tokenizers::WeightedTokens empty = tokenizers::tokenize_weighted(*model.tokenizer, "", chunking);
  while (static_cast<int64_t>(tokens.chunks.size()) < min_chunks) {
    tokens.chunks.push_back(empty.chunks.front());
    tokens.weights.push_back(empty.weights.front());
  }
  std::vector<at::Tensor> parts;
  for (size_t c = 0; c < tokens.chunks.size(); ++c) {
    const at::Tensor ids = torch::tensor(tokens.chunks[c], at::kLong).unsqueeze(0).to(model.device);
    at::Tensor z = models::sd_prompt_embeds(model.text_encoder, ids, clip_skip);
    const auto& w = tokens.weights[c];
    if (std::any_of(w.begin(), w.end(), [](float x) { return x != 1.0f; })) {
      const at::Tensor wt = torch::tensor(w, at::kFloat).unsqueeze(0).to(z.device(), z.scalar_type());
      z = tokenizers::apply_emphasis(z, wt);
    }
    parts.push_back(z);
  }
  return at::cat(parts, 1);
}

GenerateResult generate(StableDiffusion& model, const GenerateOptions& o) {
  o.validate();
  torch::NoGradGuard no_grad;
  const auto opts = at::TensorOptions().dtype(model.dtype).device(model.device);

  // 1. Encode prompts (cond and uncond padded to the same number of 77-token chunks).
  at::Tensor cond = encode_prompt(model, o.prompt, o.clip_skip);
  at::Tensor uncond = encode_prompt(model, o.negative_prompt, o.clip_skip, cond.size(1) / 77);
  if (uncond.size(1) > cond.size(1)) cond = encode_prompt(model, o.prompt, o.clip_skip, uncond.size(1) / 77);
  const at::Tensor context = at::cat({uncond.expand({o.batch, -1, -1}), cond.expand({o.batch, -1, -1})});

  // 2. Schedule.
  const auto& info = schedulers::sampler_info(o.sampler);
  const auto spacing = schedulers::schedule_spacing(o.schedule);
  const bool dpm = o.sampler.rfind("dpm", 0) == 0;
  schedulers::SigmaSchedule schedule = dpm ? schedulers::dpm_solver_schedule(model.scheduler, o.steps, spacing)
                                           : schedulers::euler_schedule(model.scheduler, o.steps, spacing);
  const bool timestep_space = info.space == schedulers::SamplerSpace::Timestep;
  if (info.space == schedulers::SamplerSpace::Flow)
    throw UsageError("sampler '" + o.sampler + "' is for flow-matching models, not Stable Diffusion 1.x/2.x");
  if (timestep_space && o.init_image.defined())
    throw UsageError("img2img needs a sigma sampler (euler, euler_a, heun, dpm2, dpmpp_2m, ...), not '" + o.sampler + "'");
  if (timestep_space && spacing != schedulers::SigmaSpacing::Default)
    throw UsageError("--schedule " + o.schedule + " applies to sigma samplers only, not '" + o.sampler + "'");

  // 3. Initial latents: one seeded noise per image (seed, seed+1, ...), drawn on the CPU.
  const int64_t f = model.vae->downscale_factor();
  const int64_t latent_channels = model.vae->config.latent_channels;
  const std::vector<int64_t> shape = {1, latent_channels, o.height / f, o.width / f};
  at::Tensor noise;
  if (o.init_noise.defined()) {
    if (o.init_noise.sizes().vec() != std::vector<int64_t>{o.batch, shape[1], shape[2], shape[3]})
      throw UsageError("--init-noise has shape " + c10::str(o.init_noise.sizes()) + ", expected [" +
                       std::to_string(o.batch) + ", " + std::to_string(shape[1]) + ", " + std::to_string(shape[2]) +
                       ", " + std::to_string(shape[3]) + "]");
    noise = o.init_noise.to(opts);
  } else {
    std::vector<at::Tensor> per_image;
    for (int64_t i = 0; i < o.batch; ++i) per_image.push_back(Rng(o.seed + i).randn(shape, opts));
    noise = at::cat(per_image);
  }
  Rng sampler_rng(o.seed + 0x9e3779b97f4a7c15ull);
  std::vector<double> sigmas = schedule.sigmas;
  at::Tensor x;
  if (o.init_image.defined()) {
    // img2img (diffusers): skip the first steps - int(steps * strength) sigmas, noise the
    // encoded image to the first remaining sigma.
    const int64_t t_start = o.steps - std::min<int64_t>(static_cast<int64_t>(o.steps * o.strength), o.steps);
    sigmas.erase(sigmas.begin(), sigmas.begin() + t_start);
    const auto posterior = model.vae->encode(o.init_image.to(opts).expand({o.batch, -1, -1, -1}));
    const at::Tensor eps = o.posterior_noise.defined() ? o.posterior_noise.to(opts).expand_as(posterior.mean)
                                                       : sampler_rng.randn(posterior.mean.sizes(), opts);
    const at::Tensor z = posterior.sample(eps);
    x = z * model.vae->config.scaling_factor + noise * sigmas.front();
  } else {
    // Timestep-space samplers start from unit noise (init_noise_sigma 1).
    x = timestep_space ? noise : noise * schedule.init_noise_sigma;
  }

  // 4. Denoise loop with classifier-free guidance.
  const double g = o.cfg_scale;
  schedulers::Network network = [&](const at::Tensor& model_input, double t) {
    const at::Tensor in = at::cat({model_input, model_input});
    const at::Tensor timestep = at::full({in.size(0)}, t, at::TensorOptions().dtype(at::kFloat).device(model.device));
    const auto eps = model.unet->forward(in, timestep, context).chunk(2);
    return eps[0] + g * (eps[1] - eps[0]);
  };
  const auto prediction = schedulers::parse_prediction_type(model.scheduler.prediction_type);
  const int64_t total = timestep_space ? o.steps : static_cast<int64_t>(sigmas.size()) - 1;
  const schedulers::NoiseSource noise_source = [&](at::IntArrayRef s) { return sampler_rng.randn(s, opts); };
  const schedulers::StepCallback on_step = [&](int64_t i, const at::Tensor&, const at::Tensor&) {
    if (o.on_step) o.on_step(i + 1, total);
  };
  if (timestep_space) {
    const auto discrete = o.sampler == "lcm" ? schedulers::lcm_schedule(model.scheduler, o.steps)
                                             : schedulers::ddim_schedule(model.scheduler, o.steps);
    const auto vp = schedulers::make_vp_denoiser(network, prediction, schedulers::alphas_cumprod(model.scheduler));
    x = schedulers::sample_by_name(o.sampler, vp, x, discrete, noise_source, on_step, /*eta=*/0.0,
                                   model.scheduler.timestep_scaling);
  } else {
    const auto denoiser = schedulers::make_denoiser(
        network, prediction,
        schedulers::timestep_map(schedule, schedulers::training_sigmas(model.scheduler),
                                 model.scheduler.num_train_timesteps));
    x = schedulers::sample_by_name(o.sampler, denoiser, x, sigmas, noise_source, on_step);
  }

  // 5. Decode.
  GenerateResult r;
  r.latents = x;
  const at::Tensor decoded = model.vae->decode(x / model.vae->config.scaling_factor);
  r.images = (decoded.to(at::kFloat) / 2 + 0.5).clamp(0, 1);
  return r;
}

}  // namespace genvis::pipelines
