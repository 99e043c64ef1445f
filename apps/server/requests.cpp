#include "requests.h"

#include "core/error.h"
#include "io/image.h"
#include "io/image_tensor.h"
#include "pipelines/adapters.h"
#include "schedulers/registry.h"

#include <ATen/ATen.h>
#include <cctype>
#include <cstring>
#include <openssl/evp.h>
#include <random>

namespace genvis::server {

using nlohmann::json;

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string base64_decode(std::string_view text, const std::string& field) {
  if (text.rfind("data:", 0) == 0) {
    const size_t comma = text.find(',');
    if (comma == std::string_view::npos || text.substr(0, comma).find(";base64") == std::string_view::npos)
      throw BadRequest("'" + field + "' is a data: URL without ';base64,'", field);
    text.remove_prefix(comma + 1);
  }
  std::string clean;
  clean.reserve(text.size() + 3);
  for (const char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (c == '-') clean += '+';
    else if (c == '_') clean += '/';
    else if (std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=') clean += c;
    else throw BadRequest("'" + field + "' is not base64 (character '" + std::string(1, c) + "')", field);
  }
  while (!clean.empty() && clean.back() == '=') clean.pop_back();
  const size_t unpadded = clean.size();
  if (unpadded % 4 == 1) throw BadRequest("'" + field + "' is not base64 (bad length)", field);
  while (clean.size() % 4) clean += '=';
  if (clean.find('=') < unpadded) throw BadRequest("'" + field + "' is not base64 ('=' inside)", field);
  std::string out(clean.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (n < 0) throw BadRequest("'" + field + "' is not base64", field);
  // EVP_DecodeBlock counts padding bytes as data.
  out.resize(static_cast<size_t>(n) - (clean.size() - unpadded));
  return out;
}

io::Image decode_png_checked(const std::string& bytes, const std::string& field, const Limits& limits) {
  static constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 24 || std::memcmp(bytes.data(), kSignature, 8) != 0)
    throw BadRequest("'" + field + "' is not a PNG image", field);
  const auto u32 = [&](size_t at) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data()) + at;
    return (uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) | (uint64_t{b[2]} << 8) | uint64_t{b[3]};
  };
  const uint64_t w = u32(16), h = u32(20);
  // An image may be larger than the output (img2img resizes it) but not without bound.
  const uint64_t max_w = static_cast<uint64_t>(limits.max_width) * 2, max_h = static_cast<uint64_t>(limits.max_height) * 2;
  if (w == 0 || h == 0 || w > max_w || h > max_h)
    throw BadRequest("'" + field + "' is " + std::to_string(w) + "x" + std::to_string(h) + " pixels (at most " +
                         std::to_string(max_w) + "x" + std::to_string(max_h) + ")",
                     field, 413);
  try {
    return io::decode_png(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), field).to_8bit();
  } catch (const Error& e) {
    throw BadRequest("'" + field + "' is not a valid PNG: " + e.what(), field);
  }
}

at::Tensor decode_image(const std::string& bytes, const std::string& field, const Limits& limits, bool mask) {
  const io::Image image = decode_png_checked(bytes, field, limits);
  if (!mask) return io::image_to_tensor(image.with_channels(3));
  return (io::image_to_tensor(image.with_channels(1)) + 1) / 2;
}

namespace {

[[noreturn]] void wrong_type(const std::string& key, const char* what, const json& v) {
  std::string shown = v.dump();
  if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
  throw BadRequest("'" + key + "' must be " + what + ", got " + shown, key);
}

const json* present(const json& body, const std::string& key) {
  const auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

}  // namespace

std::optional<int64_t> get_int(const json& body, const std::string& key) {
  const json* v = present(body, key);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9e15) return static_cast<int64_t>(d);
  }
  wrong_type(key, "an integer", *v);
}

