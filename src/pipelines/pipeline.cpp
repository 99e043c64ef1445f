#include "pipelines/pipeline.h"

#include "core/progress.h"
#include "core/shape.h"
#include "schedulers/registry.h"

#include <algorithm>
#include <cmath>

namespace genvis::pipelines {

namespace {

std::string join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : sep) + i;
  return s;
}


}  // namespace

nlohmann::json PipelineInfo::to_json() const {
  const auto& s = supports;
  return {{"class_name", class_name},
          {"family", family},
          {"name", name},
          {"native_width", native_width},
          {"native_height", native_height},
          {"native_frames", native_frames},
          {"native_fps", native_fps},
          {"size_multiple", size_multiple},
          {"max_batch", max_batch},
          {"quant", quant.empty() ? "none" : quant},
          {"supports",
           {{"text_to_image", s.text_to_image},
            {"image_to_image", s.image_to_image},
            {"inpainting", s.inpainting},
            {"inpainting_only", s.inpainting_only},
            {"video", s.video},
            {"video_to_video", s.video_to_video},
            {"negative_prompt", s.negative_prompt},
            {"guidance", s.guidance},
            {"steps", s.steps},
            {"sampler", s.sampler},
            {"schedule", s.schedule},
            {"adapters", s.adapters},
            {"embeddings", s.embeddings}}},
          {"defaults",
           {{"steps", defaults.steps},
            {"guidance", defaults.guidance},
            {"sampler", defaults.sampler},
            {"schedule", defaults.schedule},
            {"strength", defaults.strength}}},
          {"samplers", samplers},
          {"extras", extras}};
}

