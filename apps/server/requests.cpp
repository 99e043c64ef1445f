#include "requests.h"

#include "core/error.h"
#include "core/text.h"
#include "io/image.h"
#include "io/image_tensor.h"
#include "pipelines/adapters.h"
#include "schedulers/registry.h"

#include <ATen/ATen.h>
#include <cctype>
#include <cstring>
#include <random>

namespace genvis::server {

using nlohmann::json;

at::Tensor decode_image(const std::string& bytes, const std::string& field, const Limits& limits, bool mask) {
  const io::Image image = decode_png_checked(bytes, field, limits);
  if (!mask) return io::image_to_tensor(image.with_channels(3));
  return (io::image_to_tensor(image.with_channels(1)) + 1) / 2;
}

namespace {

std::string canonical_schedule(const std::string& given, const std::string& field) {
  const std::string lower = ascii_lower(given);
  if (lower == "automatic" || lower.empty()) return "";
  try {
    const auto spacing = schedulers::schedule_spacing(given);
    for (const auto& name : schedulers::schedule_names())
      if (schedulers::schedule_spacing(name) == spacing) return name;
  } catch (const UsageError& e) {
    throw BadRequest(std::string("'" + field + "': ") + e.what(), field);
  }
  return given;
}

}  // namespace

JobInput a1111_job(const json& body, const JobContext& context) {
  const GenerationFields f = read_generation_fields(body);
  const auto& can = context.info.supports;
  const bool keep = !context.drop_unsupported;
  JobInput job;
  pipelines::Request& r = job.request;
  r.prompt = f.prompt;
  if (can.negative_prompt || keep) r.negative_prompt = f.negative_prompt;
  r.seed = f.seed == -1 ? std::random_device{}() : static_cast<uint64_t>(f.seed);
  if (can.steps || keep) r.steps = f.steps;
  if (can.guidance || keep) r.guidance = f.cfg_scale;
  if (!f.sampler.empty() && (can.sampler || keep)) {
    try {
      r.sampler = schedulers::sampler_info(f.sampler).name;
    } catch (const UsageError& e) {
      throw BadRequest(std::string("'sampler_name': ") + e.what(), "sampler_name");
    }
  }
  if (can.schedule || keep) r.schedule = canonical_schedule(f.scheduler, "scheduler");
  r.width = f.width;
  r.height = f.height;
  r.batch = f.batch_size;
  job.n_iter = f.n_iter;
  r.num_frames = f.frames;
  job.fps = f.fps.value_or(0);
  job.video_format = f.video_format;
  if (f.clip_skip && *f.clip_skip > 1) r.extras["clip_skip"] = *f.clip_skip;
  for (const auto& [k, v] : f.extras.items()) r.extras[k] = v;

  // img2img: the first init image, a mask (white repaints), the strength.
  if (!f.init_image.empty()) {
    r.init_image = decode_image(f.init_image, "init_images", context.limits);
    r.strength = f.denoising_strength.value_or(0.75);
  }
  if (!f.mask.empty()) {
    r.mask = decode_image(f.mask, "mask", context.limits, /*mask=*/true);
    if (f.mask_invert) r.mask = 1 - r.mask;
  }
  // The init image (and mask) resized to the requested size ("Just resize", A1111's default).
  if (r.init_image.defined() && (r.width || r.height)) {
    const int64_t w = r.width.value_or(r.init_image.size(3)), h = r.height.value_or(r.init_image.size(2));
    if (w > 0 && h > 0 && w <= context.limits.max_width && h <= context.limits.max_height) {
      if (w != r.init_image.size(3) || h != r.init_image.size(2))
        r.init_image = at::upsample_bilinear2d(r.init_image, {h, w}, false).clamp(-1, 1);
      if (r.mask.defined() && (w != r.mask.size(3) || h != r.mask.size(2)))
        r.mask = at::upsample_bilinear2d(r.mask, {h, w}, false).clamp(0, 1);
    }
  }
  if (r.mask.defined() && r.mask.sizes().slice(2) != r.init_image.sizes().slice(2))
    throw BadRequest("'mask' must have the init image's size", "mask");
  if (can.adapters) r.lora_dir = context.lora_dir;
  if (can.embeddings) r.embeddings_dir = context.embeddings_dir;
  check_limits(job, context);
  return job;
}

void check_limits(const JobInput& job, const JobContext& context) {
  const pipelines::Request& r = job.request;
  const Limits& l = context.limits;
  if (r.width && (*r.width < 1 || *r.width > l.max_width))
    throw BadRequest("'width' must be 1.." + std::to_string(l.max_width) + ", got " + std::to_string(*r.width), "width");
  if (r.height && (*r.height < 1 || *r.height > l.max_height))
    throw BadRequest("'height' must be 1.." + std::to_string(l.max_height) + ", got " + std::to_string(*r.height),
                     "height");
  if (r.steps && (*r.steps < 1 || *r.steps > l.max_steps))
    throw BadRequest("'steps' must be 1.." + std::to_string(l.max_steps) + ", got " + std::to_string(*r.steps), "steps");
  if (r.num_frames && (*r.num_frames < 1 || *r.num_frames > l.max_frames))
    throw BadRequest("'frames' must be 1.." + std::to_string(l.max_frames) + ", got " + std::to_string(*r.num_frames),
                     "frames");
  if (r.batch * job.n_iter > l.max_batch)
    throw BadRequest("'batch_size' x 'n_iter' must be at most " + std::to_string(l.max_batch) + ", got " +
                         std::to_string(r.batch * job.n_iter),
                     "batch_size");
  std::vector<pipelines::PromptLoRA> tags;
  try {
    (void)pipelines::extract_lora_tags(r.prompt, tags);
    for (const auto& tag : tags) {
      if (context.lora_dir.empty()) throw BadRequest("the prompt has <lora:" + tag.name + ":...> but the server has no --lora-dir", "prompt");
      (void)pipelines::find_lora_file(context.lora_dir, tag.name);
    }
  } catch (const UsageError& e) {
    throw BadRequest(std::string("'prompt': ") + e.what(), "prompt");
  } catch (const LoadError& e) {
    throw BadRequest(std::string("'prompt': ") + e.what(), "prompt");
  }
  try {
    pipelines::precheck_request(r);
    (void)pipelines::complete_request(context.info, r);
  } catch (const UsageError& e) {
    throw engine_error(e.what());
  }
}

BadRequest engine_error(std::string message) {
  // The engine names its own request fields; a client knows them by the A1111 names.
  static const std::pair<const char*, const char*> kNames[] = {
      {"'guidance'", "'cfg_scale'"},     {"'num_frames'", "'frames'"},       {"'strength'", "'denoising_strength'"},
      {"'init_image'", "'init_images'"}, {"'batch'", "'batch_size'"},        {"'sampler'", "'sampler_name'"},
      {"'schedule'", "'scheduler'"},     {"'width/height'", "'width'/'height'"}, {"'adapters'", "'prompt'"}};
  for (const auto& [from, to] : kNames)
    for (size_t at = message.find(from); at != std::string::npos; at = message.find(from, at + 1))
      message.replace(at, std::strlen(from), to);
  std::string field;
  if (const size_t open = message.find('\''); open != std::string::npos)
    if (const size_t close = message.find('\'', open + 1); close != std::string::npos)
      field = message.substr(open + 1, close - open - 1);
  return BadRequest(message, field);
}

}  // namespace genvis::server
