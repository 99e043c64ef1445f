#include "train/personalize_recipe.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/folder.h"
#include "io/image_tensor.h"
#include "io/infotext.h"
#include "io/safetensors.h"
#include "models/clip_text/embedding_file.h"
#include "models/lora/lora_file.h"
#include "nn/lora.h"
#include "nn/state_dict.h"
#include "pipelines/adapters.h"
#include "pipelines/stable_diffusion.h"
#include "schedulers/parameterization.h"
#include "schedulers/schedule.h"
#include "tokenizers/prompt_weights.h"
#include "train/recipe_config.h"
#include "train/sample_grid.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int64_t kEncodeBatch = 8;

std::string class_image_name(int64_t i) {
  char name[32];
  std::snprintf(name, sizeof(name), "class-%04lld.png", static_cast<long long>(i));
  return name;
}

bool is_diffusers_folder(const std::string& path) { return fs::is_regular_file(fs::path(path) / "model_index.json"); }

at::ScalarType save_dtype(const PersonalizeConfig& c) { return c.save_dtype == "f32" ? at::kFloat : at::kHalf; }

// An image resized (cover) and centre-cropped to size x size: [1,3,size,size] in [-1,1].
at::Tensor square_tensor(const io::Image& image, int64_t size) {
  const io::Image rgb = image.to_8bit().with_channels(3);
  const double s = std::max(static_cast<double>(size) / rgb.width, static_cast<double>(size) / rgb.height);
  const double w = size / s, h = size / s, x0 = (rgb.width - w) / 2, y0 = (rgb.height - h) / 2;
  const int n = static_cast<int>(size);
  return io::image_to_tensor(data::resize_image(rgb, n, n, x0, y0, x0 + w, y0 + h));
}

// Posterior means and standard deviations of images [N,3,R,R], a batch at a time.
std::pair<at::Tensor, at::Tensor> encode(pipelines::StableDiffusion& model, const at::Tensor& images) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> means, stds;
  for (int64_t i = 0; i < images.size(0); i += kEncodeBatch) {
    const auto p = model.vae->encode(images.narrow(0, i, std::min(kEncodeBatch, images.size(0) - i))
                                         .to(model.device, model.vae_dtype));
    means.push_back(p.mean.to(at::kFloat));
    stds.push_back(p.std().to(at::kFloat));
  }
  return {at::cat(means), at::cat(stds)};
}

// The training set of one kind (instance or class): posterior moments and each sample's caption.
struct LatentSet {
  at::Tensor mean, std;           // [N,C,h,w] f32 on the model's device
  std::vector<std::string> captions;
  int64_t size() const { return mean.defined() ? mean.size(0) : 0; }
};

// Stage 1a. Instance images from the folder (captions from .txt files or the instance prompt).
LatentSet instance_set(pipelines::StableDiffusion& model, const PersonalizeConfig& c, int64_t resolution) {
  data::FolderOptions fo;
  fo.path = c.instance_dir;
  fo.resolution = static_cast<int>(resolution);
  fo.bucketing = false;
  fo.bucket_step = 8;
  fo.default_caption = c.instance_prompt;
  const data::FolderDataset ds(fo);
  if (ds.size() == 0)
    throw UsageError("--instance-dir " + c.instance_dir + " has no readable PNG images" +
                     (ds.skipped().empty() ? "" : " (" + std::to_string(ds.skipped().size()) + " skipped)"));
  std::vector<at::Tensor> images;
  LatentSet set;
  for (size_t i = 0; i < ds.size(); ++i) {
    const data::Sample s = ds.get(i);
    images.push_back(io::image_to_tensor(s.image.to_8bit().with_channels(3)));
    set.captions.push_back(s.caption);
    if (c.random_flip && ds.flip_allowed(s)) {
      images.push_back(images.back().flip({3}));
      set.captions.push_back(s.caption);
    }
  }
  std::tie(set.mean, set.std) = encode(model, at::cat(images));
  return set;
}

