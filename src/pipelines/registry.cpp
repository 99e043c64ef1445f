#include "pipelines/registry.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "io/weights.h"
#include "models/detect.h"
#include "pipelines/attngan/attngan_pipeline.h"
#include "pipelines/common/quantize.h"
#include "pipelines/dalle/dalle_pipeline.h"
#include "pipelines/dfgan/dfgan_pipeline.h"
#include "pipelines/genvis_video/genvis_video_pipeline.h"
#include "pipelines/stable_diffusion_pipeline.h"
#include "pipelines/wan/wan_pipeline.h"

#include <filesystem>
#include <mutex>

namespace genvis::pipelines {

namespace {

// The built-in families: one line each.
std::vector<PipelineRegistration> builtin_pipelines() {
  return {
      {"StableDiffusionPipeline", "Stable Diffusion 1.x/2.x (txt2img, img2img, inpainting)", load_stable_diffusion_pipeline},
      {"StableDiffusionImg2ImgPipeline", "Stable Diffusion 1.x/2.x (as StableDiffusionPipeline)", load_stable_diffusion_pipeline},
      {"StableDiffusionInpaintPipeline", "Stable Diffusion inpainting UNets (9 input channels)", load_stable_diffusion_pipeline},
      {"StableDiffusionXLPipeline", "Stable Diffusion XL base (txt2img, img2img, inpainting)", load_stable_diffusion_pipeline},
      {"StableDiffusionXLImg2ImgPipeline", "Stable Diffusion XL (base models; refiners are refused)", load_stable_diffusion_pipeline},
      {"StableDiffusionXLInpaintPipeline", "Stable Diffusion XL inpainting", load_stable_diffusion_pipeline},
      {"WanPipeline", "Wan 2.1 text-to-video and video-to-video (UMT5, flow transformer, causal 3D VAE)", load_wan_pipeline},
      {"WanImageToVideoPipeline", "Wan 2.1 image-to-video (first frame + CLIP image states)", load_wan_pipeline},
      {kGenvisVideoClass, "genvis's own video model: spacetime-patch DiT (text-to-video, first frame, continuation)",
       load_genvis_video_pipeline},
      {kDalleClass, "genvis's DALL·E: dVAE image tokens drawn one at a time by a text+image-token transformer, "
                    "optionally reranked by a contrastive encoder",
       load_dalle_pipeline},
      {kDFGANClass, "genvis's DF-GAN: one-pass text-to-image GAN conditioned on a DAMSM sentence vector",
       load_dfgan_pipeline},
      {kAttnGANClass, "genvis's AttnGAN: multi-stage text-to-image GAN with word attention (DAMSM text encoder)",
       load_attngan_pipeline},
  };
}

struct Registry {
  std::mutex mutex;
  std::vector<PipelineRegistration> entries = builtin_pipelines();
};

Registry& registry() {
  static Registry r;
  return r;
}

std::string known_classes() {
  std::string s;
  for (const auto& e : registered_pipelines()) s += (s.empty() ? "" : ", ") + e.class_name;
  return s;
}

}  // namespace

void register_pipeline(PipelineRegistration registration) {
  if (registration.class_name.empty() || !registration.load)
    throw UsageError("register_pipeline: a family needs a class name and a loader");
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  for (const auto& e : r.entries)
    if (e.class_name == registration.class_name)
      throw UsageError("pipeline class '" + registration.class_name + "' is already registered");
  r.entries.push_back(std::move(registration));
}

std::vector<PipelineRegistration> registered_pipelines() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return r.entries;
}

const PipelineRegistration* find_pipeline(const std::string& class_name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  for (const auto& e : r.entries)
    if (e.class_name == class_name) return &e;
  return nullptr;
}

std::string pipeline_class_of(const ModelSource& source) {
  namespace fs = std::filesystem;
  if (!source.class_name.empty()) return source.class_name;
  if (source.model.empty()) return "StableDiffusionPipeline";  // components alone
  if (is_directory(source.model)) {
    const std::string index = (fs::path(source.model) / "model_index.json").string();
    const std::string wan_config = (fs::path(source.model) / "config.json").string();
    if (!file_exists(index) && file_exists(wan_config)) {
      // The Wan 2.1 release's folder: its transformer's config names WanModel and the task.
      const nlohmann::json j = config::read_file(wan_config);
      if (j.is_object() && j.value("_class_name", "") == "WanModel")
        return j.value("model_type", "t2v") == "i2v" ? "WanImageToVideoPipeline" : "WanPipeline";
    }
    if (!file_exists(index)) {
      // A folder of components without an index: Stable Diffusion's loader says what is missing.
      return "StableDiffusionPipeline";
    }
    const nlohmann::json j = config::read_file(index);
    if (!j.is_object() || !j.contains("_class_name") || !j["_class_name"].is_string())
      throw LoadError(index, "_class_name", "missing (the pipeline class, e.g. StableDiffusionPipeline)");
    return j["_class_name"].get<std::string>();
  }
  if (!file_exists(source.model)) throw LoadError(source.model, "no such model file or folder");
  const auto reader = io::open_weights(source.model);
  const models::LayoutGuess guess = models::detect_layout(reader->tensors(), reader->metadata(), reader->format());
  // A file that drives a pipeline (an original Stable Diffusion checkpoint, a Wan transformer);
  // for anything else (a component, an adapter, an unknown file) Stable Diffusion's loader names
  // what it looked for.
  return guess.pipeline.empty() ? "StableDiffusionPipeline" : guess.pipeline;
}

std::unique_ptr<Pipeline> load_pipeline(const ModelSource& source) {
  const std::string class_name = pipeline_class_of(source);
  const PipelineRegistration* family = find_pipeline(class_name);
  if (!family)
    throw UsageError((source.model.empty() ? std::string() : source.model + ": ") + "no pipeline registered for class '" +
                     class_name + "' (known: " + known_classes() + ")");
  const std::string mode = quant::requested(source);  // a bad mode or device is refused before loading
  ModelSource s = source;
  s.class_name = class_name;
  std::unique_ptr<Pipeline> p = family->load(s);
  if (!mode.empty() && p->info().quant != mode)
    throw UsageError("--quant " + mode + ": " + class_name + " models have no " + mode +
                     " path (Stable Diffusion, Wan and genvis video models do)");
  return p;
}

}  // namespace genvis::pipelines