std::optional<double> get_number(const json& body, const std::string& key) {
  const json* v = present(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(key, "a number", *v);
  return v->get<double>();
}

std::optional<std::string> get_string(const json& body, const std::string& key) {
  const json* v = present(body, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(key, "a string", *v);
  return v->get<std::string>();
}

std::optional<bool> get_bool(const json& body, const std::string& key) {
  const json* v = present(body, key);
  if (!v) return std::nullopt;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_number_integer() && (v->get<int64_t>() == 0 || v->get<int64_t>() == 1)) return v->get<int64_t>() == 1;
  wrong_type(key, "true or false", *v);
}

json parse_object(const std::string& body) {
  json j;
  try {
    j = json::parse(body.empty() ? std::string("{}") : body);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (const size_t colon = what.find("]: "); colon != std::string::npos) what = what.substr(colon + 3);
    throw BadRequest("the body is not valid JSON: " + what);
  }
  if (!j.is_object()) throw BadRequest("the body must be a JSON object");
  return j;
}

std::pair<int64_t, int64_t> parse_size(const std::string& size) {
  const size_t x = size.find('x');
  try {
    size_t a = 0, b = 0;
    if (x == std::string::npos) throw std::invalid_argument("no x");
    const int64_t w = std::stoll(size.substr(0, x), &a);
    const int64_t h = std::stoll(size.substr(x + 1), &b);
    if (a != x || b != size.size() - x - 1 || w <= 0 || h <= 0) throw std::invalid_argument("bad");
    return {w, h};
  } catch (const std::exception&) {
    throw BadRequest("'size' must be WIDTHxHEIGHT such as \"256x256\", got \"" + size.substr(0, 40) + "\"", "size");
  }
}

namespace {

// A1111 sampler names ("DPM++ 2M Karras" carries its schedule) -> (genvis sampler, schedule).
std::pair<std::string, std::string> split_sampler(std::string name) {
  std::string schedule;
  for (const char* suffix : {" Karras", " Exponential", " SGM Uniform"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      schedule = s.substr(1);
      name.resize(name.size() - s.size());
    }
  }
  return {name, schedule};
}

std::string canonical_schedule(const std::string& given, const std::string& field) {
  std::string lower;
  for (const char c : given) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
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
  const auto& can = context.info.supports;
  JobInput job;
  pipelines::Request& r = job.request;
  r.prompt = get_string(body, "prompt").value_or("");
  const std::string negative = get_string(body, "negative_prompt").value_or("");
  if (can.negative_prompt || !context.drop_unsupported) r.negative_prompt = negative;

  const int64_t seed = get_int(body, "seed").value_or(-1);
  if (seed < -1) throw BadRequest("'seed' must be -1 (random) or a non-negative integer", "seed");
  r.seed = seed == -1 ? std::random_device{}() : static_cast<uint64_t>(seed);

  const bool keep = !context.drop_unsupported;
  if (const auto steps = get_int(body, "steps"); steps && (can.steps || keep)) r.steps = *steps;
  if (const auto cfg = get_number(body, "cfg_scale"); cfg && (can.guidance || keep)) r.guidance = *cfg;
  std::string sampler = get_string(body, "sampler_name").value_or(get_string(body, "sampler_index").value_or(""));
  std::string schedule = get_string(body, "scheduler").value_or("");
  if (!sampler.empty() && (can.sampler || keep)) {
    auto [name, from_name] = split_sampler(sampler);
    try {
      r.sampler = schedulers::sampler_info(name).name;
    } catch (const UsageError& e) {
      throw BadRequest(std::string("'sampler_name': ") + e.what(), "sampler_name");
    }
    if (schedule.empty() || schedule == "Automatic") schedule = from_name;
  }
  if (can.schedule || keep) r.schedule = canonical_schedule(schedule, "scheduler");
  r.width = get_int(body, "width");
  r.height = get_int(body, "height");
  r.batch = get_int(body, "batch_size").value_or(1);
  job.n_iter = get_int(body, "n_iter").value_or(1);
  if (r.batch < 1) throw BadRequest("'batch_size' must be at least 1", "batch_size");
  if (job.n_iter < 1) throw BadRequest("'n_iter' must be at least 1", "n_iter");
  r.num_frames = get_int(body, "frames");
  if (const auto fps = get_number(body, "fps")) {
    if (!(*fps > 0 && *fps <= 1000)) throw BadRequest("'fps' must be in (0, 1000]", "fps");
    job.fps = *fps;
  }
  job.video_format = get_string(body, "video_format").value_or("mp4");
  if (job.video_format != "mp4" && job.video_format != "webp")
    throw BadRequest("'video_format' must be \"mp4\" or \"webp\"", "video_format");

  if (const json* o = body.contains("override_settings") ? &body.at("override_settings") : nullptr; o && !o->is_null()) {
    if (!o->is_object()) throw BadRequest("'override_settings' must be an object", "override_settings");
    if (const auto skip = get_int(*o, "CLIP_stop_at_last_layers")) {
      if (*skip < 1 || *skip > 12) throw BadRequest("'CLIP_stop_at_last_layers' must be 1..12", "override_settings");
      if (*skip > 1) r.extras["clip_skip"] = *skip;
    }
  }
  if (const json* e = body.contains("extras") ? &body.at("extras") : nullptr; e && !e->is_null()) {
    if (!e->is_object()) throw BadRequest("'extras' must be a JSON object", "extras");
    for (const auto& [k, v] : e->items()) r.extras[k] = v;
  }

  // img2img: the first init image, a mask (white repaints), the strength.
  if (const json* images = body.contains("init_images") ? &body.at("init_images") : nullptr; images && !images->is_null()) {
    if (!images->is_array()) throw BadRequest("'init_images' must be an array of base64 PNGs", "init_images");
    if (!images->empty()) {
      if (!images->at(0).is_string()) throw BadRequest("'init_images' must be an array of base64 PNGs", "init_images");
      r.init_image = decode_image(base64_decode(images->at(0).get<std::string>(), "init_images"), "init_images",
                                  context.limits);
      if (const auto s = get_number(body, "denoising_strength")) r.strength = *s;
      else r.strength = 0.75;
    }
  }
  if (const auto mask = get_string(body, "mask"); mask && !mask->empty()) {
    if (!r.init_image.defined()) throw BadRequest("'mask' needs 'init_images'", "mask");
    r.mask = decode_image(base64_decode(*mask, "mask"), "mask", context.limits, /*mask=*/true);
    if (get_bool(body, "inpainting_mask_invert").value_or(false)) r.mask = 1 - r.mask;
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