// Stage 1b. Class images: reuse class-NNNN.png in the folder, generate the missing ones.
LatentSet class_set(pipelines::StableDiffusion& model, const PersonalizeConfig& c, const fs::path& dir,
                    int64_t resolution, int64_t& generated) {
  fs::create_directories(dir);
  std::vector<int64_t> missing;
  for (int64_t i = 0; i < c.num_class_images; ++i)
    if (!fs::is_regular_file(dir / class_image_name(i))) missing.push_back(i);
  generated = static_cast<int64_t>(missing.size());
  if (!missing.empty()) {
    log_info("prior preservation: generating " + std::to_string(missing.size()) + " class images of \"" + c.class_prompt +
             "\" into " + dir.string());
    Progress progress("class images", static_cast<int64_t>(missing.size()));
    for (size_t k = 0; k < missing.size();) {
      // A run of consecutive indices is one batch (image i has seed base + i).
      size_t run = 1;
      while (k + run < missing.size() && run < 4 && missing[k + run] == missing[k] + static_cast<int64_t>(run)) ++run;
      pipelines::GenerateOptions g;
      g.prompt = c.class_prompt;
      g.steps = c.class_steps;
      g.cfg_scale = c.class_cfg_scale;
      g.width = g.height = resolution;
      g.batch = static_cast<int64_t>(run);
      g.seed = c.train.seed * 1000003 + static_cast<uint64_t>(missing[k]);
      const auto r = pipelines::generate(model, g);
      for (size_t j = 0; j < run; ++j) {
        io::GenerationParameters p;
        p.prompt = g.prompt;
        p.steps = g.steps;
        p.cfg_scale = g.cfg_scale;
        p.seed = g.seed + j;
        p.width = p.height = static_cast<int>(resolution);
        p.model = model.name;
        write_file_atomic((dir / class_image_name(missing[k + j])).string(),
                          io::encode_png(io::tensor_to_image(r.images[static_cast<int64_t>(j)] * 2 - 1),
                                         {{io::kInfotextKey, io::format_infotext(p)}}));
      }
      k += run;
      progress.update(static_cast<int64_t>(k));
    }
    progress.finish();
  }
  std::vector<at::Tensor> images;
  LatentSet set;
  for (int64_t i = 0; i < c.num_class_images; ++i) {
    images.push_back(square_tensor(io::read_png((dir / class_image_name(i)).string()), resolution));
    set.captions.push_back(c.class_prompt);
  }
  std::tie(set.mean, set.std) = encode(model, at::cat(images));
  return set;
}

// What the run trains, as one module for the Trainer, and how to export it.
struct Trainable : torch::nn::Module {
  struct Adapter {
    std::string component, module;
    nn::LoRAAdapter adapter;
  };
  std::vector<Adapter> adapters;  // LoRA
  at::Tensor vectors;             // TI
};

// Stage 2, LoRA: adapters on the attention blocks' layers (and the text encoder's).
void add_lora_adapters(Trainable& t, pipelines::StableDiffusion& model, const PersonalizeConfig& c) {
  const models::LoRATargets targets = pipelines::lora_targets(model);
  const auto add = [&](const std::string& component, torch::nn::Module& root) {
    for (const auto& item : root.named_modules()) {
      if (!models::lora_on_the_fly_capable(component, item.key())) continue;
      auto* lin = dynamic_cast<torch::nn::LinearImpl*>(item.value().get());
      auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(item.value().get());
      if (conv && (conv->weight.size(2) != 1 || conv->weight.size(3) != 1)) conv = nullptr;
      if (!lin && !conv) continue;
      if (c.lora_targets == "attention" && component == "unet" && item.key().find(".attn") == std::string::npos) continue;
      const at::Tensor& w = lin ? lin->weight : conv->weight;
      nn::LoRAAdapter a(nn::LoRAAdapterOptions{.in = w.size(1), .out = w.size(0), .rank = c.lora_rank,
                                               .alpha = c.lora_alpha, .conv = conv != nullptr});
      a->to(w.device());
      nn::attach_lora(*item.value(), a);
      t.register_module(models::kohya_lora_name(targets, component, item.key()), a);
      t.adapters.push_back({component, item.key(), a});
    }
  };
  add("unet", *model.unet);
  if (c.train_text_encoder) add("text_encoder", *model.text_encoder);
}

