#include "pipelines/wan/wan_pipeline.h"

#include "pipelines/common/quantize.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "io/weights.h"
#include "models/wan/wan_original_keys.h"
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

// The files of the Wan release's folder, beside its config.json.
constexpr const char* kReleaseTextEncoder = "models_t5_umt5-xxl-enc-bf16.pth";
constexpr const char* kReleaseVAE = "Wan2.1_VAE.pth";
constexpr const char* kReleaseImageEncoder = "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth";
constexpr const char* kReleaseTokenizer = "google/umt5-xxl";

// Wan's generate.py: sample_shift 5, or 3 for image-to-video at 832*480 (or smaller).
constexpr double kReleaseShift = 5.0, kReleaseShiftI2V480p = 3.0;
constexpr int64_t kArea480p = 832 * 480;

enum class Layout { Diffusers, Release, File };

// --model-config for Wan: {"transformer": {...}, "vae": {...}, "text_encoder": {...},
// "image_encoder": {...}}, as JSON text or a file.
nlohmann::json component_overrides(const std::string& spec) {
  nlohmann::json j = nlohmann::json::object();
  if (spec.empty()) return j;
  const size_t first = spec.find_first_not_of(" \t\n");
  if (first != std::string::npos && spec[first] == '{') {
    j = nlohmann::json::parse(spec, nullptr, false);
    if (j.is_discarded()) throw UsageError("--model-config is not valid JSON: " + spec);
  } else {
    j = config::read_file(spec);
  }
  if (!j.is_object()) throw UsageError("--model-config must be a JSON object of components");
  for (const auto& [key, value] : j.items()) {
    if (key != "transformer" && key != "vae" && key != "text_encoder" && key != "image_encoder")
      throw UsageError("--model-config: unknown Wan component '" + key +
                       "' (transformer, vae, text_encoder, image_encoder)");
    if (!value.is_object()) throw UsageError("--model-config: '" + key + "' must be a JSON object of config keys");
  }
  return j;
}

// A component beside the transformer: its option, its place in a diffusers / the release's
// folder, and what to give.
struct Component {
  const char* option;
  const char* diffusers_name;
  const char* release_name;
  const char* what;
};
constexpr Component kTokenizer{
    "--tokenizer", "tokenizer", kReleaseTokenizer,
    "the google/umt5-xxl SentencePiece tokenizer folder (spiece.model), e.g. google/umt5-xxl/ of the Wan 2.1 "
    "release (Wan-AI/Wan2.1-T2V-1.3B) or tokenizer/ of Wan-AI/Wan2.1-T2V-1.3B-Diffusers; ComfyUI ships none"};
constexpr Component kTextEncoder{"--text-encoder", "text_encoder", kReleaseTextEncoder,
                                 "the UMT5 text encoder (a transformers folder, the release's "
                                 "models_t5_umt5-xxl-enc-bf16.pth or ComfyUI's umt5_xxl_fp16.safetensors)"};
constexpr Component kVAE{"--vae", "vae", kReleaseVAE,
                         "the Wan VAE (a diffusers folder, the release's Wan2.1_VAE.pth or ComfyUI's "
                         "wan_2.1_vae.safetensors)"};
constexpr Component kImageEncoder{"--image-encoder", "image_encoder", kReleaseImageEncoder,
                                  "the CLIP image encoder (a transformers folder, the release's "
                                  "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth or ComfyUI's "
                                  "clip_vision_h.safetensors)"};

// The given path, else the folder's own (LoadError when it is not there).
std::string component(const std::string& given, Layout layout, const fs::path& root, const Component& c) {
  if (!given.empty()) {
    if (!fs::exists(given)) throw LoadError(given, std::string("no such file or folder (") + c.option + ", " + c.what + ")");
    return given;
  }
  const fs::path p = root / (layout == Layout::Diffusers ? c.diffusers_name : c.release_name);
  if (!fs::exists(p))
    throw LoadError(root.string(), "no " + p.filename().string() + (layout == Layout::Diffusers ? "/ folder" : "") +
                                       " (" + c.what + "; or give " + c.option + ")");
  return p.string();
}

