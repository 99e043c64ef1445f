#include "pipelines/stable_diffusion_pipeline.h"

#include "core/error.h"
#include "core/log.h"
#include "genvis/version.h"
#include "pipelines/adapters.h"
#include "schedulers/registry.h"

#include <filesystem>
#include <numeric>

namespace genvis::pipelines {

namespace {

std::pair<int64_t, int64_t> size_pair(const nlohmann::json& extras, const char* key) {
  const auto& v = extras.at(key);
  if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() || !v[1].is_number_integer())
    throw UsageError(std::string("'extras.") + key + "': must be [height, width] integers");
  return {v[0].get<int64_t>(), v[1].get<int64_t>()};
}

std::string multiplier_text(double m) { return std::to_string(m); }

}  // namespace

StableDiffusionPipeline::StableDiffusionPipeline(StableDiffusion model, std::string class_name)
    : model_(std::move(model)) {
  PipelineInfo& i = info_;
  i.class_name = std::move(class_name);
  const int64_t cross = model_.unet->config.cross_attention_dim.empty() ? 0 : model_.unet->config.cross_attention_dim.front();
  i.family = model_.is_sdxl() ? "sdxl" : cross == 1024 ? "sd2" : cross == 768 ? "sd1" : "sd";
  i.name = model_.name;
  i.quant = model_.quant;
  i.native_width = i.native_height = model_.native_size();
  // Latents are image / downscale factor; sizes stay multiples of 8 as in diffusers.
  i.size_multiple = std::lcm<int64_t>(8, model_.vae->downscale_factor());
  auto& s = i.supports;
  s.text_to_image = !model_.is_inpainting();
  s.image_to_image = !model_.is_inpainting();
  s.inpainting = true;
  s.inpainting_only = model_.is_inpainting();
  s.negative_prompt = s.guidance = s.steps = s.sampler = s.schedule = true;
  s.adapters = s.embeddings = true;
  s.cache_interval = true;
  i.defaults = {.steps = 20, .guidance = 7.0, .sampler = "euler", .schedule = "default", .strength = 0.75};
  for (const auto& info : schedulers::samplers())
    if (info.space != schedulers::SamplerSpace::Flow) i.samplers.push_back(info.name);
  i.extras = {"clip_skip", "vae_tiling", "vae_tile_size", "original_size", "target_size", "crop_top_left"};
}

GenerateOptions StableDiffusionPipeline::options_for(const Request& r,
                                                     std::vector<std::pair<std::string, AdapterRequest>>* loras) const {
  GenerateOptions g;
  std::vector<PromptLoRA> tags;
  g.prompt = extract_lora_tags(r.prompt, tags);
  g.negative_prompt = extract_lora_tags(r.negative_prompt, tags);
  for (const auto& p : r.prompts) g.prompts.push_back(extract_lora_tags(p, tags));
  if (loras) {
    for (const auto& a : r.adapters) {
      if (!std::filesystem::is_regular_file(a.file)) throw UsageError("'adapters': no such LoRA file " + a.file);
      loras->emplace_back(a.file, a);
    }
    for (const auto& tag : tags) {
      if (r.lora_dir.empty()) throw UsageError("the prompt has <lora:" + tag.name + ":...>: give 'lora_dir'");
      loras->emplace_back(find_lora_file(r.lora_dir, tag.name),
                          AdapterRequest{tag.name, tag.unet_multiplier, tag.text_encoder_multiplier});
    }
  }
  g.steps = *r.steps;
  g.sampler = r.sampler;
  g.schedule = r.schedule;
  g.cfg_scale = *r.guidance;
  g.seed = r.seed;
  g.width = *r.width;
  g.height = *r.height;
  g.batch = r.batch;
  g.init_image = r.init_image;
  g.mask = r.mask;
  if (r.strength) g.strength = *r.strength;
  g.init_noise = r.init_noise;
  g.posterior_noise = r.posterior_noise;
  g.cache_interval = r.cache_interval;
  const auto& x = r.extras;
  const auto integer = [&](const char* key, auto& out) {
    if (!x.contains(key)) return;
    if (!x.at(key).is_number_integer()) throw UsageError(std::string("'extras.") + key + "': must be an integer");
    out = x.at(key).get<std::remove_reference_t<decltype(out)>>();
  };
  integer("clip_skip", g.clip_skip);
  integer("vae_tile_size", g.vae_tile_size);
  if (x.contains("vae_tiling")) {
    if (!x.at("vae_tiling").is_boolean()) throw UsageError("'extras.vae_tiling': must be true or false");
    g.vae_tiling = x.at("vae_tiling").get<bool>();
  }
  if (x.contains("original_size")) g.original_size = size_pair(x, "original_size");
  if (x.contains("target_size")) g.target_size = size_pair(x, "target_size");
  if (x.contains("crop_top_left")) g.crop_top_left = size_pair(x, "crop_top_left");
  return g;
}