// Stage 2, Textual Inversion: new vectors from the initializer's token embeddings.
void add_embedding_vectors(Trainable& t, pipelines::StableDiffusion& model, const PersonalizeConfig& c) {
  auto& emb = *model.text_encoder->text_model->embeddings;
  if (emb.extra_token_embeddings.defined())
    throw UsageError("textual inversion: the model already has added embeddings");
  const std::vector<int64_t> init_ids = model.tokenizer->encode(c.initializer);
  if (init_ids.empty()) throw UsageError("--initializer \"" + c.initializer + "\" has no tokens");
  const at::Tensor table = emb.token_embedding->weight.detach();
  const int64_t n = static_cast<int64_t>(init_ids.size());
  std::vector<at::Tensor> rows;
  for (int64_t i = 0; i < c.num_vectors; ++i) rows.push_back(table[init_ids[static_cast<size_t>(i * n / c.num_vectors)]]);
  t.vectors = t.register_parameter("emb_params", at::stack(rows).to(at::kFloat).clone());
  emb.extra_token_embeddings = t.vectors;  // the same tensor: the optimiser's updates are seen by the encoder
  if (!model.embeddings) model.embeddings = std::make_shared<tokenizers::EmbeddingTokens>();
  model.embeddings->add(c.placeholder, model.tokenizer->encode(c.placeholder), table.size(0), c.num_vectors);
}

// [N,77] ids of captions (placeholders spliced in), no emphasis parsing.
at::Tensor caption_ids(const pipelines::StableDiffusion& model, const std::vector<std::string>& captions) {
  std::vector<at::Tensor> rows;
  tokenizers::ChunkOptions o;
  o.emphasis = false;
  o.pad_id = model.tokenizer->eos_id();  // as encode_prompt pads (a trained vocabulary has its own EOS)
  o.embeddings = model.embeddings.get();
  for (const auto& caption : captions) {
    const auto tokens = tokenizers::tokenize_weighted(*model.tokenizer, caption, o);
    if (tokens.chunks.size() > 1) log_warn("caption longer than 75 tokens, truncated: " + caption);
    rows.push_back(torch::tensor(tokens.chunks.front(), at::kLong));
  }
  return at::stack(rows).to(model.device);
}

void write_samples(pipelines::StableDiffusion& model, const PersonalizeConfig& c, int64_t resolution,
                       const fs::path& out, int64_t step) {
  std::vector<io::Image> images;
  std::vector<std::string> shown;
  const auto prompts = c.validation_prompts.empty() ? std::vector<std::string>{c.instance_prompt} : c.validation_prompts;
  for (const auto& prompt : prompts) {
    pipelines::GenerateOptions g;
    g.prompt = prompt;
    g.steps = c.class_steps;
    g.cfg_scale = c.class_cfg_scale;
    g.width = g.height = resolution;
    g.batch = 4;
    g.seed = 0;
    const auto r = pipelines::generate(model, g);
    for (int64_t i = 0; i < g.batch; ++i) {
      images.push_back(io::tensor_to_image(r.images[i] * 2 - 1));
      shown.push_back(i == 0 ? prompt : "");
    }
  }
  const std::string path = write_sample_grid(images, shown, resolution, out / "samples", step);
  log_info("samples at step " + std::to_string(step) + ": " + path);
}

