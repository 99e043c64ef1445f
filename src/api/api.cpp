// The public C++ API (include/genvis/genvis.hpp) over the library's layers: requests and images
// are converted to the pipelines' tensors, library errors to genvis::api::Error.
#include "genvis/genvis.hpp"

#include "api/convert.h"
#include "core/device.h"
#include "core/error.h"
#include "eval/judges.h"
#include "eval/r_precision_run.h"
#include "genvis/version.h"
#include "io/image.h"
#include "io/image_tensor.h"
#include "io/infotext.h"
#include "pipelines/registry.h"
#include "pipelines/shipped_models.h"
#include "train/recipes.h"

#include <c10/util/Exception.h>

namespace genvis::api {

struct Pipeline::Impl {
  std::unique_ptr<pipelines::Pipeline> pipeline;
};

namespace detail {

[[noreturn]] void rethrow() {
  try {
    throw;
  } catch (const api::Error&) {
    throw;
  } catch (const pipelines::Cancelled& e) {
    throw Error(ErrorCode::Cancelled, e.what());
  } catch (const genvis::Error& e) {
    throw Error(static_cast<ErrorCode>(e.exit_code()), e.what());
  } catch (const c10::Error& e) {
    const std::string m = e.what_without_backtrace();
    throw Error(ErrorCode::Runtime, m.substr(0, m.find('\n')));
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::Runtime, "out of memory");
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Runtime, e.what());
  }
}

at::Tensor image_tensor(const Image& image, int channels, const char* field) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3)
    throw UsageError(std::string("'") + field + "': width * height * 3 bytes of RGB expected (" +
                     std::to_string(image.width) + "x" + std::to_string(image.height) + ", " +
                     std::to_string(image.rgb.size()) + " bytes)");
  io::Image im;
  im.width = image.width;
  im.height = image.height;
  im.channels = 3;
  im.pixels.assign(image.rgb.begin(), image.rgb.end());
  return io::image_to_tensor(channels == 3 ? im : im.with_channels(channels));  // [1,C,H,W] in [-1,1]
}

Image image_of(const at::Tensor& sample, const std::string& parameters) {
  const io::Image im = io::tensor_to_image(sample * 2 - 1);  // [3,H,W] in [0,1]
  Image out;
  out.width = im.width;
  out.height = im.height;
  out.rgb.assign(im.pixels.begin(), im.pixels.end());
  out.parameters = parameters;
  return out;
}

pipelines::Request request_of(const GenerateRequest& r) {
  pipelines::Request q;
  q.prompt = r.prompt;
  q.negative_prompt = r.negative_prompt;
  q.seed = r.seed;
  if (r.steps) q.steps = *r.steps;
  q.guidance = r.guidance;
  q.sampler = r.sampler;
  q.schedule = r.schedule;
  if (r.width) q.width = *r.width;
  if (r.height) q.height = *r.height;
  if (r.num_frames) q.num_frames = *r.num_frames;
  q.batch = r.batch;
  if (r.init_image) q.init_image = image_tensor(*r.init_image, 3, "init_image");
  if (r.mask) q.mask = (image_tensor(*r.mask, 1, "mask") + 1) / 2;
  q.strength = r.strength;
  for (const auto& l : r.loras) q.adapters.push_back({l.file, l.weight, l.weight});
  q.lora_dir = r.lora_dir;
  q.embeddings_dir = r.embeddings_dir;
  try {
    q.extras = nlohmann::json::parse(r.extras_json.empty() ? "{}" : r.extras_json);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(std::string("'extras': not valid JSON: ") + e.what());
  }
  return q;
}

GenerateResult result_of(const pipelines::Result& r) {
  GenerateResult out;
  for (int64_t i = 0; i < r.samples.size(0); ++i) {
    const std::string parameters =
        r.parameters.empty() ? "" : io::format_infotext(r.parameters[static_cast<size_t>(i)]);
    if (!r.is_video()) {
      out.images.push_back(image_of(r.samples[i], parameters));
      continue;
    }
    const at::Tensor v = r.samples[i];  // [3,T,H,W]
    Video video;
    video.frames = static_cast<int>(v.size(1));
    video.height = static_cast<int>(v.size(2));
    video.width = static_cast<int>(v.size(3));
    video.parameters = parameters;
    for (int64_t t = 0; t < v.size(1); ++t) {
      const Image frame = image_of(v.select(1, t), "");
      video.rgb.insert(video.rgb.end(), frame.rgb.begin(), frame.rgb.end());
    }
    out.videos.push_back(std::move(video));
  }
  return out;
}

}  // namespace detail

using detail::rethrow;

Image read_png(const std::string& path) {
  try {
    const io::Image im = io::read_png(path).to_8bit().with_channels(3);
    Image out;
    out.width = im.width;
    out.height = im.height;
    out.rgb.assign(im.pixels.begin(), im.pixels.end());
    for (const auto& [key, text] : io::read_png_text(path))
      if (key == io::kInfotextKey) out.parameters = text;
    return out;
  } catch (...) {
    rethrow();
  }
}

