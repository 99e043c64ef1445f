// Reading request bodies into generation jobs: typed fields with errors that name the field,
// base64 images with their size checked before decoding, and the server's limits.
#pragma once
#include "jobs.h"
#include "io/image.h"

#include <nlohmann/json.hpp>
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
// decode_png_checked -> [1,3,H,W] float in [-1,1], or a mask [1,1,H,W] in [0,1].
at::Tensor decode_image(const std::string& bytes, const std::string& field, const Limits& limits, bool mask = false);

// The field's value when present and not null, checked for type: BadRequest "'steps' must be an
// integer, got "x"".
std::optional<int64_t> get_int(const nlohmann::json& body, const std::string& key);
std::optional<double> get_number(const nlohmann::json& body, const std::string& key);
std::optional<std::string> get_string(const nlohmann::json& body, const std::string& key);
std::optional<bool> get_bool(const nlohmann::json& body, const std::string& key);

// Parses a body as a JSON object; BadRequest "the body is not valid JSON: ..." otherwise.
nlohmann::json parse_object(const std::string& body);

struct JobContext {
  pipelines::PipelineInfo info;
  Limits limits;
  std::string lora_dir, embeddings_dir;
  // A1111 and OpenAI clients send steps, CFG and sampler whatever the model; these are dropped
  // for a model without them. The job API refuses them instead.
  bool drop_unsupported = true;
};

// An A1111 txt2img/img2img body (also the job API's, with frames/fps/video_format/extras).
JobInput a1111_job(const nlohmann::json& body, const JobContext& context);

// Checks the size, step and batch limits and LoRA tag names of a job; BadRequest naming the field.
void check_limits(const JobInput& job, const JobContext& context);

// An engine UsageError as a BadRequest: request field names as the A1111 API spells them, the
// first quoted one as the field.
BadRequest engine_error(std::string message);

// "WxH" -> (w, h); BadRequest naming 'size'.
std::pair<int64_t, int64_t> parse_size(const std::string& size);

}  // namespace genvis::server