// A transformer file alone needs every other component given: all the missing ones in one
// UsageError (image-to-video files, told by their image embedding, also need the image encoder).
void check_single_file_components(const ModelSource& source) {
  std::vector<std::pair<const std::string*, const Component*>> needed = {
      {&source.vae, &kVAE}, {&source.text_encoder, &kTextEncoder}, {&source.vocab, &kTokenizer}};
  const auto reader = io::open_weights(source.model);
  const auto prefix = models::wan_original_prefix(reader->tensors());
  if (prefix && reader->contains(*prefix + "img_emb.proj.1.weight")) needed.push_back({&source.image_encoder, &kImageEncoder});
  std::string missing;
  for (const auto& [given, c] : needed)
    if (given->empty()) missing += std::string(missing.empty() ? "" : "; ") + c->option + " (" + c->what + ")";
  if (!missing.empty()) throw UsageError("a Wan transformer file needs " + missing);
}

}  // namespace

void check_wan_frames(int64_t frames) {
  if (frames >= 1 && (frames - 1) % 4 == 0) return;
  const int64_t below = frames < 1 ? 1 : 1 + 4 * ((frames - 1) / 4), above = below + 4;
  throw UsageError("'num_frames' must be 4k + 1 (the VAE packs 4 frames per latent frame after the first): got " +
                   std::to_string(frames) + ", nearest " + std::to_string(below) + " or " + std::to_string(above));
}

WanModel load_wan_model(const ModelSource& source) {
  if (source.model.empty()) throw UsageError("a Wan model needs --model (a folder, or a transformer file)");
  if (!fs::exists(source.model)) throw LoadError(source.model, "no such model file or folder");
  for (const auto* s : {&source.unet, &source.text_encoder_2})
    if (!s->empty()) throw UsageError("Wan models take no --unet or --text-encoder-2");
  const fs::path root = source.model;
  const Layout layout = !fs::is_directory(root)                          ? Layout::File
                        : fs::exists(root / "model_index.json")           ? Layout::Diffusers
                        : fs::exists(root / "config.json")                ? Layout::Release
                                                                          : Layout::Diffusers;
  const nlohmann::json overrides = component_overrides(source.model_config);
  const auto part = [&](const char* name) { return overrides.value(name, nlohmann::json::object()); };
  WanModel m;
  m.name = (layout == Layout::File ? root.stem() : root.filename()).string();

  // The transformer first: it says whether the model is image-to-video.
  if (layout == Layout::File) check_single_file_components(source);
  const std::string transformer =
      layout == Layout::Diffusers
          ? component("", layout, root, {"--model", "transformer", "", "the Wan transformer"})
          : root.string();
  m.transformer = models::load_wan_transformer(transformer, source.dtype, part("transformer"));
  m.transformer->to(source.device);
  if (layout == Layout::Release) m.max_sequence_length = models::WanModelConfig::from_file((root / "config.json").string()).text_len;
  m.tokenizer = tokenizers::T5Tokenizer::load(component(source.vocab, layout, root, kTokenizer));
  m.text_encoder = models::load_umt5_encoder(component(source.text_encoder, layout, root, kTextEncoder),
                                             {.dtype = source.dtype, .device = source.device}, part("text_encoder"));
  m.quant = quant::apply_video(source, *m.transformer, *m.text_encoder);
  m.vae = models::load_autoencoder_kl_wan(component(source.vae, layout, root, kVAE), at::kFloat, part("vae"));
  m.vae->to(source.device);
  if (m.transformer->config.is_i2v()) {
    m.image_encoder = models::load_clip_vision_model(component(source.image_encoder, layout, root, kImageEncoder),
                                                     source.dtype, part("image_encoder"));
    m.image_encoder->to(source.device);
  } else if (!source.image_encoder.empty()) {
    throw UsageError("--image-encoder: " + source.model + " is a text-to-video model (no image input)");
  }
  if (m.text_encoder->config.d_model != m.transformer->config.text_dim)
    throw LoadError(source.model, "the text encoder's width " + std::to_string(m.text_encoder->config.d_model) +
                                      " is not the transformer's text dim " +
                                      std::to_string(m.transformer->config.text_dim));
  if (m.vae->config.z_dim != m.transformer->config.out_channels)
    throw LoadError(source.model, "the VAE has " + std::to_string(m.vae->config.z_dim) +
                                      " latent channels; the transformer predicts " +
                                      std::to_string(m.transformer->config.out_channels));

  const std::string scheduler = (root / "scheduler" / "scheduler_config.json").string();
  if (!source.scheduler_config.empty()) {
    m.scheduler = schedulers::NoiseScheduleConfig::from_json(config::read_file(source.scheduler_config));
  } else if (layout == Layout::Diffusers && file_exists(scheduler)) {
    m.scheduler = schedulers::NoiseScheduleConfig::from_json(config::read_file(scheduler));
  } else {  // Wan 2.1's own, as diffusers' Wan folders write it: UniPC (bh2, order 2) on flow
            // sigmas; the shift follows the request's size (run())
    m.scheduler = schedulers::NoiseScheduleConfig::from_json({{"num_train_timesteps", 1000},
                                                              {"prediction_type", "flow_prediction"},
                                                              {"use_flow_sigmas", true},
                                                              {"flow_shift", kReleaseShift},
                                                              {"solver_order", 2},
                                                              {"solver_type", "bh2"},
                                                              {"lower_order_final", true},
                                                              {"final_sigmas_type", "zero"},
                                                              {"timestep_spacing", "linspace"},
                                                              {"predict_x0", true}});
    m.release_schedule = true;
  }
  return m;
}

