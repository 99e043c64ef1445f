#include "pipelines/genvis_video/genvis_video_pipeline.h"

#include "pipelines/common/quantize.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "models/clip_text/clip_text_loader.h"
#include "pipelines/common/diffusion_loop.h"
#include "pipelines/common/noise.h"
#include "pipelines/wan/wan_sampling.h"
#include "schedulers/registry.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string component(const fs::path& root, const std::string& override_path, const char* name) {
  if (!override_path.empty()) return override_path;
  const fs::path p = root / name;
  if (!fs::exists(p)) throw LoadError(root.string(), std::string("no ") + name + "/ folder");
  return p.string();
}

int64_t positive(const json& index, const char* key, int64_t fallback, const std::string& path) {
  if (!index.contains(key)) return fallback;
  if (!index[key].is_number_integer() || index[key].get<int64_t>() < 1)
    throw LoadError(path, std::string(key) + " must be a positive integer");
  return index[key].get<int64_t>();
}

}  // namespace

bool GenvisVideoModel::frame_conditioned() const {
  const auto& c = transformer->config;
  return c.in_channels == 2 * vae->config.z_dim + vae->config.temporal_factor();
}

GenvisVideoModel load_genvis_video_model(const ModelSource& source) {
  if (source.model.empty()) throw UsageError("no model folder given");
  const fs::path root = source.model;
  if (!fs::is_directory(root)) throw LoadError(source.model, "a genvis video model is a folder");
  for (const auto* s : {&source.unet, &source.text_encoder_2, &source.image_encoder})
    if (!s->empty()) throw UsageError("genvis video models take no --unet, --text-encoder-2 or --image-encoder");
  const std::string index_path = (root / "model_index.json").string();
  const json index = config::read_file(index_path);
  GenvisVideoModel m;
  m.name = root.filename().string();
  if (m.name.empty()) m.name = root.parent_path().filename().string();
  m.default_frames = positive(index, "default_frames", 9, index_path);
  m.default_width = positive(index, "default_width", 32, index_path);
  m.default_height = positive(index, "default_height", 32, index_path);
  if (index.contains("fps")) {
    if (!index["fps"].is_number() || !(index["fps"].get<double>() > 0)) throw LoadError(index_path, "fps must be positive");
    m.fps = index["fps"].get<double>();
  }
  m.tokenizer = tokenizers::CLIPTokenizer::load(component(root, source.vocab, "tokenizer"));
  m.text_encoder = models::load_clip_text_model(component(root, source.text_encoder, "text_encoder"),
                                                {.dtype = source.dtype, .device = source.device});
  m.transformer = models::load_wan_transformer(component(root, "", "transformer"), source.dtype);
  m.transformer->to(source.device);
  m.transformer->eval();
  m.quant = quant::apply_video(source, *m.transformer, *m.text_encoder);
  m.vae = models::load_autoencoder_kl_wan(component(root, source.vae, "vae"), at::kFloat);
  m.vae->to(source.device);
  const std::string scheduler =
      source.scheduler_config.empty() ? (root / "scheduler" / "scheduler_config.json").string() : source.scheduler_config;
  m.scheduler = schedulers::NoiseScheduleConfig::from_json(config::read_file(scheduler));
  if (m.scheduler.prediction_type != "flow")
    throw LoadError(scheduler, "a genvis video model samples by flow matching (prediction_type flow_prediction)");

  const auto& dit = m.transformer->config;
  const int64_t z = m.vae->config.z_dim, tf = m.vae->config.temporal_factor();
  if (dit.out_channels != z)
    throw LoadError(source.model, "the VAE has " + std::to_string(z) + " latent channels; the transformer predicts " +
                                      std::to_string(dit.out_channels));
  if (dit.in_channels != z && dit.in_channels != 2 * z + tf)
    throw LoadError(source.model, "the transformer takes " + std::to_string(dit.in_channels) + " channels: neither the " +
                                      std::to_string(z) + " latent channels nor " + std::to_string(2 * z + tf) +
                                      " (latents + mask + given frames)");
  if (dit.is_i2v()) throw LoadError(source.model, "a genvis video transformer has no image cross-attention");
  if (m.text_encoder->text_model->config.hidden_size != dit.text_dim)
    throw LoadError(source.model, "the text encoder's width " + std::to_string(m.text_encoder->text_model->config.hidden_size) +
                                      " is not the transformer's text_dim " + std::to_string(dit.text_dim));
  return m;
}

