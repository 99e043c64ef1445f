#include "pipelines/wan/wan_pipeline.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/rng.h"
#include "pipelines/common/noise.h"

#include <cmath>
#include <filesystem>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace fs = std::filesystem;

namespace {

// OpenAI CLIP's normalisation (CLIPImageProcessor's image_mean / image_std).
constexpr double kClipMean[3] = {0.48145466, 0.4578275, 0.40821073};
constexpr double kClipStd[3] = {0.26862954, 0.26130258, 0.27577711};

std::string component(const fs::path& root, const char* name, const std::string& what) {
  const fs::path p = root / name;
  if (!fs::is_directory(p)) throw LoadError(root.string(), "no " + std::string(name) + "/ folder (" + what + ")");
  return p.string();
}

}  // namespace

void check_wan_frames(int64_t frames) {
  if (frames >= 1 && (frames - 1) % 4 == 0) return;
  const int64_t below = frames < 1 ? 1 : 1 + 4 * ((frames - 1) / 4), above = below + 4;
  throw UsageError("'num_frames' must be 4k + 1 (the VAE packs 4 frames per latent frame after the first): got " +
                   std::to_string(frames) + ", nearest " + std::to_string(below) + " or " + std::to_string(above));
}

WanModel load_wan_model(const ModelSource& source) {
  if (source.model.empty() || !fs::is_directory(source.model))
    throw LoadError(source.model, "a Wan model is a diffusers folder (model_index.json + components)");
  for (const auto* s : {&source.unet, &source.vae, &source.text_encoder, &source.text_encoder_2, &source.vocab})
    if (!s->empty()) throw UsageError("Wan models take no component overrides (--unet/--vae/--text-encoder/--vocab)");
  const fs::path root = source.model;
  WanModel m;
  m.name = root.filename().string();
  m.tokenizer = tokenizers::T5Tokenizer::load(component(root, "tokenizer", "the T5 tokenizer"));
  m.text_encoder = models::load_umt5_encoder(component(root, "text_encoder", "the UMT5 text encoder"),
                                             {.dtype = source.dtype, .device = source.device});
  m.transformer = models::load_wan_transformer(component(root, "transformer", "the Wan transformer"), source.dtype);
  m.transformer->to(source.device);
  m.vae = models::load_autoencoder_kl_wan(component(root, "vae", "the Wan VAE"), at::kFloat);
  m.vae->to(source.device);
  const std::string scheduler = (root / "scheduler" / "scheduler_config.json").string();
  if (!source.scheduler_config.empty())
    m.scheduler = schedulers::NoiseScheduleConfig::from_json(config::read_file(source.scheduler_config));
  else if (file_exists(scheduler))
    m.scheduler = schedulers::NoiseScheduleConfig::from_json(config::read_file(scheduler));
  else  // Wan 2.1's own: UniPC on flow sigmas, shift 3 (480p)
    m.scheduler = schedulers::NoiseScheduleConfig::from_json(
        {{"prediction_type", "flow_prediction"}, {"use_flow_sigmas", true}, {"flow_shift", 3.0}});
  if (m.transformer->config.is_i2v()) {
    m.image_encoder = models::load_clip_vision_model(component(root, "image_encoder", "the CLIP image encoder"),
                                                     source.dtype);
    m.image_encoder->to(source.device);
  }
  return m;
}

WanVideoPipeline::WanVideoPipeline(WanModel model, std::string class_name) : model_(std::move(model)) {
  const bool i2v = model_.transformer->config.is_i2v();
  info_.class_name = std::move(class_name);
  info_.family = "wan2.1";
  info_.name = model_.name;
  info_.native_width = 832, info_.native_height = 480;
  info_.size_multiple = 8 * model_.transformer->config.patch_size[1];
  info_.max_batch = 1;
  auto& s = info_.supports;
  s.text_to_image = !i2v;  // a text-to-video model starts from text alone
  s.image_to_image = i2v;  // the init image is the first frame
  s.video = true;
  s.video_to_video = !i2v;
  s.negative_prompt = s.guidance = s.steps = s.sampler = true;
  info_.defaults = {.steps = 50, .guidance = 5.0, .sampler = "unipc", .schedule = "default", .strength = 0.75};
  info_.samplers = {"unipc", "flow_euler"};
  info_.extras = {"max_sequence_length", "flow_shift"};
  info_.resizes_init_image = i2v;  // like diffusers' video processor: the first frame takes the video's size
}

