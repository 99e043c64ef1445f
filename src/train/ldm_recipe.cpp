#include "train/ldm_recipe.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "data/loader.h"
#include "data/registry.h"
#include "eval/evaluation.h"
#include "io/grid.h"
#include "io/image.h"
#include "io/image_tensor.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/autoencoder_kl/autoencoder_kl.h"
#include "models/clip_text/clip_text_model.h"
#include "models/unet2d_condition/unet2d_condition.h"
#include "nn/state_dict.h"
#include "pipelines/stable_diffusion.h"
#include "schedulers/parameterization.h"
#include "schedulers/schedule.h"
#include "tokenizers/bpe_trainer.h"
#include "tokenizers/clip_tokenizer.h"
#include "train/foreground_weights.h"
#include "train/sample_grid.h"
#include "train/text_image_encoder_recipe.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using recipe::check_keys;
using recipe::derive;
using recipe::read;

constexpr const char* kDiffusersVersion = "0.31.0";

// ---- config parsing -------------------------------------------------------------------------

struct DerivedConfigs {
  json vae, unet, text_encoder, scheduler;
};

// The model configs with every recipe-derived key filled in (the text encoder's token ids need
// the trained tokenizer; placeholders are used when `tokenizer` is null).
DerivedConfigs derive_configs(const LDMRecipeConfig& c, const tokenizers::CLIPTokenizer* tokenizer,
                              std::vector<std::string>& problems) {
  DerivedConfigs d{c.vae_config, c.unet_config, c.text_encoder_config, c.scheduler_config};
  derive(d.vae, "vae.config", "in_channels", 3, problems);
  derive(d.vae, "vae.config", "out_channels", 3, problems);
  derive(d.vae, "vae.config", "sample_size", c.dataset.resolution, problems);
  d.vae["_class_name"] = "AutoencoderKL";
  d.vae["_diffusers_version"] = kDiffusersVersion;

  d.text_encoder = recipe::derive_text_encoder_config(c.text_encoder_config, "text_encoder.config", tokenizer,
                                                    c.vocab_size, problems);

  int64_t latent_channels = 4, levels = 1, hidden = 512;
  try {
    latent_channels = d.vae.value("latent_channels", int64_t{4});
    levels = d.vae.contains("block_out_channels") ? static_cast<int64_t>(d.vae["block_out_channels"].size()) : 1;
    hidden = d.text_encoder.value("hidden_size", int64_t{512});
  } catch (const json::exception&) {
    // Reported by the model configs' own parsers.
  }
  const int64_t f = int64_t{1} << std::max<int64_t>(levels - 1, 0);
  if (c.dataset.resolution > 0 && c.dataset.resolution % f != 0)
    problems.push_back("dataset.resolution " + std::to_string(c.dataset.resolution) +
                       " is not a multiple of the VAE's downscale factor " + std::to_string(f));
  derive(d.unet, "unet.config", "in_channels", latent_channels, problems);
  derive(d.unet, "unet.config", "out_channels", latent_channels, problems);
  derive(d.unet, "unet.config", "sample_size", c.dataset.resolution / f, problems);
  derive(d.unet, "unet.config", "cross_attention_dim", hidden, problems);
  d.unet["_class_name"] = "UNet2DConditionModel";
  d.unet["_diffusers_version"] = kDiffusersVersion;

  // The SD 1.x training schedule unless the config says otherwise.
  json s = {{"num_train_timesteps", 1000}, {"beta_start", 0.00085}, {"beta_end", 0.012},
            {"beta_schedule", "scaled_linear"}, {"prediction_type", "epsilon"}, {"timestep_spacing", "leading"},
            {"steps_offset", 1}};
  for (const auto& [k, v] : c.scheduler_config.items()) s[k] = v;
  s["_class_name"] = "EulerDiscreteScheduler";
  s["_diffusers_version"] = kDiffusersVersion;
  d.scheduler = s;
  return d;
}