at::Tensor video_frame_condition(const at::Tensor& z, const at::Tensor& keep, int64_t temporal_factor) {
  if (z.dim() != 5) throw UsageError("video_frame_condition: latents must be [B,C,F,h,w]");
  if (keep.dim() != 1 || keep.size(0) != z.size(0))
    throw UsageError("video_frame_condition: keep must hold one count per sample");
  const int64_t b = z.size(0), frames = z.size(2);
  // given[b, f] = f < keep[b]
  const at::Tensor index = at::arange(frames, at::TensorOptions().dtype(at::kLong).device(z.device())).view({1, frames});
  const at::Tensor given = (index < keep.to(z.device()).view({b, 1})).to(z.scalar_type()).view({b, 1, frames, 1, 1});
  const at::Tensor mask = given.expand({b, temporal_factor, frames, z.size(3), z.size(4)});
  return at::cat({mask, z * given}, 1);
}

at::Tensor genvis_video_prompt_embeds(const tokenizers::CLIPTokenizer& tokenizer, models::CLIPTextModel& text_encoder,
                                      const std::vector<std::string>& prompts) {
  std::vector<at::Tensor> rows;
  for (const auto& p : prompts) rows.push_back(at::tensor(tokenizer.encode_padded(p, tokenizer.eos_id()), at::kLong));
  const auto device = text_encoder->text_model->embeddings->token_embedding->weight.device();
  return models::sd_prompt_embeds(text_encoder, at::stack(rows).to(device), 0);
}

GenvisVideoPipeline::GenvisVideoPipeline(GenvisVideoModel model) : model_(std::move(model)) {
  const bool conditioned = model_.frame_conditioned();
  info_.class_name = kGenvisVideoClass;
  info_.family = "genvis-video";
  info_.name = model_.name;
  info_.quant = model_.quant;
  info_.native_width = model_.default_width, info_.native_height = model_.default_height;
  info_.native_frames = model_.default_frames;
  info_.native_fps = model_.fps;
  info_.size_multiple = model_.vae->config.spatial_factor() * model_.transformer->config.patch_size[1];
  info_.max_batch = 64;
  auto& s = info_.supports;
  s.text_to_image = true;
  s.image_to_image = conditioned;  // the init image is the first frame
  s.video = true;
  s.video_to_video = true;
  s.negative_prompt = s.guidance = s.steps = s.sampler = true;
  s.cache_threshold = true;
  info_.defaults = {.steps = 30, .guidance = 4.0, .sampler = "unipc", .schedule = "default", .strength = 0.75};
  info_.samplers = {"unipc", "flow_euler"};
  info_.extras = {"keep_frames", "flow_shift"};
  info_.resizes_init_image = true;
}