Request complete_request(const PipelineInfo& info, const Request& request) {
  const auto& can = info.supports;
  const std::string who = info.class_name + (info.family.empty() ? "" : " (" + info.family + ")");
  std::vector<std::string> problems;
  const auto refuse = [&](const std::string& field, const std::string& why) {
    problems.push_back("'" + field + "': " + why);
  };
  const auto unsupported = [&](const std::string& field, const std::string& what) {
    refuse(field, who + " does not support " + what);
  };
  Request r = request;

  // What the family cannot do at all.
  if (!can.negative_prompt && !r.negative_prompt.empty()) unsupported("negative_prompt", "a negative prompt");
  if (!can.steps && r.steps) unsupported("steps", "a number of steps (it generates in one pass)");
  if (!can.guidance && r.guidance) unsupported("guidance", "classifier-free guidance");
  if (!can.sampler && !r.sampler.empty()) unsupported("sampler", "a sampler choice");
  if (!can.schedule && !r.schedule.empty()) unsupported("schedule", "a schedule choice");
  if (!can.video && r.num_frames) unsupported("num_frames", "video (it makes images)");
  if (!can.video_to_video && r.init_video.defined()) unsupported("init_video", "video-to-video");
  if (!can.image_to_image && !can.inpainting && r.init_image.defined())
    unsupported("init_image", "starting from an image");
  if (!can.inpainting && r.mask.defined()) unsupported("mask", "inpainting");
  if (!can.adapters && (!r.adapters.empty() || !r.lora_dir.empty())) unsupported("adapters", "LoRA adapters");
  if (!can.embeddings && !r.embeddings_dir.empty()) unsupported("embeddings_dir", "textual-inversion embeddings");
  if (!can.cache_interval && r.cache_interval != 1)
    unsupported("cache_interval", "interval step caching" + std::string(can.cache_threshold ? " (it takes 'cache_threshold')" : ""));
  if (!can.cache_threshold && r.cache_threshold != 0)
    unsupported("cache_threshold", "threshold step caching" + std::string(can.cache_interval ? " (it takes 'cache_interval')" : ""));
  if (!r.extras.is_object()) {
    refuse("extras", "must be a JSON object");
  } else if (!info.open_extras) {
    for (const auto& [key, value] : r.extras.items())
      if (std::find(info.extras.begin(), info.extras.end(), key) == info.extras.end())
        refuse("extras." + key, "unknown to " + who +
                                    (info.extras.empty() ? " (it takes no extras)" : " (known: " + join(info.extras) + ")"));
  }
  if (r.mask.defined() && !r.init_image.defined()) refuse("mask", "needs 'init_image' (the image to inpaint)");
  if (can.inpainting_only && !(r.mask.defined() && r.init_image.defined()))
    refuse("mask", "this is an inpainting model: give 'init_image' and 'mask'");
  if (r.strength && !r.init_image.defined() && !r.init_video.defined())
    refuse("strength", "applies only with 'init_image' or 'init_video'");

  // Values.
  if (r.batch < 1 || r.batch > info.max_batch)
    refuse("batch", "must be 1.." + std::to_string(info.max_batch) + " (got " + std::to_string(r.batch) + ")");
  if (!r.prompts.empty() && static_cast<int64_t>(r.prompts.size()) != r.batch)
    refuse("prompts", std::to_string(r.prompts.size()) + " prompts for a 'batch' of " + std::to_string(r.batch));
  if (r.init_image.defined() && (r.init_image.dim() != 4 || r.init_image.size(0) != 1 || r.init_image.size(1) != 3))
    refuse("init_image", "must be an image tensor [1,3,H,W] (got " + shape_of(r.init_image) + ")");
  if (r.init_video.defined() && (r.init_video.dim() != 5 || r.init_video.size(0) != 1 || r.init_video.size(1) != 3))
    refuse("init_video", "must be a video tensor [1,3,T,H,W] (got " + shape_of(r.init_video) + ")");
  if (r.mask.defined() && (r.mask.dim() != 4 || r.mask.size(0) != 1 || r.mask.size(1) != 1))
    refuse("mask", "must be a single-channel image tensor [1,1,H,W] (got " + shape_of(r.mask) + ")");
  if (r.strength && !(*r.strength > 0 && *r.strength <= 1)) refuse("strength", "must be in (0, 1]");
  if (r.num_frames && *r.num_frames < 1) refuse("num_frames", "must be >= 1");
  if (r.cache_interval < 1 || r.cache_interval > 100) refuse("cache_interval", "must be 1..100 (1: off)");
  if (!(r.cache_threshold >= 0 && r.cache_threshold <= 1)) refuse("cache_threshold", "must be in [0, 1] (0: off)");
  if (r.lora_mode != "merge" && r.lora_mode != "on-the-fly") refuse("lora_mode", "must be merge or on-the-fly");
  if (!r.sampler.empty() && !info.samplers.empty() &&
      std::find(info.samplers.begin(), info.samplers.end(), r.sampler) == info.samplers.end())
    refuse("sampler", "unknown sampler '" + r.sampler + "' (known: " + join(info.samplers) + ")");

  // Defaults: sizes from the init image, else the native size; the family's settings.
  // (A mask alone also tells the size: the image it belongs to is missing, refused above.)
  const at::Tensor& init = r.init_image.defined() ? r.init_image : r.init_video.defined() ? r.init_video : r.mask;
  const bool init_4d = init.defined() && init.dim() >= 4;
  if (!r.width) r.width = init_4d ? init.size(-1) : r.height.value_or(info.native_width);
  if (!r.height) r.height = init_4d ? init.size(-2) : (request.width ? *r.width : info.native_height);
  const int64_t m = std::max<int64_t>(1, info.size_multiple);
  if (*r.width < m || *r.height < m || *r.width % m || *r.height % m || *r.width > 8192 || *r.height > 8192)
    refuse("width/height", "must be multiples of " + std::to_string(m) + " in " + std::to_string(m) + "..8192 (got " +
                               std::to_string(*r.width) + "x" + std::to_string(*r.height) + ")");
  const bool resized = info.resizes_init_image && r.init_image.defined();
  if (init_4d && !resized && !r.mask.is_same(init) && (init.size(-1) != *r.width || init.size(-2) != *r.height))
    refuse(r.init_image.defined() ? "init_image" : "init_video",
           std::string(r.init_image.defined() ? "the init image" : "the init video") + " is " + std::to_string(init.size(-1)) + "x" + std::to_string(init.size(-2)) + " but the size asked for is " +
               std::to_string(*r.width) + "x" + std::to_string(*r.height));
  if (r.mask.defined() && r.mask.dim() == 4 && (r.mask.size(3) != *r.width || r.mask.size(2) != *r.height))
    refuse("mask", "the mask is " + std::to_string(r.mask.size(3)) + "x" + std::to_string(r.mask.size(2)) +
                       " but the image is " + std::to_string(*r.width) + "x" + std::to_string(*r.height));
  if (can.steps) {
    if (!r.steps) r.steps = info.defaults.steps;
    if (*r.steps < 1 || *r.steps > 1000) refuse("steps", "must be 1..1000 (got " + std::to_string(*r.steps) + ")");
  }
  if (can.guidance) {
    if (!r.guidance) r.guidance = info.defaults.guidance;
    if (!(*r.guidance >= 0) || !std::isfinite(*r.guidance)) refuse("guidance", "must be a finite number >= 0");
  }
  if (can.sampler && r.sampler.empty()) r.sampler = info.defaults.sampler;
  if (can.schedule && r.schedule.empty()) r.schedule = info.defaults.schedule;
  if ((r.init_image.defined() || r.init_video.defined()) && !r.strength)
    r.strength = r.mask.defined() ? 1.0 : info.defaults.strength;

  if (!problems.empty()) throw UsageError(join(problems, "; "));
  return r;
}