// Stage 4, DreamBooth: the base diffusers folder with the trained components' weights replaced.
std::string export_full_model(pipelines::StableDiffusion& model, const PersonalizeConfig& c, const fs::path& out,
                              const std::map<std::string, std::string>& meta) {
  const fs::path dst = out / "model";
  const fs::path tmp = out / "model.tmp";
  fs::remove_all(tmp);
  // The pipeline: model_index.json and the component folders (not the base's model card,
  // sample images or metrics, which describe another model).
  fs::create_directories(tmp);
  for (const auto& entry : fs::directory_iterator(c.model))
    if (entry.is_directory() || entry.path().filename() == "model_index.json")
      fs::copy(entry.path(), tmp / entry.path().filename(), fs::copy_options::recursive);
  const auto replace = [&](const std::string& component, torch::nn::Module& m, const std::string& file) {
    for (const auto& entry : fs::directory_iterator(tmp / component)) {
      const auto ext = entry.path().extension();
      if (ext == ".safetensors" || ext == ".bin" || (ext == ".json" && entry.path().filename() != "config.json"))
        fs::remove(entry.path());
    }
    io::save_safetensors((tmp / component / file).string(), nn::state_dict(m, save_dtype(c)), {{"format", "pt"}});
  };
  replace("unet", *model.unet, "diffusion_pytorch_model.safetensors");
  if (c.train_text_encoder) replace("text_encoder", *model.text_encoder, "model.safetensors");
  write_file_atomic((tmp / "personalization.json").string(), json(meta).dump(2) + "\n");
  fs::remove_all(dst);
  fs::rename(tmp, dst);
  return dst.string();
}

}  // namespace

const char* method_name(PersonalizeMethod m) {
  switch (m) {
    case PersonalizeMethod::DreamBooth: return "dreambooth";
    case PersonalizeMethod::LoRA: return "lora";
    case PersonalizeMethod::TextualInversion: return "textual-inversion";
  }
  return "?";
}

void PersonalizeConfig::validate() const {
  std::vector<std::string> problems;
  const bool ti = method == PersonalizeMethod::TextualInversion;
  if (model.empty()) problems.push_back("--model is required");
  else if (!fs::exists(model)) problems.push_back("--model " + model + " does not exist");
  if (instance_dir.empty()) problems.push_back("--instance-dir is required");
  else if (!fs::is_directory(instance_dir)) problems.push_back("--instance-dir " + instance_dir + " is not a folder");
  if (instance_prompt.empty()) problems.push_back("--instance-prompt is required");
  if (ti) {
    if (placeholder.empty()) problems.push_back("--placeholder is required for textual inversion");
    else if (instance_prompt.find(placeholder) == std::string::npos)
      problems.push_back("--instance-prompt must contain the placeholder \"" + placeholder + "\"");
    if (initializer.empty()) problems.push_back("--initializer is required for textual inversion");
    if (num_vectors < 1 || num_vectors > 75) problems.push_back("--num-vectors must be in [1, 75]");
    if (!class_prompt.empty()) problems.push_back("textual inversion has no prior preservation (drop --class-prompt)");
    if (train_text_encoder) problems.push_back("textual inversion trains only its vectors (drop --train-text-encoder)");
  }
  if (method == PersonalizeMethod::DreamBooth && !lora && !model.empty() && fs::exists(model) && !is_diffusers_folder(model))
    problems.push_back("full DreamBooth writes a diffusers folder and needs one as --model (with a single file, add --lora)");
  if (!class_prompt.empty() && prior_loss_weight > 0 && num_class_images < 1)
    problems.push_back("--num-class-images must be >= 1 with a class prompt");
  if (prior_loss_weight < 0) problems.push_back("--prior-loss-weight must be >= 0");
  if (lora_rank < 1) problems.push_back("--rank must be >= 1");
  if (lora_alpha < 0) problems.push_back("--alpha must be >= 0");
  if (lora_targets != "transformer" && lora_targets != "attention")
    problems.push_back("--lora-targets must be transformer or attention");
  if (resolution != 0 && (resolution < 8 || resolution % 8 != 0)) problems.push_back("--resolution must be a multiple of 8");
  if (batch_size < 1) problems.push_back("--batch must be >= 1");
  if (class_steps < 1) problems.push_back("--sample-steps must be >= 1");
  if (save_dtype != "f16" && save_dtype != "f32") problems.push_back("--save-dtype must be f16 or f32");
  if (train.steps < 1) problems.push_back("--steps must be >= 1");
  if (train.autocast != "none" && train.autocast != "bf16") problems.push_back("--autocast must be none or bf16");
  if (!(train.lr > 0)) problems.push_back("--lr must be > 0");
  if (train.grad_accum < 1) problems.push_back("--grad-accum must be >= 1");
  if (train.checkpoint_every < 1) problems.push_back("--checkpoint-every must be >= 1");
  recipe::throw_if_problems(std::string("train ") + method_name(method), problems);
}