Result GenvisVideoPipeline::run(const Request& r, const Callbacks& callbacks) {
  auto& vae = model_.vae;
  const auto& vc = vae->config;
  const int64_t tf = vc.temporal_factor(), f = vc.spatial_factor();
  const bool conditioned = model_.frame_conditioned();
  const int64_t keep_frames = r.extras.value("keep_frames", int64_t{0});
  if (r.extras.contains("keep_frames") && !r.init_video.defined())
    throw UsageError("extras: keep_frames continues a video: give one with --init-video");
  const bool continuation = r.init_video.defined() && keep_frames > 0;
  const int64_t frames = r.num_frames.value_or(r.init_video.defined() && !continuation ? r.init_video.size(2)
                                                                                       : model_.default_frames);
  if (frames < 1 || (frames - 1) % tf != 0) {
    const int64_t below = 1 + tf * std::max<int64_t>((frames - 1) / tf, 0);
    throw UsageError("'num_frames': this model makes 1 + " + std::to_string(tf) + "k frames; " +
                     std::to_string(frames) + " is not one (use " + std::to_string(below) + " or " +
                     std::to_string(below + tf) + ")");
  }
  if (r.init_video.defined() && !continuation && r.init_video.size(2) != frames)
    throw UsageError("'num_frames': video-to-video keeps the init video's " + std::to_string(r.init_video.size(2)) +
                     " frames");
  if ((r.init_image.defined() || continuation) && !conditioned)
    throw UsageError(std::string(r.init_image.defined() ? "'init_image'" : "extras: keep_frames") +
                     ": this model was trained without frame conditioning (text-to-video only)");
  if (continuation) {
    if (keep_frames < 1 || (keep_frames - 1) % tf != 0)
      throw UsageError("extras: keep_frames must be 1 + " + std::to_string(tf) + "k (whole latent frames), got " +
                       std::to_string(keep_frames));
    if (keep_frames > r.init_video.size(2))
      throw UsageError("extras: keep_frames " + std::to_string(keep_frames) + " is more than the init video's " +
                       std::to_string(r.init_video.size(2)) + " frames");
    if (keep_frames >= frames)
      throw UsageError("extras: keep_frames " + std::to_string(keep_frames) + " leaves nothing to generate in " +
                       std::to_string(frames) + " frames");
  }
  const int64_t w = *r.width, h = *r.height, batch = r.batch;
  const int64_t latent_frames = vae->latent_frames(frames);
  const auto device = model_.transformer->patch_embedding->weight.device();
  const auto dtype = model_.transformer->patch_embedding->weight.scalar_type();
  torch::NoGradGuard no_grad;

  // 1. Prompts (conditional rows, then unconditional ones: one forward per step for both).
  const std::vector<std::string> prompts = prompts_of(r);
  const bool cfg = *r.guidance > 1.0;
  std::vector<std::string> all = prompts;
  if (cfg) all.insert(all.end(), prompts.size(), r.negative_prompt);
  const at::Tensor context = genvis_video_prompt_embeds(*model_.tokenizer, model_.text_encoder, all).to(dtype);

  // 2. Schedule.
  schedulers::NoiseScheduleConfig scheduler = model_.scheduler;
  if (r.extras.contains("flow_shift")) {
    const double shift = r.extras.at("flow_shift").get<double>();
    if (!(shift > 0)) throw UsageError("extras: flow_shift must be positive");
    scheduler.flow_shift = scheduler.shift = shift;
  }
  DiffusionPlan plan = plan_diffusion(scheduler, r.sampler, "default", *r.steps);

  // 3. Latents and the frame condition.
  const std::vector<int64_t> shape = {vc.z_dim, latent_frames, h / f, w / f};
  at::Tensor noise = r.init_noise.defined() ? r.init_noise.to(at::kFloat)
                                            : seeded_noise(r.seed, batch, shape, at::TensorOptions().dtype(at::kFloat));
  if (noise.sizes() != at::IntArrayRef({batch, shape[0], shape[1], shape[2], shape[3]}))
    throw UsageError("init_noise must have the latent shape [" + std::to_string(batch) + "," + std::to_string(shape[0]) +
                     "," + std::to_string(shape[1]) + "," + std::to_string(shape[2]) + "," + std::to_string(shape[3]) + "]");
  noise = noise.to(device);
  const at::Tensor lm = vae->latents_mean().to(device), ls = vae->latents_std().to(device);
  int64_t keep = 0;  // given latent frames
  at::Tensor given = at::zeros({batch, vc.z_dim, latent_frames, h / f, w / f}, noise.options());
  if (r.init_image.defined() || continuation) {
    at::Tensor known;  // [1,3,k,H,W] in [-1,1]
    if (r.init_image.defined()) {
      at::Tensor image = r.init_image.to(at::kFloat);
      if (image.size(2) != h || image.size(3) != w)
        image = at::_upsample_bicubic2d_aa(image, {h, w}, false).clamp(-1, 1);
      known = image.unsqueeze(2);
    } else {
      known = r.init_video.to(at::kFloat).narrow(2, 0, keep_frames);
      if (known.size(3) != h || known.size(4) != w)
        throw UsageError("init_video: frames are " + std::to_string(known.size(4)) + "x" + std::to_string(known.size(3)) +
                         ", the request is " + std::to_string(w) + "x" + std::to_string(h));
    }
    const at::Tensor z = (vae->encode(known.to(device)).mean - lm) / ls;  // [1,C,keep,h,w]
    keep = z.size(2);
    given.narrow(2, 0, keep).copy_(z.expand({batch, -1, -1, -1, -1}));
  }
  const at::Tensor condition =
      conditioned ? video_frame_condition(given, at::full({batch}, keep, at::kLong), tf) : at::Tensor();
  if (r.init_video.defined() && !continuation) {
    const at::Tensor x0 = wan_video_latents(vae, r.init_video, r.posterior_noise, r.seed, device);
    plan.skip_for_strength(*r.strength);
    const double sigma = plan.sigmas.front();
    noise = x0.expand_as(noise) * static_cast<float>(1 - sigma) + noise * static_cast<float>(sigma);
  }

  // 4. Denoise: one transformer call per step for the conditional and unconditional rows.
  auto dit = model_.transformer;
  const double guidance = *r.guidance;
  models::WanBlockCache block_cache{r.cache_threshold};  // one batched call per step: one cache
  const schedulers::Network network = [&](const at::Tensor& x, double t) {
    at::Tensor input = conditioned ? at::cat({x, condition.to(x.scalar_type())}, 1) : x;
    if (cfg) input = at::cat({input, input});
    const at::Tensor timestep = at::full({input.size(0)}, t, at::kFloat).to(device);
    const at::Tensor out =
        dit->forward(input.to(dtype), timestep, context, {}, r.cache_threshold > 0 ? &block_cache : nullptr).to(at::kFloat);
    if (!cfg) return out;
    const at::Tensor c = out.narrow(0, 0, batch), u = out.narrow(0, batch, batch);
    return u + (c - u) * guidance;
  };
  DiffusionLoopOptions options;
  if (keep > 0)
    options.wrap_denoiser = [&](schedulers::Denoiser inner) -> schedulers::Denoiser {
      return [&, inner](const at::Tensor& x, double sigma) {
        at::Tensor x0 = inner(x, sigma).clone();
        x0.narrow(2, 0, keep).copy_(given.narrow(2, 0, keep));
        return x0;
      };
    };
  const schedulers::NoiseSource no_noise = [](at::IntArrayRef) -> at::Tensor {
    throw UsageError("the flow samplers draw no noise while sampling");
  };
  at::Tensor z = run_diffusion(plan, scheduler, network, noise * static_cast<float>(plan.init_noise_sigma()), no_noise,
                               callbacks, options);
  if (keep > 0) z.narrow(2, 0, keep).copy_(given.narrow(2, 0, keep));

  // 5. Decode.
  const at::Tensor decoded = vae->decode(z * ls + lm);
  Result out;
  out.latents = z.cpu();
  out.samples = (decoded.to(at::kFloat) / 2 + 0.5).clamp(0, 1).cpu();
  for (int64_t i = 0; i < batch; ++i) {
    io::GenerationParameters p;
    p.prompt = prompts[static_cast<size_t>(i)], p.negative_prompt = r.negative_prompt;
    p.steps = r.steps, p.cfg_scale = r.guidance, p.seed = r.seed + static_cast<uint64_t>(i);
    p.sampler = schedulers::sampler_info(r.sampler).display;
    p.width = static_cast<int>(w), p.height = static_cast<int>(h);
    p.model = model_.name;
    p.extra.push_back({"Frames", std::to_string(frames)});
    if (continuation) p.extra.push_back({"Kept frames", std::to_string(keep_frames)});
    if (r.cache_threshold > 0) p.extra.push_back({"First-block cache threshold", std::to_string(r.cache_threshold)});
    if (r.init_video.defined() && !continuation) p.extra.push_back({"Denoising strength", std::to_string(*r.strength)});
    out.parameters.push_back(p);
  }
  return out;
}

std::unique_ptr<Pipeline> load_genvis_video_pipeline(const ModelSource& source) {
  return std::make_unique<GenvisVideoPipeline>(load_genvis_video_model(source));
}

}  // namespace genvis::pipelines
