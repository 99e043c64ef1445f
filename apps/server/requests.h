// Request bodies into generation jobs (the torch-free reading is request_fields.h).
#pragma once
#include "jobs.h"
#include "request_fields.h"

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace genvis::server {

// decode_png_checked -> [1,3,H,W] float in [-1,1], or a mask [1,1,H,W] in [0,1].
at::Tensor decode_image(const std::string& bytes, const std::string& field, const Limits& limits, bool mask = false);

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

}  // namespace genvis::server