// text_encoder.pretrain as the contrastive recipe config it stands for: the section plus this
// recipe's seed, dataset and tokenizer, and model.text_config = text_encoder.config with the
// LDM's context length (so the tower's weights fit the text encoder). nullopt after a problem.
std::optional<ContrastiveRecipeConfig> text_pretrain_config(const json& recipe, const json& pretrain,
                                                            std::vector<std::string>& problems) {
  if (!pretrain.is_object()) {
    problems.push_back("text_encoder.pretrain must be an object");
    return std::nullopt;
  }
  const size_t before = problems.size();
  for (const char* key : {"seed", "dataset", "tokenizer"})
    if (pretrain.contains(key)) problems.push_back(std::string("text_encoder.pretrain.") + key + " is the recipe's own " + key);
  json cj = pretrain;
  if (cj.contains("model") && !cj["model"].is_object()) problems.push_back("text_encoder.pretrain.model must be an object");
  if (cj.contains("model") && cj["model"].is_object() && cj["model"].contains("text_config"))
    problems.push_back("text_encoder.pretrain.model.text_config is text_encoder.config");
  json text = recipe.contains("text_encoder") ? recipe["text_encoder"].value("config", json::object()) : json::object();
  if (!text.is_object()) return std::nullopt;  // reported with text_encoder.config
  if (problems.size() != before) return std::nullopt;
  text["max_position_embeddings"] = tokenizers::CLIPTokenizer::kMaxLength;
  if (!cj.contains("model")) cj["model"] = json::object();
  cj["model"]["text_config"] = text;
  cj["dataset"] = recipe.at("dataset");
  cj["tokenizer"] = recipe.at("tokenizer");
  if (recipe.contains("seed")) cj["seed"] = recipe["seed"];
  try {
    return ContrastiveRecipeConfig::from_json(cj, "text_encoder.pretrain");
  } catch (const UsageError& e) {
    problems.push_back(e.what());
    return std::nullopt;
  }
}

// ---- datasets -----------------------------------------------------------------------------



// ---- stages -------------------------------------------------------------------------------

// Stage 1.
void train_tokenizer(const LDMRecipeConfig& c, const data::Dataset& ds, const fs::path& folder) {
  std::vector<std::string> captions;
  captions.reserve(ds.size());
  for (size_t i = 0; i < ds.size(); ++i) captions.push_back(ds.get(i).caption);
  recipe::train_tokenizer(captions, c.vocab_size, folder.string());
}

// The VAE stage's batches (training adds flips; the latent cache reads in order).
data::LoaderOptions vae_loader_options(const LDMRecipeConfig& c) {
  data::LoaderOptions o;
  o.batch_size = c.vae_batch_size;
  o.resolution = c.dataset.resolution;
  o.seed = c.seed;
  return o;
}

// ", shapes colour 0.812, colour+shape 0.437" from shapes_metrics' keys; "" without them.
std::string shapes_summary(const nlohmann::ordered_json& metrics) {
  if (!metrics.contains("shapes_colour_shape_accuracy")) return "";
  char buf[96];
  std::snprintf(buf, sizeof buf, ", shapes colour %.3f, colour+shape %.3f",
                metrics["shapes_colour_accuracy"].get<double>(), metrics["shapes_colour_shape_accuracy"].get<double>());
  return buf;
}

// How well the VAE keeps what the captions say: the first 100 samples decoded from their latent
// means, as mean squared error and PSNR against the originals and, for shapes scenes, the shapes
// scorer's accuracies (what a perfect denoiser could reach at best): vae/reconstruction.json, and
// originals beside their reconstructions in vae/reconstruction.png.
void check_reconstruction(models::AutoencoderKLImpl& vae, const data::Dataset& ds, const at::Tensor& means,
                          const fs::path& out) {
  torch::NoGradGuard no_grad;
  const int64_t n = std::min<int64_t>(100, means.size(0));
  eval::EvalSet set;
  std::vector<at::Tensor> originals;
  for (int64_t i = 0; i < n; ++i) {
    const data::Sample s = ds.get(static_cast<size_t>(i));
    originals.push_back(io::image_to_tensor(s.image));
    set.captions.push_back(s.caption);
    set.metas.push_back(s.meta);
  }
  const at::Tensor x = at::cat(originals);
  const at::Tensor decoded = vae.decode(means.narrow(0, 0, n)).clamp(-1, 1);
  set.images = (decoded + 1) * 0.5;
  const double mse = (decoded - x).pow(2).mean().item<double>();
  nlohmann::ordered_json report = {{"samples", n}, {"mse", mse}, {"psnr_db", 10 * std::log10(4.0 / std::max(mse, 1e-12))}};
  if (std::all_of(set.metas.begin(), set.metas.end(), eval::is_shapes_scene)) report.update(eval::shapes_metrics(set));
  fs::create_directories(out / "vae");  // absent when the VAE came from another run
  write_file_atomic((out / "vae" / "reconstruction.json").string(), report.dump(2) + "\n");
  // Originals beside their reconstructions (nearest-neighbour x4), 8 pairs per row.
  std::vector<io::Image> cells;
  for (int64_t i = 0; i < std::min<int64_t>(16, n); ++i)
    for (const at::Tensor& t : {x[i], decoded[i]})
      cells.push_back(io::tensor_to_image(at::upsample_nearest2d(t.unsqueeze(0), {t.size(1) * 4, t.size(2) * 4})[0]));
  io::write_png((out / "vae" / "reconstruction.png").string(), io::make_grid(cells, 8));
  char psnr[32];
  std::snprintf(psnr, sizeof psnr, "%.2f", report["psnr_db"].get<double>());
  log_info("vae reconstruction of " + std::to_string(n) + " samples: PSNR " + psnr + " dB" + shapes_summary(report));
}