void precheck_request(const Request& request) {
  PipelineInfo any;
  any.class_name = "request";
  any.native_width = any.native_height = 512;
  any.size_multiple = 1;
  auto& s = any.supports;
  s.image_to_image = s.inpainting = s.video = s.video_to_video = true;
  s.negative_prompt = s.guidance = s.steps = s.sampler = s.schedule = s.adapters = s.embeddings = true;
  s.cache_interval = s.cache_threshold = true;
  any.defaults = {.steps = 1, .guidance = 0, .sampler = "", .schedule = "", .strength = 0.75};
  any.open_extras = true;
  any.samplers = schedulers::sampler_names();
  complete_request(any, request);
}

std::vector<std::string> prompts_of(const Request& r) {
  return r.prompts.empty() ? std::vector<std::string>(static_cast<size_t>(r.batch), r.prompt) : r.prompts;
}

Result Pipeline::generate(const Request& request, const Callbacks& callbacks) {
  return run(complete_request(info(), request), callbacks);
}

at::Tensor generate_in_batches(size_t n, int64_t batch, const std::string& label,
                               const std::function<at::Tensor(size_t b, size_t e)>& call) {
  if (batch < 1) throw UsageError("generate_each: 'batch' must be >= 1");
  if (n == 0) throw UsageError("generate_each: no prompts");
  const size_t step = static_cast<size_t>(batch);
  std::vector<at::Tensor> rows;
  Progress progress(label, static_cast<int64_t>(n));
  for (size_t b = 0; b < n; b += step) {
    const size_t e = std::min(n, b + step);
    rows.push_back(call(b, e));
    progress.update(static_cast<int64_t>(e));
  }
  progress.finish();
  return at::cat(rows);
}

at::Tensor generate_each(Pipeline& pipeline, const std::vector<std::string>& prompts, Request base, int64_t batch,
                         const std::string& label) {
  const uint64_t seed = base.seed;
  return generate_in_batches(prompts.size(), batch, label, [&](size_t b, size_t e) {
    base.prompt.clear();
    base.prompts.assign(prompts.begin() + static_cast<std::ptrdiff_t>(b), prompts.begin() + static_cast<std::ptrdiff_t>(e));
    if (base.prompts.size() == 1) {
      base.prompt = base.prompts.front();
      base.prompts.clear();
    }
    base.batch = static_cast<int64_t>(e - b);
    base.seed = seed + b;
    return pipeline.generate(base).samples.to(at::kCPU, at::kFloat);
  });
}

}  // namespace genvis::pipelines