void write_png(const Image& image, const std::string& path) {
  try {
    if (image.width <= 0 || image.height <= 0 ||
        image.rgb.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3)
      throw UsageError("write_png: width * height * 3 bytes of RGB expected");
    io::Image im;
    im.width = image.width;
    im.height = image.height;
    im.channels = 3;
    im.pixels.assign(image.rgb.begin(), image.rgb.end());
    io::PngText text;
    if (!image.parameters.empty()) text.emplace_back(io::kInfotextKey, image.parameters);
    io::write_png(path, im, text);
  } catch (...) {
    rethrow();
  }
}

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;
Pipeline::~Pipeline() = default;

Pipeline Pipeline::load(const LoadOptions& o) {
  try {
    pipelines::ModelSource s;
    s.model = o.model;
    s.class_name = o.pipeline;
    s.unet = o.unet;
    s.vae = o.vae;
    s.text_encoder = o.text_encoder;
    s.text_encoder_2 = o.text_encoder_2;
    s.vocab = o.vocab;
    s.image_encoder = o.image_encoder;
    s.model_config = o.model_config;
    s.scheduler_config = o.scheduler_config;
    if (s.model.empty() && s.unet.empty() && s.vae.empty() && s.text_encoder.empty())
      s.model = pipelines::find_default_model();
    const ComputePolicy policy = resolve_policy(o.device, o.dtype);
    s.device = policy.device;
    s.dtype = policy.dtype;
    auto impl = std::make_unique<Impl>();
    impl->pipeline = pipelines::load_pipeline(s);
    return Pipeline(std::move(impl));
  } catch (...) {
    rethrow();
  }
}

PipelineInfo Pipeline::info() const {
  const pipelines::PipelineInfo& i = impl_->pipeline->info();
  PipelineInfo out;
  out.class_name = i.class_name;
  out.family = i.family;
  out.name = i.name;
  out.native_width = static_cast<int>(i.native_width);
  out.native_height = static_cast<int>(i.native_height);
  out.image_to_image = i.supports.image_to_image;
  out.inpainting = i.supports.inpainting;
  out.video = i.supports.video;
  out.negative_prompt = i.supports.negative_prompt;
  out.default_steps = static_cast<int>(i.defaults.steps);
  out.default_guidance = i.defaults.guidance;
  out.default_sampler = i.defaults.sampler;
  out.samplers = i.samplers;
  out.json = i.to_json().dump();
  return out;
}

GenerateResult Pipeline::generate(const GenerateRequest& request, const GenerateCallbacks& callbacks) {
  try {
    pipelines::Callbacks c;
    if (callbacks.progress)
      c.on_step = [&](int64_t i, int64_t total) { callbacks.progress(static_cast<int>(i), static_cast<int>(total)); };
    c.cancelled = callbacks.cancelled;
    return detail::result_of(impl_->pipeline->generate(detail::request_of(request), c));
  } catch (...) {
    rethrow();
  }
}

std::vector<std::string> pipeline_classes() {
  std::vector<std::string> out;
  for (const auto& r : pipelines::registered_pipelines()) out.push_back(r.class_name);
  return out;
}

std::string default_model() {
  try {
    return pipelines::find_default_model();
  } catch (...) {
    rethrow();
  }
}

std::vector<std::string> recipe_names() {
  std::vector<std::string> out;
  for (const auto& r : train::recipes()) out.push_back(r.name);
  return out;
}

TrainResult train(const TrainOptions& o) {
  try {
    const train::Recipe& recipe = train::find_recipe(o.recipe);
    if (o.config.empty()) throw UsageError("'config' is required (the recipe's JSON config file)");
    if (o.out_dir.empty()) throw UsageError("'out_dir' is required");
    const auto r = recipe.run(o.config, {.out_dir = o.out_dir, .resume = o.resume});
    return {r.output, r.interrupted};
  } catch (...) {
    rethrow();
  }
}

EvaluateResult evaluate(const EvaluateOptions& o) {
  try {
    eval::RPrecisionRun run;
    run.model = o.model.empty() ? pipelines::find_default_model() : o.model;
    run.dataset = o.dataset;
    run.split = o.split;
    run.encoder = o.encoder.empty() ? eval::default_encoder(o.dataset) : o.encoder;
    run.num = o.num;
    run.k = o.k;
    run.steps = o.steps;
    run.cfg_scale = o.guidance;
    run.seed = o.seed;
    const ComputePolicy policy = resolve_policy(o.device, "auto");
    run.device = policy.device;
    run.dtype = policy.dtype;
    const nlohmann::ordered_json j = eval::run_r_precision(run);
    EvaluateResult out;
    out.r_precision = j["value"].get<double>();
    out.num = j["num"].get<int>();
    out.k = j["k"].get<int>();
    out.json = j.dump();
    return out;
  } catch (...) {
    rethrow();
  }
}

std::string version() { return GENVIS_VERSION; }

}  // namespace genvis::api