at::Tensor WanVideoPipeline::image_embeds(const at::Tensor& image) {
  // CLIPImageProcessor: the shortest side resized to the encoder's size (bicubic, antialiased
  // as PIL does it), a centre crop to a square, then CLIP normalisation of [0, 1]. (PIL rounds
  // the resized pixels to 8 bits; this keeps them in float.)
  const int64_t size = model_.image_encoder->vision_model->config.image_size;
  at::Tensor x = (image.to(at::kFloat) + 1) / 2;
  const int64_t ih = x.size(2), iw = x.size(3);
  if (ih != size || iw != size) {
    const int64_t rh = ih <= iw ? size : static_cast<int64_t>(static_cast<double>(size) * ih / iw);
    const int64_t rw = ih <= iw ? static_cast<int64_t>(static_cast<double>(size) * iw / ih) : size;
    x = at::_upsample_bicubic2d_aa(x, {rh, rw}, false).clamp(0, 1);
    x = x.narrow(2, (rh - size) / 2, size).narrow(3, (rw - size) / 2, size);
  }
  const at::Tensor mean = at::tensor(std::vector<double>(kClipMean, kClipMean + 3)).to(at::kFloat).view({1, 3, 1, 1});
  const at::Tensor std = at::tensor(std::vector<double>(kClipStd, kClipStd + 3)).to(at::kFloat).view({1, 3, 1, 1});
  const auto dev = model_.image_encoder->vision_model->embeddings->class_embedding.device();
  torch::NoGradGuard no_grad;
  const auto states = model_.image_encoder->forward(((x - mean) / std).to(dev)).hidden_states;
  return states[states.size() - 2];
}

