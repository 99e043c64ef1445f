#include "train/video_recipe.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "data/registry.h"
#include "eval/video_metrics.h"
#include "io/grid.h"
#include "io/image_tensor.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "models/clip_text/clip_text_loader.h"
#include "models/clip_text/clip_text_model.h"
#include "models/wan/wan_transformer.h"
#include "nn/state_dict.h"
#include "pipelines/genvis_video/genvis_video_pipeline.h"
#include "schedulers/schedule.h"
#include "tokenizers/clip_tokenizer.h"
#include "train/foreground_weights.h"
#include "train/sample_grid.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using recipe::check_keys;
using recipe::derive;
using recipe::read;

constexpr const char* kDiffusersVersion = "0.33.0";

struct DerivedConfigs {
  json vae, transformer, text_encoder, scheduler;
};

DerivedConfigs derive_configs(const VideoRecipeConfig& c, const tokenizers::CLIPTokenizer* tokenizer,
                              std::vector<std::string>& problems) {
  DerivedConfigs d{c.vae_config, c.transformer_config, {}, {}};
  derive(d.vae, "vae.config", "in_channels", 3, problems);
  derive(d.vae, "vae.config", "out_channels", 3, problems);
  for (const char* key : {"latents_mean", "latents_std"})
    if (c.vae_config.contains(key)) problems.push_back(std::string("vae.config.") + key + " is measured by the recipe");
  // Placeholders until the latent cache measures them (the config's own default has Wan's 16).
  int64_t z_dim = 16;
  if (c.vae_config.contains("z_dim") && c.vae_config["z_dim"].is_number_integer()) z_dim = c.vae_config["z_dim"].get<int64_t>();
  if (z_dim >= 1 && z_dim <= 4096) {
    d.vae["latents_mean"] = std::vector<double>(static_cast<size_t>(z_dim), 0.0);
    d.vae["latents_std"] = std::vector<double>(static_cast<size_t>(z_dim), 1.0);
  }
  d.vae["_class_name"] = "AutoencoderKLWan";
  d.vae["_diffusers_version"] = kDiffusersVersion;
  d.text_encoder = recipe::derive_text_encoder_config(c.text_encoder_config, "text_encoder.config", tokenizer,
                                                      c.vocab_size, problems);

  int64_t z = 16, tf = 4, hidden = 512;
  try {
    const auto vae = models::AutoencoderKLWanConfig::from_json(d.vae, "vae.config");
    z = vae.z_dim, tf = vae.temporal_factor();
    hidden = d.text_encoder.value("hidden_size", int64_t{512});
  } catch (const Error&) {
    // Reported by the model configs' own parsers.
  } catch (const json::exception&) {
  }
  for (const char* key : {"image_dim", "added_kv_proj_dim"})
    if (c.transformer_config.contains(key))
      problems.push_back(std::string("transformer.config.") + key + ": the video model has no image cross-attention");
  derive(d.transformer, "transformer.config", "in_channels", c.frame_condition > 0 ? 2 * z + tf : z, problems);
  derive(d.transformer, "transformer.config", "out_channels", z, problems);
  derive(d.transformer, "transformer.config", "text_dim", hidden, problems);
  d.transformer["_class_name"] = "WanTransformer3DModel";
  d.transformer["_diffusers_version"] = kDiffusersVersion;

  // UniPC on flow sigmas, as Wan's diffusers folders write it, with the recipe's shift.
  d.scheduler = {{"_class_name", "UniPCMultistepScheduler"},
                 {"_diffusers_version", kDiffusersVersion},
                 {"num_train_timesteps", 1000},
                 {"prediction_type", "flow_prediction"},
                 {"use_flow_sigmas", true},
                 {"flow_shift", c.flow_shift},
                 {"solver_order", 2},
                 {"solver_type", "bh2"},
                 {"lower_order_final", true},
                 {"final_sigmas_type", "zero"},
                 {"timestep_spacing", "linspace"},
                 {"predict_x0", true}};
  return d;
}

data::DatasetSpec video_spec(const VideoRecipeConfig& c) {
  data::DatasetSpec spec = recipe::dataset_spec(c.dataset, data::parse_split(c.dataset.split), c.seed);
  spec.size = static_cast<size_t>(c.dataset.size);
  return spec;
}

data::VideoLoader make_loader(const VideoRecipeConfig& c, int64_t batch_size, uint64_t seed) {
  return data::VideoLoader(video_spec(c), {.batch_size = batch_size, .buckets = c.buckets, .seed = seed});
}

std::string bucket_name(const data::VideoBucket& b) {
  return std::to_string(b.frames) + "x" + std::to_string(b.height) + "x" + std::to_string(b.width);
}

// ---- stage 2: the VAE and the latent cache ------------------------------------------------

// Frame strips of clips [B,3,T,H,W] in [-1,1]: one image per clip, frames left to right.
std::vector<io::Image> frame_strips(const at::Tensor& videos) {
  std::vector<io::Image> strips;
  for (int64_t i = 0; i < videos.size(0); ++i) {
    std::vector<io::Image> frames;
    for (int64_t t = 0; t < videos.size(2); ++t) frames.push_back(io::tensor_to_image(videos[i].select(1, t)));
    strips.push_back(io::frame_strip(frames));
  }
  return strips;
}