// The latent cache of the whole set (unflipped, in index order: latents.json + latents.safetensors)
// and the scaling factor that gives the posterior samples unit variance; `export_vae` also writes
// the VAE (with that factor) to model/vae.
void cache_latents(models::AutoencoderKLImpl& vae, const LDMRecipeConfig& c, const DerivedConfigs& d,
                   std::shared_ptr<const data::Dataset> ds, const fs::path& out, bool export_vae) {
  vae.eval();
  torch::NoGradGuard no_grad;
  const auto n = static_cast<int64_t>(ds->size());
  data::LoaderOptions eo = vae_loader_options(c);
  eo.shuffle = false;
  eo.hflip = false;
  eo.prefetch = 1;
  data::DataLoader ordered(ds, eo);
  std::vector<at::Tensor> means, logvars;
  std::vector<std::string> captions;
  for (int64_t step = 0, have = 0; have < n; ++step) {
    data::Batch b = ordered.batch(step);
    const int64_t take = std::min<int64_t>(b.images.size(0), n - have);
    const models::LatentDistribution q = vae.encode(b.images.narrow(0, 0, take));
    means.push_back(q.mean);
    logvars.push_back(q.logvar);
    for (int64_t i = 0; i < take; ++i) captions.push_back(b.captions[static_cast<size_t>(i)]);
    have += take;
  }
  const at::Tensor mean = at::cat(means), logvar = at::cat(logvars);
  // Variance of posterior samples over the set: var(mean) + E[var].
  const double var = mean.var(/*unbiased=*/false).item<double>() + logvar.exp().mean().item<double>();
  const double scaling_factor = 1.0 / std::sqrt(std::max(var, 1e-12));

  json vae_config = d.vae;
  vae_config["scaling_factor"] = scaling_factor;
  const fs::path vae_dir = out / "model" / "vae";
  if (export_vae) {
    fs::create_directories(vae_dir);
    io::save_safetensors((vae_dir / "diffusion_pytorch_model.safetensors").string(), nn::state_dict(vae),
                         {{"format", "pt"}});
  }
  recipe::write_json(vae_dir / "config.json", vae_config);  // the factor the diffusion stage trains with
  recipe::write_json(out / "latents.json", {{"captions", captions}, {"scaling_factor", scaling_factor},
                                            {"resolution", c.dataset.resolution}, {"flipped", false}});
  io::save_safetensors((out / "latents.safetensors").string(), {{"mean", mean}, {"logvar", logvar}},
                       {{"format", "pt"}});
  log_info("vae: " + std::to_string(n) + " latents " + std::to_string(mean.size(1)) + "x" +
           std::to_string(mean.size(2)) + "x" + std::to_string(mean.size(3)) +
           ", scaling_factor " + std::to_string(scaling_factor));
  check_reconstruction(vae, *ds, mean, out);
}

// Stage 2. Returns false when interrupted.
bool train_vae(const LDMRecipeConfig& c, const DerivedConfigs& d, std::shared_ptr<const data::Dataset> ds,
               const fs::path& out, const LDMRecipeOptions& o) {
  torch::manual_seed(c.seed);
  models::AutoencoderKL vae(models::AutoencoderKLConfig::from_json(d.vae, "vae.config"));
  if (c.vae_init_logvar) {
    // The moments' second half is the log-variance: quant_conv's output, else the encoder's.
    torch::NoGradGuard no_grad;
    torch::nn::Conv2d& moments = vae->config.use_quant_conv ? vae->quant_conv : vae->encoder->conv_out;
    const int64_t latent = vae->config.latent_channels;
    moments->bias.narrow(0, latent, latent).fill_(*c.vae_init_logvar);
  }
  Trainer trainer(*vae, c.vae_train, (out / "vae").string());
  trainer.extra_state = {{"stage", "vae"}, {"config", d.vae}};
  trainer.resume_if_allowed(o.resume, "stage vae");

  data::LoaderOptions lo = vae_loader_options(c);
  lo.hflip = true;  // reconstruction does not care about captions
  data::DataLoader loader(ds, lo);
  const int64_t accum = c.vae_train.grad_accum;
  const double kl_weight = c.kl_weight;
  const auto outcome = trainer.run([&](int64_t step, int64_t micro, Rng& rng) {
    const at::Tensor x = loader.batch(step * accum + micro).images;
    const models::LatentDistribution q = vae->encode(x);
    const at::Tensor z = q.sample(rng.randn(q.mean.sizes()));
    const at::Tensor kl = q.kl_to_standard_normal();
    return torch::mse_loss(vae->decode(z), x) + kl_weight * kl;
  });
  if (outcome == Trainer::Outcome::Interrupted) return false;
  trainer.apply_ema();
  cache_latents(*vae, c, d, ds, out, /*export_vae=*/true);
  return true;
}