PersonalizeResult run_personalize(const PersonalizeConfig& c, const PersonalizeOptions& o) {
  c.validate();
  if (o.out_dir.empty()) throw UsageError("an output folder is required");
  const fs::path out(o.out_dir);
  fs::create_directories(out);
  const bool ti = c.method == PersonalizeMethod::TextualInversion;
  const bool use_lora = c.method == PersonalizeMethod::LoRA || (c.method == PersonalizeMethod::DreamBooth && c.lora);
  const bool prior = !ti && !c.class_prompt.empty() && c.prior_loss_weight > 0;
  PersonalizeResult result;

  pipelines::ModelSource source;
  source.model = c.model;
  pipelines::StableDiffusion model = pipelines::load_stable_diffusion(source);
  if (model.is_sdxl()) throw UsageError("personalisation training supports SD 1.x/2.x models; SDXL is not supported yet");
  if (model.is_inpainting()) throw UsageError("personalisation training needs a text-to-image UNet, not an inpainting one");
  const int64_t resolution = c.resolution > 0 ? c.resolution : model.native_size();
  for (auto& p : model.unet->parameters()) p.set_requires_grad(false);
  for (auto& p : model.text_encoder->parameters()) p.set_requires_grad(false);
  for (auto& p : model.vae->parameters()) p.set_requires_grad(false);

  // 1. Data.
  const LatentSet instances = instance_set(model, c, resolution);
  result.instance_images = instances.size();
  LatentSet classes;
  if (prior) {
    const fs::path class_dir = c.class_dir.empty() ? out / "class_images" : fs::path(c.class_dir);
    classes = class_set(model, c, class_dir, resolution, result.class_images_generated);
    result.class_images = classes.size();
  }
  if (ti)
    for (const auto& caption : instances.captions)
      if (caption.find(c.placeholder) == std::string::npos)
        throw UsageError("caption \"" + caption + "\" lacks the placeholder \"" + c.placeholder + "\"");

  // 2. Trainable parameters (seeded: a resumed run builds the same ones before loading).
  torch::manual_seed(c.train.seed);
  Trainable trainable;
  if (use_lora) {
    add_lora_adapters(trainable, model, c);
  } else if (ti) {
    add_embedding_vectors(trainable, model, c);
  } else {
    trainable.register_module("unet", model.unet);
    for (auto& p : model.unet->parameters()) p.set_requires_grad(true);
    if (c.train_text_encoder) {
      trainable.register_module("text_encoder", model.text_encoder);
      for (auto& p : model.text_encoder->parameters()) p.set_requires_grad(true);
    }
  }
  const bool text_grad = c.train_text_encoder || ti;
  const at::Tensor instance_ids = caption_ids(model, instances.captions);
  const at::Tensor class_ids = prior ? caption_ids(model, classes.captions) : at::Tensor();
  at::Tensor instance_context, class_context;  // fixed text conditioning when the text side is frozen
  if (!text_grad) {
    torch::NoGradGuard no_grad;
    instance_context = models::sd_prompt_embeds(model.text_encoder, instance_ids, 0);
    if (prior) class_context = models::sd_prompt_embeds(model.text_encoder, class_ids, 0);
  }

  Trainer trainer(trainable, c.train, out.string());
  trainer.extra_state = {{"method", method_name(c.method)}, {"model", c.model}, {"instance_prompt", c.instance_prompt},
                         {"class_prompt", c.class_prompt}, {"lora_rank", c.lora_rank}, {"resolution", resolution}};
  trainer.resume_if_allowed(o.resume, out.string());

  // 3. Train.
  const at::Tensor acp = schedulers::alphas_cumprod(model.scheduler).to(model.device);
  const int64_t T = model.scheduler.num_train_timesteps, B = c.batch_size;
  // SD 1.x/2.x: v_prediction where the scheduler says so, epsilon otherwise.
  const auto type = model.scheduler.prediction_type == "v_prediction" ? schedulers::PredictionType::VPrediction
                                                                      : schedulers::PredictionType::Epsilon;
  const double sf = model.vae->config.scaling_factor, shift = model.vae->config.shift_factor.value_or(0.0);
  const auto half_loss = [&](const LatentSet& set, const at::Tensor& ids, const at::Tensor& context, Rng& rng) {
    std::vector<int64_t> index(static_cast<size_t>(B)), t(static_cast<size_t>(B));
    for (auto& i : index) i = rng.randint(0, set.size());
    for (auto& s : t) s = rng.randint(0, T);
    const at::Tensor idx = at::tensor(index, at::kLong).to(model.device), ts = at::tensor(t, at::kLong).to(model.device);
    const at::Tensor m = set.mean.index_select(0, idx), sd = set.std.index_select(0, idx);
    const at::Tensor x0 = (m + sd * rng.randn(m.sizes()).to(model.device) - shift) * sf;
    const at::Tensor eps = rng.randn(m.sizes()).to(model.device);
    const at::Tensor a = acp.index_select(0, ts);  // [B]: alphas_cumprod per sample
    const at::Tensor xt = schedulers::add_noise(type, x0, eps, a);
    const at::Tensor ctx = context.defined() ? context.index_select(0, idx)
                                             : models::sd_prompt_embeds(model.text_encoder, ids.index_select(0, idx), 0);
    const at::Tensor target = schedulers::training_target(type, x0, eps, a);
    return torch::mse_loss(model.unet->forward(xt, ts.to(at::kFloat), ctx).to(at::kFloat), target);
  };
  const Trainer::LossFn loss = [&](int64_t, int64_t, Rng& rng) {
    at::Tensor l = half_loss(instances, instance_ids, instance_context, rng);
    if (prior) l = l + c.prior_loss_weight * half_loss(classes, class_ids, class_context, rng);
    return l;
  };
  log_info(std::string(method_name(c.method)) + (use_lora && c.method == PersonalizeMethod::DreamBooth ? " (LoRA)" : "") +
           ": " + std::to_string(instances.size()) + " instance latents" +
           (prior ? ", " + std::to_string(classes.size()) + " class latents (prior weight " +
                        std::to_string(c.prior_loss_weight) + ")"
                  : "") +
           ", " + std::to_string(trainable.parameters().size()) + " trainable tensors");
  const auto outcome = trainer.run(loss, [&](int64_t step) { write_samples(model, c, resolution, out, step); });
  if (outcome == Trainer::Outcome::Interrupted) {
    result.interrupted = true;
    return result;
  }
  trainer.apply_ema();  // the EMA weights are the ones exported

  // 4. Export.
  const std::map<std::string, std::string> meta = {
      {"genvis_method", method_name(c.method)}, {"genvis_base_model", fs::path(c.model).filename().string()},
      {"genvis_steps", std::to_string(trainer.step())}, {"genvis_instance_prompt", c.instance_prompt},
      {"genvis_class_prompt", c.class_prompt}, {"genvis_prior_loss_weight", std::to_string(prior ? c.prior_loss_weight : 0.0)}};
  if (use_lora) {
    std::vector<models::LoRAModule> modules;
    for (const auto& a : trainable.adapters)
      modules.push_back({a.component, a.module, a.adapter->lora_down.detach(), a.adapter->lora_up.detach(),
                         a.adapter->options.alpha});
    const std::string name = c.output_name.empty() ? out.filename().string() : c.output_name;
    result.output = (out / (name + ".safetensors")).string();
    models::save_lora_kohya(result.output, pipelines::lora_targets(model), modules, meta, save_dtype(c));
  } else if (ti) {
    models::EmbeddingFile e;
    e.name = c.placeholder;
    e.vectors = trainable.vectors.detach();
    result.output = (out / (c.placeholder + ".safetensors")).string();
    models::save_embedding_file(result.output, e, meta);
  } else {
    result.output = export_full_model(model, c, out, meta);
  }
  log_info("wrote " + result.output);
  return result;
}

}  // namespace genvis::train