// Which latent positions encode object pixels (foreground_mask on each frame): frame 0
// alone is latent frame 0, then every `tf` frames one latent frame, every sf x sf pixels one
// position; foreground where any of its pixels is. videos [B,3,T,H,W] -> [B,1,T',H/sf,W/sf] u8.
at::Tensor latent_foreground(const at::Tensor& videos, int64_t tf, int64_t sf) {
  const at::Tensor px = foreground_mask(videos);  // [B,1,T,H,W]
  at::Tensor t = px.narrow(2, 0, 1);
  if (px.size(2) > 1) {
    const at::Tensor rest = px.narrow(2, 1, px.size(2) - 1);
    const auto n = rest.sizes();
    t = at::cat({t, rest.reshape({n[0], 1, n[2] / tf, tf, n[3], n[4]}).amax(3)}, 2);
  }
  return at::max_pool3d(t, {1, sf, sf}, {1, sf, sf}).to(at::kByte);
}

void check_reconstruction(models::AutoencoderKLWanImpl& vae, const data::VideoLoader& loader, const fs::path& out) {
  torch::NoGradGuard no_grad;
  std::vector<size_t> first(std::min<size_t>(32, loader.dataset_size()));
  for (size_t i = 0; i < first.size(); ++i) first[i] = i;
  nlohmann::ordered_json report = json::object();
  std::vector<io::Image> strips;
  for (size_t b = 0; b < loader.options().buckets.size(); ++b) {
    const data::VideoBatch clips = loader.clips(b, first);
    const at::Tensor decoded = vae.decode(vae.encode(clips.videos).mean);
    const double mse = (decoded - clips.videos).pow(2).mean().item<double>();
    auto& row = report[bucket_name(loader.options().buckets[b])];
    row = {{"clips", first.size()}, {"mse", mse}, {"psnr_db", 10 * std::log10(4.0 / std::max(mse, 1e-12))}};
    // The ceiling any model on these latents has under the clip scorer: the reconstructions scored.
    if (loader.dataset_name() == "shapes-video" && clips.videos.size(2) > 1) {
      const auto to01 = [](const at::Tensor& v) { return ((v + 1) / 2).clamp(0, 1); };
      const auto real = eval::shapes_video_metrics(to01(clips.videos), clips.meta);
      const auto rec = eval::shapes_video_metrics(to01(decoded), clips.meta);
      for (const char* k : {"shapes_video_colour_shape_accuracy", "shapes_video_motion_accuracy"}) {
        row[std::string("real_") + k] = real[k];
        row[std::string("reconstructed_") + k] = rec[k];
      }
    }
    if (b == 0)
      for (int64_t i = 0; i < std::min<int64_t>(4, decoded.size(0)); ++i)
        for (const at::Tensor& v : {clips.videos, decoded}) strips.push_back(frame_strips(v.narrow(0, i, 1)).front());
  }
  fs::create_directories(out / "vae");
  write_file_atomic((out / "vae" / "reconstruction.json").string(), report.dump(2) + "\n");
  io::write_png((out / "vae" / "reconstruction.png").string(), io::make_grid(strips, 1));
  const double psnr = report[bucket_name(loader.options().buckets[0])]["psnr_db"].get<double>();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", psnr);
  std::string scored;
  if (const auto& r0 = report[bucket_name(loader.options().buckets[0])]; r0.contains("reconstructed_shapes_video_colour_shape_accuracy"))
    scored = ", colour+shape " + std::to_string(r0["reconstructed_shapes_video_colour_shape_accuracy"].get<double>()) +
             " (real " + std::to_string(r0["real_shapes_video_colour_shape_accuracy"].get<double>()) + "), motion " +
             std::to_string(r0["reconstructed_shapes_video_motion_accuracy"].get<double>()) + " (real " +
             std::to_string(r0["real_shapes_video_motion_accuracy"].get<double>()) + ")";
  log_info("vae reconstruction of " + std::to_string(first.size()) + " clips (" +
           bucket_name(loader.options().buckets[0]) + "): PSNR " + buf + " dB" + scored +
           "; originals above reconstructions in " + (out / "vae" / "reconstruction.png").string());
}