// Stage 2 with the VAE already in model/vae (a run stopped between export and cache, or a VAE
// copied from another run of the same vae config): only the latent cache is (re)computed.
void reuse_vae(const LDMRecipeConfig& c, const DerivedConfigs& d, std::shared_ptr<const data::Dataset> ds,
               const fs::path& out) {
  const fs::path vae_dir = out / "model" / "vae";
  json have = recipe::read_config_file((vae_dir / "config.json").string()), want = d.vae;
  have.erase("scaling_factor");  // from the data, not the config
  want.erase("scaling_factor");
  const std::vector<std::string> differences = json_differences(want, have);
  if (!differences.empty()) {
    std::string all;
    for (const auto& s : differences) all += (all.empty() ? "" : ", ") + s;
    throw UsageError((vae_dir / "config.json").string() + " is not the vae this config describes (" + all +
                     "); remove model/vae to train one");
  }
  models::AutoencoderKL vae = models::load_autoencoder_kl(vae_dir.string());
  log_info("vae: using " + vae_dir.string() + "; computing the latent cache");
  cache_latents(*vae, c, d, ds, out, /*export_vae=*/false);
}

// The two modules trained together by one optimiser; checkpoint keys "unet.*", "text_encoder.*".
struct LDMModelsImpl : torch::nn::Module {
  LDMModelsImpl(models::UNet2DConditionModel u, models::CLIPTextModel t) {
    unet = register_module("unet", std::move(u));
    text_encoder = register_module("text_encoder", std::move(t));
  }
  models::UNet2DConditionModel unet{nullptr};
  models::CLIPTextModel text_encoder{nullptr};
};
TORCH_MODULE(LDMModels);

// Validation of the diffusion stage (every validate_every steps and at the end, on the EMA
// weights when there are any): the training loss function on 4 fixed batches (seeds 1e9 + i,
// so the same samples, timesteps and noise every time) appended to
// <out>/diffusion/validation.jsonl, and a captioned grid of 8 training captions generated
// through the pipeline (20 Euler steps, CFG 5, seeds 0-7) in <out>/diffusion/samples/. For
// shapes, `scenes` holds the 8 captions' scenes and the pixel scorer's accuracies of the samples
// join the loss in validation.jsonl and the log.
void validate_diffusion(const LDMRecipeConfig& c, const std::vector<std::string>& captions,
                        const std::vector<json>& scenes, LDMModels& both,
                        const schedulers::NoiseScheduleConfig& schedule, const Trainer::LossFn& loss, const fs::path& out,
                        int64_t step) {
  torch::NoGradGuard no_grad;
  const bool was_training = both->is_training();
  both->eval();
  double total = 0;
  for (uint64_t i = 0; i < 4; ++i) {
    Rng rng(1000000000 + i);
    total += loss(step, 0, rng).item<double>();
  }
  const double val_loss = total / 4;

  pipelines::StableDiffusion sd;
  sd.tokenizer = std::make_shared<tokenizers::CLIPTokenizer>(
      tokenizers::CLIPTokenizer::load((out / "model" / "tokenizer").string()));
  sd.text_encoder = both->text_encoder;
  sd.unet = both->unet;
  sd.vae = models::load_autoencoder_kl((out / "model" / "vae").string(), at::kFloat);
  sd.vae->eval();
  sd.scheduler = schedule;
  sd.name = "validation";
  std::vector<at::Tensor> samples;  // [1,3,H,W] in [0,1]
  std::vector<io::Image> images;
  std::vector<std::string> shown;
  for (size_t k = 0; k < 8 && k < captions.size(); ++k) {
    pipelines::GenerateOptions g;
    g.prompt = captions[k * captions.size() / 8];
    g.steps = 20;
    g.cfg_scale = 5;
    g.width = g.height = c.dataset.resolution;
    g.seed = k;
    samples.push_back(pipelines::generate(sd, g).images);
    images.push_back(io::tensor_to_image(samples.back()[0] * 2 - 1));
    shown.push_back(g.prompt);
  }
  if (was_training) both->train();
  nlohmann::ordered_json record = {{"step", step}, {"loss", val_loss}};
  if (scenes.size() == samples.size()) {
    // Shapes: what the pixel scorer finds in the 8 samples (a rough learning signal; genvis eval
    // measures it on 100).
    eval::EvalSet set;
    set.images = at::cat(samples);
    set.captions = shown;
    set.metas = scenes;
    record.update(eval::shapes_metrics(set));
  }
  std::ofstream((out / "diffusion" / "validation.jsonl"), std::ios::app) << record.dump() << "\n";
  const std::string path = write_sample_grid(images, shown, c.dataset.resolution, out / "diffusion" / "samples", step);
  log_info("validation at step " + std::to_string(step) + ": loss " + std::to_string(val_loss) + shapes_summary(record) +
           ", samples " + path);
}