WanVideoPipeline::WanVideoPipeline(WanModel model, std::string class_name) : model_(std::move(model)) {
  const bool i2v = model_.transformer->config.is_i2v();
  info_.class_name = std::move(class_name);
  info_.family = "wan2.1";
  info_.name = model_.name;
  info_.quant = model_.quant;
  info_.native_width = 832, info_.native_height = 480;
  info_.native_frames = 81;
  info_.native_fps = 16;  // Wan 2.1's generate.py writes 16 fps
  info_.size_multiple = 8 * model_.transformer->config.patch_size[1];
  info_.max_batch = 1;
  auto& s = info_.supports;
  s.text_to_image = !i2v;  // a text-to-video model starts from text alone
  s.image_to_image = i2v;  // the init image is the first frame
  s.video = true;
  s.video_to_video = !i2v;
  s.negative_prompt = s.guidance = s.steps = s.sampler = true;
  s.cache_threshold = true;
  // Wan's generate.py samples image-to-video in 40 steps; diffusers' pipelines default to 50.
  const int64_t steps = model_.release_schedule && i2v ? 40 : 50;
  info_.defaults = {.steps = steps, .guidance = 5.0, .sampler = "unipc", .schedule = "default", .strength = 0.75};
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
  const int64_t frames = r.init_video.defined() ? r.init_video.size(2) : r.num_frames.value_or(info_.native_frames);
  check_wan_frames(frames);
  if (dit.is_i2v() && !r.init_image.defined())
    throw UsageError("'init_image': this image-to-video model needs the first frame");
  if (r.batch != 1) throw UsageError("'batch': Wan generates one video per request");
  const int64_t max_len = r.extras.value("max_sequence_length", model_.max_sequence_length);
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
  } else if (model_.release_schedule) {
    in.scheduler.flow_shift = in.scheduler.shift = dit.is_i2v() && w * h <= kArea480p ? kReleaseShiftI2V480p : kReleaseShift;
  }
  in.sampler = r.sampler;
  in.steps = *r.steps;
  in.guidance = *r.guidance;
  in.cache_threshold = r.cache_threshold;
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
    const at::Tensor x0 = wan_video_latents(model_.vae, r.init_video, r.posterior_noise, r.seed, device);
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
  if (r.cache_threshold > 0) p.extra.push_back({"First-block cache threshold", std::to_string(r.cache_threshold)});
  out.parameters.push_back(p);
  return out;
}

std::unique_ptr<Pipeline> load_wan_pipeline(const ModelSource& source) {
  WanModel model = load_wan_model(source);
  const std::string cls = model.transformer->config.is_i2v() ? "WanImageToVideoPipeline" : "WanPipeline";
  return std::make_unique<WanVideoPipeline>(std::move(model), cls);
}

}  // namespace genvis::pipelines
