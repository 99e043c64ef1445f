#include "request_fields.h"

#include "core/error.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <openssl/evp.h>

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
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
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

}  // namespace

GenerationFields read_generation_fields(const json& body) {
  GenerationFields f;
  f.prompt = get_string(body, "prompt").value_or("");
  f.negative_prompt = get_string(body, "negative_prompt").value_or("");
  f.seed = get_int(body, "seed").value_or(-1);
  if (f.seed < -1) throw BadRequest("'seed' must be -1 (random) or a non-negative integer", "seed");
  f.steps = get_int(body, "steps");
  f.cfg_scale = get_number(body, "cfg_scale");
  const std::string sampler = get_string(body, "sampler_name").value_or(get_string(body, "sampler_index").value_or(""));
  std::string from_name;
  std::tie(f.sampler, from_name) = split_sampler(sampler);
  f.scheduler = get_string(body, "scheduler").value_or("");
  if (f.scheduler.empty() || f.scheduler == "Automatic") f.scheduler = from_name;
  f.width = get_int(body, "width");
  f.height = get_int(body, "height");
  f.batch_size = get_int(body, "batch_size").value_or(1);
  f.n_iter = get_int(body, "n_iter").value_or(1);
  if (f.batch_size < 1) throw BadRequest("'batch_size' must be at least 1", "batch_size");
  if (f.n_iter < 1) throw BadRequest("'n_iter' must be at least 1", "n_iter");
  f.frames = get_int(body, "frames");
  f.fps = get_number(body, "fps");
  if (f.fps && !(*f.fps > 0 && *f.fps <= 1000)) throw BadRequest("'fps' must be in (0, 1000]", "fps");
  f.video_format = get_string(body, "video_format").value_or("mp4");
  if (f.video_format != "mp4" && f.video_format != "webp")
    throw BadRequest("'video_format' must be \"mp4\" or \"webp\"", "video_format");
  f.send_images = get_bool(body, "send_images").value_or(true);

  if (const auto o = body.find("override_settings"); o != body.end() && !o->is_null()) {
    if (!o->is_object()) throw BadRequest("'override_settings' must be an object", "override_settings");
    f.clip_skip = get_int(*o, "CLIP_stop_at_last_layers");
    if (f.clip_skip && (*f.clip_skip < 1 || *f.clip_skip > 12))
      throw BadRequest("'CLIP_stop_at_last_layers' must be 1..12", "override_settings");
  }
  if (const auto e = body.find("extras"); e != body.end() && !e->is_null()) {
    if (!e->is_object()) throw BadRequest("'extras' must be a JSON object", "extras");
    f.extras = *e;
  }
  if (const auto images = body.find("init_images"); images != body.end() && !images->is_null()) {
    if (!images->is_array() || (!images->empty() && !images->at(0).is_string()))
      throw BadRequest("'init_images' must be an array of base64 PNGs", "init_images");
    if (!images->empty()) f.init_image = base64_decode(images->at(0).get<std::string>(), "init_images");
  }
  f.denoising_strength = get_number(body, "denoising_strength");
  if (const auto mask = get_string(body, "mask"); mask && !mask->empty()) {
    if (f.init_image.empty()) throw BadRequest("'mask' needs 'init_images'", "mask");
    f.mask = base64_decode(*mask, "mask");
  }
  f.mask_invert = get_bool(body, "inpainting_mask_invert").value_or(false);
  return f;
}

}  // namespace genvis::server