// The text tower of the contrastive encoder of stage 3 (its text_model.* weights, which have the
// text encoder's names and shapes by construction) copied into `te`; anything missing or of
// another shape is a LoadError naming the file.
void init_from_contrastive(models::CLIPTextModelImpl& te, const fs::path& weights) {
  const auto reader = io::open_weights(weights.string());
  nn::LoadOptions lo;
  lo.key_map = [](const std::string& name) { return name.rfind("text_model.", 0) == 0 ? name : std::string(); };
  const auto report = nn::load_state_dict(te, *reader, lo);
  log_info("text encoder: " + std::to_string(report.loaded) + " tensors from the contrastive pretraining " +
           weights.string());
}

// Stage 4. Returns false when interrupted.
bool train_diffusion(const LDMRecipeConfig& c, const DerivedConfigs& d, const tokenizers::CLIPTokenizer& tokenizer,
                     const fs::path& out, const LDMRecipeOptions& o) {
  const auto reader = io::open_weights((out / "latents.safetensors").string());
  const at::Tensor mean = reader->load("mean", at::kFloat), logvar = reader->load("logvar", at::kFloat);
  const json info = json::parse(read_text_file((out / "latents.json").string(), size_t{1} << 30));
  const auto captions = info.at("captions").get<std::vector<std::string>>();
  const double scaling_factor = info.at("scaling_factor").get<double>();
  const auto n = mean.size(0);
  if (static_cast<int64_t>(captions.size()) != n)
    throw LoadError((out / "latents.json").string(), "caption count differs from the latents'");

  // Token ids once: [N, 77] and the empty caption's [77].
  const auto ids_of = [&](const std::string& text) {
    return at::tensor(tokenizer.encode_padded(text, tokenizer.eos_id()), at::kLong);
  };
  std::vector<at::Tensor> rows;
  for (const auto& caption : captions) rows.push_back(ids_of(caption));
  const at::Tensor ids = at::stack(rows), empty_ids = ids_of("");

  torch::manual_seed(c.seed + 1);
  models::CLIPTextModel te(models::CLIPTextConfig::from_json(d.text_encoder, "text_encoder.config"));
  models::UNet2DConditionModel unet(models::UNet2DConditionConfig::from_json(d.unet, "unet.config"));
  if (c.text_pretrain) init_from_contrastive(*te, out / "text_pretrain" / "model" / "model.safetensors");
  if (c.freeze_text_encoder)
    for (auto& p : te->parameters()) p.set_requires_grad(false);
  LDMModels both(unet, te);
  Trainer trainer(*both, c.diffusion_train, (out / "diffusion").string());
  trainer.extra_state = {{"stage", "diffusion"},
                         {"unet", d.unet},
                         {"text_encoder", d.text_encoder},
                         {"text_encoder_init", c.text_pretrain ? "contrastive" : "random"},
                         {"text_encoder_frozen", c.freeze_text_encoder},
                         {"snr_gamma", c.snr_gamma ? json(*c.snr_gamma) : json(nullptr)}};
  if (c.foreground_weight > 0) trainer.extra_state["foreground_weight"] = c.foreground_weight;
  if (c.timesteps)
    trainer.extra_state["timesteps"] = {
        {"density", c.timesteps->kind == schedulers::FlowSigmaDensity::Kind::Uniform ? "uniform" : "logit_normal"},
        {"mean", c.timesteps->mean},
        {"std", c.timesteps->std},
        {"shift", c.timesteps->shift}};
  trainer.resume_if_allowed(o.resume, "stage diffusion");
  // Per-position loss weights [N,1,h,w] (undefined when unweighted), from the set rendered again
  // in the cache's order.
  at::Tensor position_weights;
  if (c.foreground_weight > 0) {
    const auto ds = recipe::open_dataset(c.dataset, c.seed);
    const RenderedImageTextSet set = render_image_text_set(*ds, c.dataset.resolution);
    if (set.captions != captions)
      throw UsageError((out / "latents.json").string() + " does not hold the dataset's captions in order; delete " +
                       "latents.* to cache them again");
    position_weights = latent_foreground_weights(set.images, c.dataset.resolution / mean.size(2), c.foreground_weight);
    char line[160];
    std::snprintf(line, sizeof line, "diffusion: object positions (%.1f%% of the latent positions) weigh %g in the loss",
                  (position_weights > 1.0).to(at::kFloat).mean().item<double>() * 100.0, 1.0 + c.foreground_weight);
    log_info(line);
  }

  const auto schedule = schedulers::NoiseScheduleConfig::from_json(d.scheduler);
  const at::Tensor acp = schedulers::alphas_cumprod(schedule);
  const auto type = schedulers::parse_prediction_type(schedule.prediction_type);  // epsilon or v (checked)
  const int64_t T = schedule.num_train_timesteps, B = c.diffusion_batch_size;
  const double dropout = c.caption_dropout;
  const Trainer::LossFn loss = [&](int64_t, int64_t, Rng& rng) {
    std::vector<int64_t> index(static_cast<size_t>(B)), t(static_cast<size_t>(B));
    for (auto& i : index) i = rng.randint(0, n);
    if (c.timesteps) {
      const at::Tensor u = schedulers::sample_flow_sigmas(B, *c.timesteps, rng).to(at::kDouble);
      for (int64_t k = 0; k < B; ++k)
        t[static_cast<size_t>(k)] = std::clamp<int64_t>(static_cast<int64_t>(u[k].item<double>() * T), 0, T - 1);
    } else {
      for (auto& s : t) s = rng.randint(0, T);
    }
    const at::Tensor drop = rng.rand({B}) < dropout;
    const at::Tensor idx = at::tensor(index, at::kLong), ts = at::tensor(t, at::kLong);
    const at::Tensor m = mean.index_select(0, idx), lv = logvar.index_select(0, idx);
    const at::Tensor x0 = (m + (0.5 * lv).exp() * rng.randn(m.sizes())) * scaling_factor;
    const at::Tensor eps = rng.randn(m.sizes());
    const at::Tensor a = acp.index_select(0, ts);  // [B]: alphas_cumprod per sample
    const at::Tensor xt = schedulers::add_noise(type, x0, eps, a);
    const at::Tensor batch_ids = at::where(drop.unsqueeze(1), empty_ids.unsqueeze(0), ids.index_select(0, idx));
    const at::Tensor context = models::sd_prompt_embeds(both->text_encoder, batch_ids, 0);  // [B, 77, C]
    const at::Tensor prediction = both->unet->forward(xt, ts.to(at::kFloat), context);
    const at::Tensor target = schedulers::training_target(type, x0, eps, a);
    if (!c.snr_gamma && !position_weights.defined()) return torch::mse_loss(prediction, target);
    const at::Tensor squared = (prediction.to(at::kFloat) - target).pow(2);
    const at::Tensor per_sample = position_weights.defined()
                                      ? weighted_mean_per_sample(squared, position_weights.index_select(0, idx))
                                      : squared.mean({1, 2, 3});
    if (!c.snr_gamma) return per_sample.mean();
    return (schedulers::min_snr_weight(type, a, *c.snr_gamma) * per_sample).mean();
  };
  // The validation captions' scenes, when the dataset is shapes (scored by the pixel scorer).
  std::vector<json> scenes;
  if (c.dataset.name == "shapes") {
    const auto ds = recipe::open_dataset(c.dataset, c.seed);
    for (size_t k = 0; k < 8 && k < captions.size(); ++k) scenes.push_back(ds->get(k * captions.size() / 8).meta);
  }
  const auto outcome =
      trainer.run(loss, [&](int64_t step) { validate_diffusion(c, captions, scenes, both, schedule, loss, out, step); });
  if (outcome == Trainer::Outcome::Interrupted) return false;
  trainer.apply_ema();
  both->eval();

  const fs::path model = out / "model";
  fs::create_directories(model / "text_encoder");
  fs::create_directories(model / "unet");
  io::save_safetensors((model / "text_encoder" / "model.safetensors").string(), nn::state_dict(*both->text_encoder),
                       {{"format", "pt"}});
  recipe::write_json(model / "text_encoder" / "config.json", d.text_encoder);
  io::save_safetensors((model / "unet" / "diffusion_pytorch_model.safetensors").string(), nn::state_dict(*both->unet),
                       {{"format", "pt"}});
  recipe::write_json(model / "unet" / "config.json", d.unet);  // the stage's final output
  return true;
}

