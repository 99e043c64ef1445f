// Reading request bodies without libtorch (fuzzed on their own: fuzz/server_request_fuzz.cpp):
// typed fields with errors that name the field, base64, PNG size checks, and the A1111/genvis
// generation fields of a body.
#pragma once
#include "io/image.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace genvis::server {

struct Limits {
  int64_t max_width = 2048, max_height = 2048, max_steps = 150, max_frames = 129, max_batch = 8;
  size_t max_body_bytes = 50u << 20;
};

// A request the server refuses: HTTP status (4xx) and the request field it names ("" if none).
class BadRequest : public std::runtime_error {
public:
  BadRequest(const std::string& message, std::string field = "", int status = 400)
      : std::runtime_error(message), field_(std::move(field)), status_(status) {}
  const std::string& field() const { return field_; }
  int status() const { return status_; }

private:
  std::string field_;
  int status_;
};

std::string base64_encode(std::string_view bytes);
// Standard or URL-safe alphabet, padding optional, whitespace and a "data:...;base64," prefix
// allowed; BadRequest naming `field` otherwise.
std::string base64_decode(std::string_view text, const std::string& field);

// A PNG, its size read from the header and checked against the limits (twice the largest output
// a side) before decoding, as 8-bit; BadRequest (413 when too large) naming `field`.
io::Image decode_png_checked(const std::string& bytes, const std::string& field, const Limits& limits);

// The field's value when present and not null, checked for type: BadRequest "'steps' must be an
// integer, got "x"".
std::optional<int64_t> get_int(const nlohmann::json& body, const std::string& key);
std::optional<double> get_number(const nlohmann::json& body, const std::string& key);
std::optional<std::string> get_string(const nlohmann::json& body, const std::string& key);
std::optional<bool> get_bool(const nlohmann::json& body, const std::string& key);

// Parses a body as a JSON object; BadRequest "the body is not valid JSON: ..." otherwise.
nlohmann::json parse_object(const std::string& body);

// "WxH" -> (w, h); BadRequest naming 'size'.
std::pair<int64_t, int64_t> parse_size(const std::string& size);

// The generation fields of an A1111 txt2img/img2img body (and the job API's frames, fps,
// video_format, extras), type-checked, with images base64-decoded (not yet as pixels).
struct GenerationFields {
  std::string prompt, negative_prompt;
  int64_t seed = -1;  // -1: random
  std::optional<int64_t> steps, width, height, frames, clip_skip;
  std::optional<double> cfg_scale, denoising_strength, fps;
  std::string sampler;           // as given, less a schedule suffix ("DPM++ 2M Karras" -> "DPM++ 2M")
  std::string scheduler;         // as given, or the sampler name's suffix ("Karras")
  int64_t batch_size = 1, n_iter = 1;
  std::string video_format = "mp4";
  nlohmann::json extras = nlohmann::json::object();
  std::string init_image, mask;  // PNG bytes; "" when absent
  bool mask_invert = false, send_images = true;
};
GenerationFields read_generation_fields(const nlohmann::json& body);

}  // namespace genvis::server