void StableDiffusionPipeline::apply_adapters(const Request& r,
                                             const std::vector<std::pair<std::string, AdapterRequest>>& loras) {
  std::string wanted;
  for (const auto& [file, a] : loras)
    wanted += file + ":" + multiplier_text(a.unet_multiplier) + ":" + multiplier_text(a.text_encoder_multiplier) + ";";
  if (!wanted.empty()) wanted = r.lora_mode + "|" + wanted;
  if (wanted != applied_loras_) {
    if (!applied_loras_.empty())
      throw UsageError("'adapters': this pipeline already has other LoRAs applied; load the model again to change them");
    const auto mode = r.lora_mode == "merge" ? models::LoRAMode::Merge : models::LoRAMode::OnTheFly;
    for (const auto& [file, a] : loras) load_lora(model_, file, a.unet_multiplier, mode, a.text_encoder_multiplier);
    // Merged LoRAs changed the float weights: the int8 copies are made again from them.
    if (!model_.quant.empty() && mode == models::LoRAMode::Merge && !loras.empty()) quantize_int8(model_);
    applied_loras_ = wanted;
  }
  if (!r.embeddings_dir.empty() && !embedding_dirs_.count(r.embeddings_dir)) {
    if (!std::filesystem::is_directory(r.embeddings_dir))
      throw UsageError("'embeddings_dir': " + r.embeddings_dir + " is not a folder");
    const size_t n = load_embeddings(model_, r.embeddings_dir);
    log_info("embeddings: " + std::to_string(n) + " from " + r.embeddings_dir);
    embedding_dirs_.insert(r.embeddings_dir);
  }
}

Result StableDiffusionPipeline::run(const Request& r, const Callbacks& callbacks) {
  std::vector<std::pair<std::string, AdapterRequest>> loras;
  GenerateOptions g = options_for(r, &loras);
  g.validate();  // before adapters are applied
  apply_adapters(r, loras);
  const GenerateResult out = pipelines::generate(model_, g, callbacks);

  Result result;
  result.samples = out.images.to(at::kCPU, at::kFloat);
  result.latents = out.latents;
  io::GenerationParameters p;
  p.prompt = r.prompt;  // with its <lora:...> tags, as A1111 writes it
  p.negative_prompt = g.negative_prompt;
  p.steps = g.steps;
  p.sampler = schedulers::sampler_info(g.sampler).display;
  p.schedule = schedulers::schedule_display_name(schedulers::schedule_spacing(g.schedule));
  p.cfg_scale = g.cfg_scale;
  p.width = static_cast<int>(g.width);
  p.height = static_cast<int>(g.height);
  p.model = model_.name;
  if (!loras.empty()) {
    std::string list;
    for (const auto& [file, a] : loras)
      list += (list.empty() ? "" : ", ") + std::filesystem::path(file).stem().string() + ": " +
              multiplier_text(a.unet_multiplier);
    p.extra.emplace_back("LoRA", list);
  }
  if (g.init_image.defined()) p.extra.emplace_back("Denoising strength", std::to_string(g.strength));
  if (g.clip_skip > 0) p.extra.emplace_back("Clip skip", std::to_string(g.clip_skip));
  if (g.cache_interval > 1) p.extra.emplace_back("DeepCache interval", std::to_string(g.cache_interval));
  p.extra.emplace_back("Version", std::string("genvis ") + GENVIS_VERSION);
  for (int64_t i = 0; i < g.batch; ++i) {
    p.seed = g.seed + static_cast<uint64_t>(i);
    if (!r.prompts.empty()) p.prompt = r.prompts[static_cast<size_t>(i)];
    result.parameters.push_back(p);
  }
  return result;
}

std::unique_ptr<Pipeline> load_stable_diffusion_pipeline(const ModelSource& source) {
  std::string class_name = source.class_name;
  StableDiffusion model = load_stable_diffusion(source);
  if (class_name.empty()) class_name = model.is_sdxl() ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline";
  return std::make_unique<StableDiffusionPipeline>(std::move(model), class_name);
}

}  // namespace genvis::pipelines