// Encodes every clip at every bucket's size; writes latents/, latents.json and the VAE with its
// latent statistics into model/vae.
void cache_latents(models::AutoencoderKLWanImpl& vae, const VideoRecipeConfig& c, const DerivedConfigs& d,
                   const fs::path& out, bool export_vae) {
  vae.eval();
  torch::NoGradGuard no_grad;
  const data::VideoLoader loader = make_loader(c, 1, c.seed);
  const size_t n = loader.dataset_size();
  std::vector<at::Tensor> means, logvars;
  std::vector<std::string> captions;
  std::vector<json> meta;
  const int64_t tf = vae.config.temporal_factor(), sf = vae.config.spatial_factor();
  for (size_t b = 0; b < c.buckets.size(); ++b) {
    std::vector<at::Tensor> m, lv, fg;
    for (size_t start = 0; start < n; start += 32) {
      std::vector<size_t> idx;
      for (size_t i = start; i < std::min(n, start + 32); ++i) idx.push_back(i);
      data::VideoBatch clips = loader.clips(b, idx);
      const models::LatentDistribution q =
          vae.encode(clips.videos, models::WanVAEChunking::whole_clip(clips.videos.size(2)));
      m.push_back(q.mean);
      lv.push_back(q.logvar);
      fg.push_back(latent_foreground(clips.videos, tf, sf));
      if (b == 0)
        for (size_t k = 0; k < idx.size(); ++k) {
          captions.push_back(clips.captions[k]);
          meta.push_back(clips.meta[k]);
        }
    }
    means.push_back(at::cat(m));
    logvars.push_back(at::cat(lv));
    fs::create_directories(out / "latents");
    io::save_safetensors((out / "latents" / ("bucket-" + std::to_string(b) + ".safetensors")).string(),
                         {{"mean", means.back()}, {"logvar", logvars.back()}, {"foreground", at::cat(fg)}},
                         {{"format", "pt"}});
    log_info("vae: latents of " + std::to_string(n) + " clips at " + bucket_name(c.buckets[b]) + ": " +
             c10::str(means.back().sizes()));
  }
  // Per channel over every bucket: mean of the posterior means, std of posterior samples
  // (sqrt(var(mean) + E[exp(logvar)])).
  std::vector<at::Tensor> flat_m, flat_v;
  for (size_t b = 0; b < means.size(); ++b) {
    flat_m.push_back(means[b].transpose(0, 1).reshape({means[b].size(1), -1}));
    flat_v.push_back(logvars[b].exp().transpose(0, 1).reshape({logvars[b].size(1), -1}));
  }
  const at::Tensor all_m = at::cat(flat_m, 1).to(at::kDouble), all_v = at::cat(flat_v, 1).to(at::kDouble);
  const at::Tensor mu = all_m.mean(1), sd = (all_m.var(1, /*unbiased=*/false) + all_v.mean(1)).sqrt().clamp_min(1e-6);
  const auto to_vector = [](const at::Tensor& t) {
    std::vector<double> v(static_cast<size_t>(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t[i].item<double>();
    return v;
  };
  json vae_config = d.vae;
  vae_config["latents_mean"] = to_vector(mu);
  vae_config["latents_std"] = to_vector(sd);
  const fs::path vae_dir = out / "model" / "vae";
  if (export_vae) {
    fs::create_directories(vae_dir);
    io::save_safetensors((vae_dir / "diffusion_pytorch_model.safetensors").string(), nn::state_dict(vae),
                         {{"format", "pt"}});
  }
  recipe::write_json(vae_dir / "config.json", vae_config);
  json buckets = json::array();
  for (const auto& b : c.buckets) buckets.push_back({{"frames", b.frames}, {"height", b.height}, {"width", b.width}});
  recipe::write_json(out / "latents.json", {{"captions", captions}, {"meta", meta}, {"buckets", buckets}});
  check_reconstruction(vae, loader, out);
}

// Stage 2 with vae.from: the given folder's VAE, checked against the recipe's VAE config (every
// key the recipe derives, latents statistics aside: they are measured again), copied into
// model/vae. Errors name the folder and the first differing key.
void adopt_vae(const VideoRecipeConfig& c, const DerivedConfigs& d, const fs::path& model_vae) {
  const fs::path from = c.vae_from;
  const fs::path weights = from / "diffusion_pytorch_model.safetensors";
  for (const fs::path& f : {from / "config.json", weights})
    if (!fs::is_regular_file(f)) throw UsageError("vae.from: " + f.string() + " not found");
  const json theirs = recipe::read_config_file((from / "config.json").string());
  if (!theirs.is_object()) throw UsageError("vae.from: " + (from / "config.json").string() + " is not a JSON object");
  for (const auto& [key, value] : d.vae.items()) {
    if (key == "latents_mean" || key == "latents_std" || key == "_diffusers_version") continue;
    if (!theirs.contains(key))
      throw UsageError("vae.from: " + (from / "config.json").string() + " has no " + key + " (vae.config: " + value.dump() + ")");
    if (theirs[key] != value)
      throw UsageError("vae.from: " + (from / "config.json").string() + " has " + key + " " + theirs[key].dump() +
                       ", vae.config " + value.dump());
  }
  models::load_autoencoder_kl_wan(from.string());  // the weights load into this config (LoadError if not)
  fs::create_directories(model_vae);
  fs::copy_file(weights, model_vae / weights.filename(), fs::copy_options::overwrite_existing);
  recipe::write_json(model_vae / "config.json", d.vae);  // the marker the stage check reads: last
  log_info("vae: copied from " + from.string() + " (vae.from)");
}

// Stage 2. Returns false when interrupted.
bool train_vae(const VideoRecipeConfig& c, const DerivedConfigs& d, const fs::path& out, const VideoRecipeOptions& o) {
  torch::manual_seed(c.seed);
  models::AutoencoderKLWan vae(models::AutoencoderKLWanConfig::from_json(d.vae, "vae.config"));
  if (c.vae_init_logvar) {
    // The moments' second half is the log-variance: quant_conv's output.
    torch::NoGradGuard no_grad;
    const int64_t z = vae->config.z_dim;
    vae->quant_conv->bias.narrow(0, z, z).fill_(*c.vae_init_logvar);
  }
  Trainer trainer(*vae, c.vae_train, (out / "vae").string());
  trainer.extra_state = {{"stage", "vae"}, {"config", d.vae}, {"foreground_weight", c.vae_foreground_weight}};
  trainer.resume_if_allowed(o.resume, "stage vae");
  const data::VideoLoader loader = make_loader(c, c.vae_batch_size, c.seed);
  const int64_t accum = c.vae_train.grad_accum;
  const auto outcome = trainer.run([&](int64_t step, int64_t micro, Rng& rng) {
    const at::Tensor x = loader.batch(step * accum + micro).videos;
    const auto chunks = models::WanVAEChunking::whole_clip(x.size(2));
    const models::LatentDistribution q =
        models::LatentDistribution::from_moments(vae->encode_moments_with_grad(x, chunks));
    const at::Tensor z = q.sample(rng.randn(q.mean.sizes()));
    const at::Tensor kl = q.kl_to_standard_normal();
    return foreground_weighted_mse(vae->decode_with_grad(z, chunks), x, c.vae_foreground_weight) + c.kl_weight * kl;
  });
  if (outcome == Trainer::Outcome::Interrupted) return false;
  trainer.apply_ema();
  cache_latents(*vae, c, d, out, /*export_vae=*/true);
  return true;
}

// ---- stage 3: the transformer and text encoder ----------------------------------------------

struct VideoModelsImpl : torch::nn::Module {
  VideoModelsImpl(models::WanTransformer3DModel t, models::CLIPTextModel te) {
    transformer = register_module("transformer", std::move(t));
    text_encoder = register_module("text_encoder", std::move(te));
  }
  models::WanTransformer3DModel transformer{nullptr};
  models::CLIPTextModel text_encoder{nullptr};
};
TORCH_MODULE(VideoModels);

// adaLN-zero (Peebles & Xie 2023): every block's modulation (scale_shift_table + time_proj) and the
// output projection start at zero, so each block starts as the identity and the output as 0.
void zero_init_modulation(models::WanTransformer3DModelImpl& dit) {
  torch::NoGradGuard no_grad;
  dit.condition_embedder->time_proj->weight.zero_();
  dit.condition_embedder->time_proj->bias.zero_();
  dit.scale_shift_table.zero_();
  for (const auto& block : *dit.blocks) block->as<models::WanTransformerBlock>()->scale_shift_table.zero_();
  dit.proj_out->weight.zero_();
  dit.proj_out->bias.zero_();
}

struct DitData {
  std::vector<at::Tensor> mean, logvar;  // per bucket
  std::vector<at::Tensor> foreground;     // per bucket, [N,1,F',h,w] float; empty without dit.foreground_weight
  std::vector<std::string> captions;
  std::vector<json> meta;
  at::Tensor ids, empty_ids;  // [N, 77], [77]
  at::Tensor latents_mean, latents_std;
  int64_t temporal_factor = 4;
};

DitData load_dit_data(const VideoRecipeConfig& c, const tokenizers::CLIPTokenizer& tokenizer, const fs::path& out) {
  DitData data;
  const json info = json::parse(read_text_file((out / "latents.json").string(), size_t{1} << 30));
  data.captions = info.at("captions").get<std::vector<std::string>>();
  data.meta = info.at("meta").get<std::vector<json>>();
  json want = json::array();
  for (const auto& b : c.buckets) want.push_back({{"frames", b.frames}, {"height", b.height}, {"width", b.width}});
  if (info.at("buckets") != want)
    throw UsageError((out / "latents.json").string() + " was cached for buckets " + info.at("buckets").dump() +
                     ", the config has " + want.dump() + "; remove latents/ and latents.json to re-encode");
  for (size_t b = 0; b < c.buckets.size(); ++b) {
    const auto reader = io::open_weights((out / "latents" / ("bucket-" + std::to_string(b) + ".safetensors")).string());
    data.mean.push_back(reader->load("mean", at::kFloat));
    data.logvar.push_back(reader->load("logvar", at::kFloat));
    if (c.dit_foreground_weight > 0) {
      if (!reader->contains("foreground"))
        throw UsageError((out / "latents").string() + " was cached without object masks, which dit.foreground_weight "
                         "needs; remove latents/ and latents.json to re-encode");
      data.foreground.push_back(reader->load("foreground").to(at::kFloat));
    }
    if (data.mean.back().size(0) != static_cast<int64_t>(data.captions.size()))
      throw LoadError((out / "latents.json").string(), "caption count differs from the latents'");
  }
  std::vector<at::Tensor> rows;
  for (const auto& caption : data.captions)
    rows.push_back(at::tensor(tokenizer.encode_padded(caption, tokenizer.eos_id()), at::kLong));
  data.ids = at::stack(rows);
  data.empty_ids = at::tensor(tokenizer.encode_padded("", tokenizer.eos_id()), at::kLong);
  const auto vae = models::AutoencoderKLWanConfig::from_file((out / "model" / "vae" / "config.json").string());
  data.temporal_factor = vae.temporal_factor();
  const auto vec = [](const std::vector<double>& v) {
    return at::tensor(v, at::kDouble).to(at::kFloat).view({1, static_cast<int64_t>(v.size()), 1, 1, 1});
  };
  data.latents_mean = vec(vae.latents_mean);
  data.latents_std = vec(vae.latents_std);
  return data;
}

// The flow-matching loss of one batch: `bucket` and `index` pick the cached latents, `rng` draws
// the posterior sample, the noise, sigma, the caption dropout and the given frames.
at::Tensor dit_loss(const VideoRecipeConfig& c, const DitData& data, VideoModels& both, size_t bucket,
                    const std::vector<size_t>& index, Rng& rng, bool weight_objects = true) {
  const auto B = static_cast<int64_t>(index.size());
  std::vector<int64_t> idx64(index.begin(), index.end());
  const at::Tensor idx = at::tensor(idx64, at::kLong);
  const at::Tensor m = data.mean[bucket].index_select(0, idx), lv = data.logvar[bucket].index_select(0, idx);
  const at::Tensor x0 = (m + (0.5 * lv).exp() * rng.randn(m.sizes()) - data.latents_mean) / data.latents_std;
  const at::Tensor eps = rng.randn(x0.sizes());
  const at::Tensor sigma = schedulers::sample_flow_sigmas(B, c.timesteps, rng);  // [B]
  const at::Tensor s = sigma.view({B, 1, 1, 1, 1});
  const at::Tensor xt = (1 - s) * x0 + s * eps;
  const at::Tensor target = eps - x0;
  const at::Tensor drop = rng.rand({B}) < c.caption_dropout;
  const at::Tensor ids = at::where(drop.unsqueeze(1), data.empty_ids.unsqueeze(0), data.ids.index_select(0, idx));
  const at::Tensor context = models::sd_prompt_embeds(both->text_encoder, ids, 0);

  const int64_t frames = x0.size(2);
  at::Tensor input = xt, weight = at::ones({B, 1, frames, 1, 1});
  if (c.frame_condition > 0) {
    // keep[b]: given latent frames (0 for text-to-video), uniform in 1..F'-1 when conditioned.
    const at::Tensor u = rng.rand({B}), k = rng.rand({B});
    at::Tensor keep = at::zeros({B}, at::kLong);
    if (frames > 1)
      keep = at::where(u < c.frame_condition, (k * (frames - 1)).floor().to(at::kLong) + 1, keep);
    input = at::cat({xt, pipelines::video_frame_condition(x0, keep, data.temporal_factor)}, 1);
    weight = (at::arange(frames, at::kLong).view({1, frames}) >= keep.view({B, 1})).to(at::kFloat).view({B, 1, frames, 1, 1});
  }
  if (weight_objects && !data.foreground.empty())
    weight = weight * (1 + c.dit_foreground_weight * data.foreground[bucket].index_select(0, idx));
  const at::Tensor out = both->transformer->forward(input, sigma * 1000, context).to(at::kFloat);
  const at::Tensor w = weight.expand_as(target);
  return ((out - target).pow(2) * w).sum() / w.sum().clamp_min(1);
}

// The validation captions: 8 spread over the set.
std::vector<size_t> validation_indices(size_t n) {
  std::vector<size_t> v;
  for (size_t k = 0; k < 8 && k < n; ++k) v.push_back(k * n / 8);
  return v;
}

void validate_dit(const VideoRecipeConfig& c, const DitData& data, VideoModels& both, const DerivedConfigs& d,
                  const models::AutoencoderKLWan& vae, const fs::path& out, int64_t step) {
  torch::NoGradGuard no_grad;
  const bool was_training = both->is_training();
  both->eval();
  double total = 0;
  const size_t n = data.captions.size();
  for (uint64_t i = 0; i < 4; ++i) {
    Rng rng(1000000000 + i);
    std::vector<size_t> index;
    for (int64_t k = 0; k < c.dit_batch_size; ++k) index.push_back(static_cast<size_t>(rng.randint(0, static_cast<int64_t>(n))));
    total += dit_loss(c, data, both, i % c.buckets.size(), index, rng, /*weight_objects=*/false).item<double>();
  }
  const double val_loss = total / 4;

  pipelines::GenvisVideoModel m;
  m.tokenizer.emplace(tokenizers::CLIPTokenizer::load((out / "model" / "tokenizer").string()));  // move-only, small
  m.text_encoder = both->text_encoder;
  m.transformer = both->transformer;
  m.vae = vae;
  m.scheduler = schedulers::NoiseScheduleConfig::from_json(d.scheduler);
  m.default_frames = c.buckets[0].frames, m.default_height = c.buckets[0].height, m.default_width = c.buckets[0].width;
  m.name = "validation";
  pipelines::GenvisVideoPipeline pipeline(std::move(m));
  pipelines::Request r;
  for (const size_t i : validation_indices(n)) r.prompts.push_back(data.captions[i]);
  r.batch = static_cast<int64_t>(r.prompts.size());
  r.steps = 20;
  r.guidance = 4.0;
  const at::Tensor videos = pipeline.generate(r).samples * 2 - 1;  // [8,3,T,H,W]
  if (was_training) both->train();
  nlohmann::ordered_json record = {{"step", step}, {"loss", val_loss}};
  std::ofstream((out / "dit" / "validation.jsonl"), std::ios::app) << record.dump() << "\n";
  const std::string path = write_sample_grid(frame_strips(videos), r.prompts, c.buckets[0].height, out / "dit" / "samples",
                                             step, /*columns=*/2);
  log_info("validation at step " + std::to_string(step) + ": loss " + std::to_string(val_loss) + ", samples " + path);
}

// Stage 3. Returns false when interrupted.
bool train_dit(const VideoRecipeConfig& c, const DerivedConfigs& d, const tokenizers::CLIPTokenizer& tokenizer,
               const fs::path& out, const VideoRecipeOptions& o) {
  const DitData data = load_dit_data(c, tokenizer, out);
  torch::manual_seed(c.seed + 1);
  models::CLIPTextModel te(models::CLIPTextConfig::from_json(d.text_encoder, "text_encoder.config"));
  models::WanTransformer3DModel dit(models::WanTransformer3DConfig::from_json(d.transformer, "transformer.config"));
  zero_init_modulation(*dit);
  VideoModels both(dit, te);
  Trainer trainer(*both, c.dit_train, (out / "dit").string());
  trainer.extra_state = {{"stage", "dit"},
                         {"transformer", d.transformer},
                         {"text_encoder", d.text_encoder},
                         {"frame_condition", c.frame_condition},
                         {"caption_dropout", c.caption_dropout}};
  if (c.dit_foreground_weight > 0) trainer.extra_state["foreground_weight"] = c.dit_foreground_weight;
  trainer.resume_if_allowed(o.resume, "stage dit");
  const data::VideoLoader loader = make_loader(c, c.dit_batch_size, c.seed + 1);
  const int64_t accum = c.dit_train.grad_accum;
  models::AutoencoderKLWan vae{nullptr};  // the sampler's VAE, loaded at the first validation
  const auto outcome = trainer.run(
      [&](int64_t step, int64_t micro, Rng& rng) {
        const int64_t s = step * accum + micro;
        return dit_loss(c, data, both, loader.bucket_of(s), loader.indices(s), rng);
      },
      [&](int64_t step) {
        if (!vae) vae = models::load_autoencoder_kl_wan((out / "model" / "vae").string());
        validate_dit(c, data, both, d, vae, out, step);
      });
  if (outcome == Trainer::Outcome::Interrupted) return false;
  trainer.apply_ema();
  both->eval();
  const fs::path model = out / "model";
  fs::create_directories(model / "text_encoder");
  fs::create_directories(model / "transformer");
  io::save_safetensors((model / "text_encoder" / "model.safetensors").string(), nn::state_dict(*both->text_encoder),
                       {{"format", "pt"}});
  recipe::write_json(model / "text_encoder" / "config.json", d.text_encoder);
  io::save_safetensors((model / "transformer" / "diffusion_pytorch_model.safetensors").string(),
                       nn::state_dict(*both->transformer), {{"format", "pt"}});
  recipe::write_json(model / "transformer" / "config.json", d.transformer);  // the stage's final output
  return true;
}

void export_pipeline(const VideoRecipeConfig& c, const DerivedConfigs& d, const fs::path& model) {
  recipe::write_json(model / "scheduler" / "scheduler_config.json", d.scheduler);
  recipe::write_json((model / "model_index.json").string(),
                     {{"_class_name", pipelines::kGenvisVideoClass},
                      {"_diffusers_version", kDiffusersVersion},
                      {"default_frames", c.buckets[0].frames},
                      {"default_height", c.buckets[0].height},
                      {"default_width", c.buckets[0].width},
                      {"fps", c.fps},
                      {"scheduler", json::array({"diffusers", "UniPCMultistepScheduler"})},
                      {"text_encoder", json::array({"transformers", "CLIPTextModel"})},
                      {"tokenizer", json::array({"transformers", "CLIPTokenizer"})},
                      {"transformer", json::array({"diffusers", "WanTransformer3DModel"})},
                      {"vae", json::array({"diffusers", "AutoencoderKLWan"})}});
}

}  // namespace

VideoRecipeConfig VideoRecipeConfig::from_json(const json& j, const std::string& source) {
  VideoRecipeConfig c;
  std::vector<std::string> problems;
  if (!check_keys(j, "config", {"dataset", "buckets", "tokenizer", "vae", "transformer", "text_encoder", "dit"},
                  {"seed", "fps"}, problems))
    throw UsageError(source + ": the recipe config must be a JSON object");
  read(j, "config", "seed", c.seed, problems);
  read(j, "config", "fps", c.fps, problems);
  if (!(c.fps > 0)) problems.push_back("fps must be positive");
  const auto section = [&](const char* key) { return j.contains(key) ? j.at(key) : json::object(); };
  recipe::read_dataset_section(j, c.dataset, problems);
  if (!c.dataset.name.empty()) {
    try {
      if (!data::is_video_dataset(c.dataset.name))
        problems.push_back("dataset.name: " + c.dataset.name + " is an image dataset; the video recipe needs clips");
    } catch (const Error& e) {
      problems.push_back(std::string("dataset.name: ") + e.what());
    }
  }
  recipe::read_tokenizer_section(j, c.vocab_size, problems);

  if (j.contains("buckets")) {
    if (!j["buckets"].is_array() || j["buckets"].empty()) problems.push_back("buckets must be a non-empty array");
    else
      for (size_t i = 0; i < j["buckets"].size(); ++i) {
        const json& b = j["buckets"][i];
        const std::string path = "buckets[" + std::to_string(i) + "]";
        data::VideoBucket bucket;
        if (!check_keys(b, path, {"frames", "height", "width"}, {"weight"}, problems)) continue;
        int64_t frames = 0, height = 0, width = 0;
        read(b, path, "frames", frames, problems);
        read(b, path, "height", height, problems);
        read(b, path, "width", width, problems);
        read(b, path, "weight", bucket.weight, problems);
        if (frames < 1 || height < 8 || width < 8) problems.push_back(path + ": frames >= 1, height and width >= 8");
        if (!(bucket.weight > 0)) problems.push_back(path + ".weight must be positive");
        bucket.frames = static_cast<int>(frames), bucket.height = static_cast<int>(height), bucket.width = static_cast<int>(width);
        c.buckets.push_back(bucket);
      }
  }
  const json vae = section("vae");
  if (check_keys(vae, "vae", {"config", "batch_size", "train"}, {"kl_weight", "init_logvar", "foreground_weight", "from"},
                 problems)) {
    read(vae, "vae", "from", c.vae_from, problems);
    if (vae.contains("from") && c.vae_from.empty()) problems.push_back("vae.from must name a VAE folder");
    read(vae, "vae", "foreground_weight", c.vae_foreground_weight, problems);
    if (!(c.vae_foreground_weight >= 0 && c.vae_foreground_weight <= 1000))
      problems.push_back("vae.foreground_weight must be in [0, 1000]");
    read(vae, "vae", "config", c.vae_config, problems);
    read(vae, "vae", "kl_weight", c.kl_weight, problems);
    read(vae, "vae", "init_logvar", c.vae_init_logvar, problems);
    read(vae, "vae", "batch_size", c.vae_batch_size, problems);
    if (!(c.kl_weight >= 0)) problems.push_back("vae.kl_weight must be >= 0");
    if (c.vae_init_logvar && !(*c.vae_init_logvar >= -20 && *c.vae_init_logvar <= 2))
      problems.push_back("vae.init_logvar must be in [-20, 2]");
    if (vae.contains("batch_size") && c.vae_batch_size < 1) problems.push_back("vae.batch_size must be >= 1");
    recipe::read_train_section(vae, "vae", c.seed, c.vae_train, problems);
  }
  const json tr = section("transformer");
  if (check_keys(tr, "transformer", {"config"}, {}, problems)) read(tr, "transformer", "config", c.transformer_config, problems);
  const json te = section("text_encoder");
  if (check_keys(te, "text_encoder", {"config"}, {}, problems)) read(te, "text_encoder", "config", c.text_encoder_config, problems);
  const json dit = section("dit");
  if (check_keys(dit, "dit", {"batch_size", "train"},
                 {"caption_dropout", "frame_condition", "timesteps", "flow_shift", "foreground_weight"}, problems)) {
    read(dit, "dit", "foreground_weight", c.dit_foreground_weight, problems);
    if (!(c.dit_foreground_weight >= 0 && c.dit_foreground_weight <= 1000))
      problems.push_back("dit.foreground_weight must be in [0, 1000]");
    read(dit, "dit", "batch_size", c.dit_batch_size, problems);
    read(dit, "dit", "caption_dropout", c.caption_dropout, problems);
    read(dit, "dit", "frame_condition", c.frame_condition, problems);
    read(dit, "dit", "flow_shift", c.flow_shift, problems);
    if (dit.contains("batch_size") && c.dit_batch_size < 1) problems.push_back("dit.batch_size must be >= 1");
    if (!(c.caption_dropout >= 0 && c.caption_dropout < 1)) problems.push_back("dit.caption_dropout must be in [0, 1)");
    if (!(c.frame_condition >= 0 && c.frame_condition <= 1)) problems.push_back("dit.frame_condition must be in [0, 1]");
    if (!(c.flow_shift > 0)) problems.push_back("dit.flow_shift must be positive");
    if (dit.contains("timesteps")) recipe::read_noise_density(dit["timesteps"], "dit.timesteps", c.timesteps, problems);
    recipe::read_train_section(dit, "dit", c.seed + 1, c.dit_train, problems);
  }
  for (auto* cfg : {&c.vae_config, &c.transformer_config, &c.text_encoder_config})
    if (cfg->is_null()) *cfg = json::object();
  const bool models_ok = c.vae_config.is_object() && c.transformer_config.is_object() && c.text_encoder_config.is_object();
  if (!models_ok) problems.push_back("vae.config, transformer.config and text_encoder.config must be objects");
  if (models_ok) {
    const DerivedConfigs d = derive_configs(c, nullptr, problems);
    const auto check = [&](const char* what, const auto& parse) {
      try {
        parse();
      } catch (const Error& e) {
        problems.push_back(std::string(what) + ": " + e.what());
      }
    };
    check("vae.config", [&] {
      const auto vae_config = models::AutoencoderKLWanConfig::from_json(d.vae, "vae.config");
      for (const auto& p : vae_config.problems()) problems.push_back("vae.config: " + p);
      // Bucket sizes against the VAE's factors and the patch size.
      std::vector<int64_t> patch = {1, 2, 2};
      if (d.transformer.contains("patch_size") && d.transformer["patch_size"].is_array() &&
          d.transformer["patch_size"].size() == 3)
        for (size_t k = 0; k < 3; ++k)
          if (d.transformer["patch_size"][k].is_number_integer()) patch[k] = std::max<int64_t>(1, d.transformer["patch_size"][k].get<int64_t>());
      const int64_t tf = vae_config.temporal_factor();
      const int64_t sh = vae_config.spatial_factor() * patch[1], sw = vae_config.spatial_factor() * patch[2];
      for (size_t i = 0; i < c.buckets.size(); ++i) {
        const auto& b = c.buckets[i];
        const int64_t latent_frames = 1 + (b.frames - 1) / tf;
        if ((b.frames - 1) % tf != 0 || latent_frames % patch[0] != 0)
          problems.push_back("buckets[" + std::to_string(i) + "].frames " + std::to_string(b.frames) + " must be 1 + " +
                             std::to_string(tf) + "k (the VAE's temporal factor) with 1 + k a multiple of the patch's " +
                             std::to_string(patch[0]));
        if (b.height % sh != 0 || b.width % sw != 0)
          problems.push_back("buckets[" + std::to_string(i) + "]: height and width must be multiples of " +
                             std::to_string(sh) + " x " + std::to_string(sw) + " (VAE factor x patch size)");
      }
    });
    check("transformer.config", [&] {
      for (const auto& p : models::WanTransformer3DConfig::from_json(d.transformer, "transformer.config").validate())
        problems.push_back("transformer.config: " + p);
    });
    check("text_encoder.config", [&] {
      for (const auto& p : models::CLIPTextConfig::from_json(d.text_encoder, "text_encoder.config").validate())
        problems.push_back("text_encoder.config: " + p);
    });
  }
  if (c.buckets.empty() && !j.contains("buckets")) problems.push_back("missing key buckets");
  recipe::throw_if_problems(source, problems);
  return c;
}

VideoRecipeConfig VideoRecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

VideoRecipeResult run_video_recipe(const VideoRecipeConfig& config, const VideoRecipeOptions& options) {
  if (options.out_dir.empty()) throw UsageError("run_video_recipe: no output folder");
  const fs::path out = options.out_dir;
  const fs::path model = out / "model";
  fs::create_directories(model);
  recipe::write_json(out / "recipe.json", {{"recipe", "video"}, {"seed", config.seed}});
  VideoRecipeResult result;
  result.model_dir = model.string();
  const auto done = [&](const char* stage, bool finished) { recipe::mark_stage(stage, finished, result.ran, result.skipped); };

  // 1 tokenizer
  const fs::path tok_dir = model / "tokenizer";
  const bool have_tokenizer = recipe::has_tokenizer(tok_dir.string());
  done("tokenizer", have_tokenizer);
  if (!have_tokenizer) {
    const auto clips = data::make_video_dataset(video_spec(config));
    std::vector<std::string> captions;
    for (size_t i = 0; i < clips->size(); ++i) captions.push_back(clips->get(i).caption);
    recipe::train_tokenizer(captions, config.vocab_size, tok_dir.string());
  }
  const auto tokenizer = tokenizers::CLIPTokenizer::load(tok_dir.string());
  std::vector<std::string> problems;
  const DerivedConfigs d = derive_configs(config, &tokenizer, problems);
  if (!problems.empty()) throw UsageError(problems.front());

  // 2 vae (+ latents)
  bool have_vae = fs::exists(model / "vae" / "config.json") &&
                  fs::exists(model / "vae" / "diffusion_pytorch_model.safetensors");
  if (!have_vae && !config.vae_from.empty()) {
    adopt_vae(config, d, model / "vae");
    have_vae = true;
  }
  const bool have_latents = have_vae && fs::exists(out / "latents.json");
  done("vae", have_latents);
  if (!have_latents && have_vae) {
    log_info("vae: using " + (model / "vae").string() + "; computing the latent cache");
    models::AutoencoderKLWan vae = models::load_autoencoder_kl_wan((model / "vae").string());
    cache_latents(*vae, config, d, out, /*export_vae=*/false);
  } else if (!have_latents && !train_vae(config, d, out, options)) {
    result.interrupted = true;
    return result;
  }

  // 3 dit
  const bool have_dit = fs::exists(model / "transformer" / "config.json") && fs::exists(model / "text_encoder" / "config.json");
  done("dit", have_dit);
  if (!have_dit && !train_dit(config, d, tokenizer, out, options)) {
    result.interrupted = true;
    return result;
  }

  // 4 export
  const bool have_index = fs::exists(model / "model_index.json");
  done("export", have_index);
  if (!have_index) export_pipeline(config, d, model);
  log_info("model: " + model.string());
  return result;
}

}  // namespace genvis::train