Result WanVideoPipeline::run(const Request& r, const Callbacks& callbacks) {
  const auto& dit = model_.transformer->config;
  const int64_t frames = r.init_video.defined() ? r.init_video.size(2) : r.num_frames.value_or(81);
  check_wan_frames(frames);
  if (dit.is_i2v() && !r.init_image.defined())
    throw UsageError("'init_image': this image-to-video model needs the first frame");
  if (r.batch != 1) throw UsageError("'batch': Wan generates one video per request");
  const int64_t max_len = r.extras.value("max_sequence_length", int64_t{512});
  if (max_len < 1) throw UsageError("extras: max_sequence_length must be >= 1");
  const int64_t w = *r.width, h = *r.height, f = model_.vae->config.spatial_factor();
  const int64_t latent_frames = model_.vae->latent_frames(frames);
  const auto device = model_.transformer->patch_embedding->weight.device();

  // 1. Prompts.
  WanDenoiseInputs in;
  in.transformer = model_.transformer;
  in.cond = wan_encode_prompt(*model_.tokenizer, model_.text_encoder, r.prompt, max_len);
  in.uncond = wan_encode_prompt(*model_.tokenizer, model_.text_encoder, r.negative_prompt, max_len);
  // 2. Schedule.
  in.scheduler = model_.scheduler;
  if (r.extras.contains("flow_shift")) {
    const double shift = r.extras.at("flow_shift").get<double>();
    if (!(shift > 0)) throw UsageError("extras: flow_shift must be positive");
    in.scheduler.flow_shift = in.scheduler.shift = shift;
  }
  in.sampler = r.sampler;
  in.steps = *r.steps;
  in.guidance = *r.guidance;
  in.callbacks = callbacks;
  // 3. Latents: seeded unit noise (init_noise replaces it), I2V condition, or the init video's
  // latents noised to the first sigma that runs.
  const std::vector<int64_t> shape = {model_.vae->config.z_dim, latent_frames, h / f, w / f};
  at::Tensor noise = r.init_noise.defined() ? r.init_noise.to(at::kFloat)
                                            : seeded_noise(r.seed, 1, shape, at::TensorOptions().dtype(at::kFloat));
  if (noise.sizes() != at::IntArrayRef({1, shape[0], shape[1], shape[2], shape[3]}))
    throw UsageError("init_noise must have the latent shape [1," + std::to_string(shape[0]) + "," +
                     std::to_string(shape[1]) + "," + std::to_string(shape[2]) + "," + std::to_string(shape[3]) + "]");
  const auto& vc = model_.vae->config;
  torch::NoGradGuard no_grad;
  if (dit.is_i2v()) {
    at::Tensor image = r.init_image.to(at::kFloat);
    if (image.size(2) != h || image.size(3) != w) {  // antialiased bicubic, as PIL resizes
      log_info("resizing the first frame from " + std::to_string(image.size(3)) + "x" + std::to_string(image.size(2)) +
               " to " + std::to_string(w) + "x" + std::to_string(h));
      image = at::_upsample_bicubic2d_aa(image, {h, w}, false).clamp(-1, 1);
    }
    in.image_embeds = image_embeds(image);
    at::Tensor first = image.unsqueeze(2);  // [1,3,1,H,W] in [-1,1]
    const at::Tensor video = at::cat({first, at::zeros({1, 3, frames - 1, h, w})}, 2);
    const at::Tensor z = model_.vae->encode(video.to(device)).mean;
    in.condition = wan_i2v_condition(z, vc.latents_mean, vc.latents_std).to(device);
  }
  if (r.init_video.defined()) {
    // diffusers' WanVideoToVideoPipeline samples the posterior (retrieve_latents' default mode).
    const auto posterior = model_.vae->encode(r.init_video.to(at::kFloat).to(device));
    const at::Tensor eps = r.posterior_noise.defined()
                               ? r.posterior_noise.to(at::kFloat).to(device)
                               : Rng(sampler_seed(r.seed)).randn(posterior.mean.sizes(), at::kFloat).to(device);
    if (eps.sizes() != posterior.mean.sizes())
      throw UsageError("posterior_noise must have the latent shape " + c10::str(posterior.mean.sizes()));
    const at::Tensor z = posterior.sample(eps);
    const at::Tensor x0 = (z - model_.vae->latents_mean().to(device)) / model_.vae->latents_std().to(device);
    DiffusionPlan plan = plan_diffusion(in.scheduler, in.sampler, "default", in.steps);
    plan.skip_for_strength(*r.strength);
    const double sigma = plan.sigmas.front();
    noise = x0 * static_cast<float>(1 - sigma) + noise.to(device) * static_cast<float>(sigma);
    in.strength = r.strength;
  }
  in.latents = noise.to(device);
  // 4. Denoise, 5. decode.
  const at::Tensor z = wan_denoise(in);
  const at::Tensor decoded = model_.vae->decode(wan_denormalize(z, vc.latents_mean, vc.latents_std));
  Result out;
  out.latents = z.cpu();
  out.samples = (decoded.to(at::kFloat) / 2 + 0.5).clamp(0, 1).cpu();
  io::GenerationParameters p;
  p.prompt = r.prompt, p.negative_prompt = r.negative_prompt;
  p.steps = r.steps, p.cfg_scale = r.guidance, p.seed = r.seed;
  p.sampler = schedulers::sampler_info(r.sampler).display;
  p.width = static_cast<int>(w), p.height = static_cast<int>(h);
  p.model = model_.name;
  p.extra.push_back({"Frames", std::to_string(frames)});
  if (r.init_video.defined()) p.extra.push_back({"Denoising strength", std::to_string(*r.strength)});
  out.parameters.push_back(p);
  return out;
}

std::unique_ptr<Pipeline> load_wan_pipeline(const ModelSource& source) {
  WanModel model = load_wan_model(source);
  const std::string cls = model.transformer->config.is_i2v() ? "WanImageToVideoPipeline" : "WanPipeline";
  return std::make_unique<WanVideoPipeline>(std::move(model), cls);
}

}  // namespace genvis::pipelines