// Stage 5.
void export_pipeline(const DerivedConfigs& d, const fs::path& model) {
  recipe::write_json(model / "scheduler" / "scheduler_config.json", d.scheduler);
  recipe::write_json(model / "model_index.json",
             {{"_class_name", "StableDiffusionPipeline"},
              {"_diffusers_version", kDiffusersVersion},
              {"feature_extractor", json::array({nullptr, nullptr})},
              {"requires_safety_checker", false},
              {"safety_checker", json::array({nullptr, nullptr})},
              {"scheduler", json::array({"diffusers", "EulerDiscreteScheduler"})},
              {"text_encoder", json::array({"transformers", "CLIPTextModel"})},
              {"tokenizer", json::array({"transformers", "CLIPTokenizer"})},
              {"unet", json::array({"diffusers", "UNet2DConditionModel"})},
              {"vae", json::array({"diffusers", "AutoencoderKL"})}});
}

}  // namespace

LDMRecipeConfig LDMRecipeConfig::from_json(const json& j, const std::string& source) {
  LDMRecipeConfig c;
  std::vector<std::string> problems;
  if (!check_keys(j, "config", {"dataset", "tokenizer", "vae", "unet", "text_encoder", "diffusion"}, {"seed"},
                  problems))
    throw UsageError(source + ": the recipe config must be a JSON object");
  read(j, "config", "seed", c.seed, problems);
  const auto section = [&](const char* key) { return j.contains(key) ? j.at(key) : json::object(); };

  recipe::read_dataset_section(j, c.dataset, problems);
  recipe::read_tokenizer_section(j, c.vocab_size, problems);

  const auto train_config = [&](const json& s, const std::string& path, uint64_t seed_offset, TrainConfig& out) {
    recipe::read_train_section(s, path, c.seed + seed_offset, out, problems);
  };
  const json vae = section("vae");
  if (check_keys(vae, "vae", {"config", "kl_weight", "batch_size", "train"}, {"init_logvar"}, problems)) {
    read(vae, "vae", "init_logvar", c.vae_init_logvar, problems);
    if (c.vae_init_logvar && !(*c.vae_init_logvar >= -20 && *c.vae_init_logvar <= 2))
      problems.push_back("vae.init_logvar must be in [-20, 2]");
    read(vae, "vae", "config", c.vae_config, problems);
    read(vae, "vae", "kl_weight", c.kl_weight, problems);
    read(vae, "vae", "batch_size", c.vae_batch_size, problems);
    if (vae.contains("kl_weight") && !(c.kl_weight >= 0)) problems.push_back("vae.kl_weight must be >= 0");
    if (vae.contains("batch_size") && c.vae_batch_size < 1) problems.push_back("vae.batch_size must be >= 1");
    train_config(vae, "vae", 0, c.vae_train);
  }
  const json unet = section("unet");
  if (check_keys(unet, "unet", {"config"}, {}, problems)) read(unet, "unet", "config", c.unet_config, problems);
  const bool data_ok = problems.empty();  // dataset and tokenizer: the pretraining reuses them
  const json te = section("text_encoder");
  if (check_keys(te, "text_encoder", {"config"}, {"pretrain", "freeze"}, problems)) {
    read(te, "text_encoder", "config", c.text_encoder_config, problems);
    read(te, "text_encoder", "freeze", c.freeze_text_encoder, problems);
    if (te.contains("pretrain") && data_ok) c.text_pretrain = text_pretrain_config(j, te.at("pretrain"), problems);
    if (c.freeze_text_encoder && !te.contains("pretrain"))
      problems.push_back("text_encoder.freeze needs text_encoder.pretrain (a frozen random text encoder means nothing)");
  }
  const json diff = section("diffusion");
  if (check_keys(diff, "diffusion", {"batch_size", "caption_dropout", "train"}, {"scheduler", "snr_gamma", "foreground_weight", "timesteps"}, problems)) {
    if (diff.contains("timesteps")) {
      c.timesteps.emplace();
      recipe::read_noise_density(diff["timesteps"], "diffusion.timesteps", *c.timesteps, problems);
    }
    read(diff, "diffusion", "batch_size", c.diffusion_batch_size, problems);
    read(diff, "diffusion", "snr_gamma", c.snr_gamma, problems);
    read(diff, "diffusion", "foreground_weight", c.foreground_weight, problems);
    if (!(c.foreground_weight >= 0 && c.foreground_weight <= 1000))
      problems.push_back("diffusion.foreground_weight must be in [0, 1000]");
    if (c.snr_gamma && !(*c.snr_gamma > 0)) problems.push_back("diffusion.snr_gamma must be > 0");
    read(diff, "diffusion", "caption_dropout", c.caption_dropout, problems);
    read(diff, "diffusion", "scheduler", c.scheduler_config, problems);
    if (diff.contains("batch_size") && c.diffusion_batch_size < 1)
      problems.push_back("diffusion.batch_size must be >= 1");
    if (!(c.caption_dropout >= 0 && c.caption_dropout < 1)) problems.push_back("diffusion.caption_dropout must be in [0, 1)");
    train_config(diff, "diffusion", 1, c.diffusion_train);
  }
  for (auto* cfg : {&c.vae_config, &c.unet_config, &c.text_encoder_config, &c.scheduler_config})
    if (cfg->is_null()) *cfg = json::object();

  // The model configs as the recipe will build them.
  const bool models_ok = c.vae_config.is_object() && c.unet_config.is_object() && c.text_encoder_config.is_object() &&
                         c.scheduler_config.is_object();
  if (!models_ok) problems.push_back("vae.config, unet.config, text_encoder.config and diffusion.scheduler must be objects");
  if (models_ok) {
    const DerivedConfigs d = derive_configs(c, nullptr, problems);
    const auto check = [&](const char* what, const auto& parse) {
      try {
        parse();
      } catch (const Error& e) {
        problems.push_back(std::string(what) + ": " + e.what());
      }
    };
    check("vae.config", [&] { models::AutoencoderKLConfig::from_json(d.vae, "vae.config").validate(); });
    check("unet.config", [&] { models::UNet2DConditionConfig::from_json(d.unet, "unet.config").validate(); });
    check("text_encoder.config", [&] {
      for (const auto& p : models::CLIPTextConfig::from_json(d.text_encoder, "text_encoder.config").validate())
        problems.push_back("text_encoder.config: " + p);
    });
    check("diffusion.scheduler", [&] {
      const auto s = schedulers::NoiseScheduleConfig::from_json(d.scheduler);
      if (s.prediction_type != "epsilon" && s.prediction_type != "v_prediction")
        problems.push_back("diffusion.scheduler.prediction_type must be epsilon or v_prediction, got \"" +
                           s.prediction_type + "\"");
    });
  }

  recipe::throw_if_problems(source, problems);
  return c;
}

LDMRecipeConfig LDMRecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

LDMRecipeResult run_ldm_recipe(const LDMRecipeConfig& config, const LDMRecipeOptions& options) {
  if (options.out_dir.empty()) throw UsageError("run_ldm_recipe: no output folder");
  const fs::path out = options.out_dir;
  const fs::path model = out / "model";
  fs::create_directories(model);
  recipe::write_json(out / "recipe.json", {{"recipe", "ldm"}, {"seed", config.seed}});
  LDMRecipeResult result;
  result.model_dir = model.string();
  const auto done = [&](const char* stage, bool finished) { recipe::mark_stage(stage, finished, result.ran, result.skipped); };
  std::shared_ptr<const data::Dataset> dataset;
  const auto ds = [&] { return dataset ? dataset : (dataset = recipe::open_dataset(config.dataset, config.seed)); };

  // 1 tokenizer
  const fs::path tok_dir = model / "tokenizer";
  const bool have_tokenizer = recipe::has_tokenizer(tok_dir.string());
  done("tokenizer", have_tokenizer);
  if (!have_tokenizer) train_tokenizer(config, *ds(), tok_dir);
  const auto tokenizer = tokenizers::CLIPTokenizer::load(tok_dir.string());
  std::vector<std::string> problems;
  const DerivedConfigs d = derive_configs(config, &tokenizer, problems);
  if (!problems.empty()) throw UsageError(problems.front());

  // 2 vae (+ latents)
  const bool have_vae = fs::exists(model / "vae" / "config.json") &&
                        fs::exists(model / "vae" / "diffusion_pytorch_model.safetensors");
  const bool have_latents = have_vae && fs::exists(out / "latents.safetensors") && fs::exists(out / "latents.json");
  done("vae", have_latents);
  if (!have_latents && have_vae) {
    reuse_vae(config, d, ds(), out);
  } else if (!have_latents && !train_vae(config, d, ds(), out, options)) {
    result.interrupted = true;
    return result;
  }

  const bool have_diffusion = fs::exists(model / "unet" / "config.json") && fs::exists(model / "text_encoder" / "config.json");

  // 3 text_pretrain (contrastive, with the tokenizer of stage 1)
  if (config.text_pretrain) {
    const fs::path pre = out / "text_pretrain";
    const bool have_pretrain = have_diffusion || fs::exists(pre / "eval.json");
    done("text_pretrain", have_pretrain);
    if (!have_pretrain) {
      fs::create_directories(pre / "model" / "tokenizer");
      for (const auto& e : fs::directory_iterator(tok_dir))
        if (e.is_regular_file())
          fs::copy_file(e.path(), pre / "model" / "tokenizer" / e.path().filename(),
                        fs::copy_options::skip_existing);
      const auto r = run_contrastive_recipe(*config.text_pretrain, {.out_dir = pre.string(), .resume = options.resume});
      if (r.interrupted) {
        result.interrupted = true;
        return result;
      }
    }
  }

  // 4 diffusion (unet + text encoder)
  done("diffusion", have_diffusion);
  if (!have_diffusion && !train_diffusion(config, d, tokenizer, out, options)) {
    result.interrupted = true;
    return result;
  }

  // 5 export
  const bool have_index = fs::exists(model / "model_index.json");
  done("export", have_index);
  if (!have_index) export_pipeline(d, model);
  log_info("model: " + model.string());
  return result;
}

}  // namespace genvis::train
