// The C API (include/genvis/genvis.h) over the C++ API: exceptions become status codes and a
// thread-local message.
#include "genvis/genvis.h"

#include "api/convert.h"
#include "genvis/genvis.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

struct genvis_pipeline {
  genvis::api::Pipeline pipeline;
  std::atomic<bool> cancel{false};
};

namespace {

thread_local std::string last_error;

char* copy_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (!out) throw std::bad_alloc();
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// Runs f, turning any exception into a status and last_error.
template <class F>
genvis_status guarded(F&& f) {
  try {
    try {
      f();
    } catch (...) {
      genvis::api::detail::rethrow();
    }
    last_error.clear();
    return GENVIS_OK;
  } catch (const genvis::api::Error& e) {
    last_error = e.what();
    return static_cast<genvis_status>(e.code());
  } catch (...) {
    last_error = "unknown error";
    return GENVIS_ERROR_RUNTIME;
  }
}

std::string text(const char* s) { return s ? s : ""; }

genvis::api::Image image_from(const genvis_image& c, const char* field) {
  if (c.width <= 0 || c.height <= 0 || !c.rgb)
    throw genvis::api::Error(genvis::api::ErrorCode::Usage, std::string("'") + field + "': an image needs a size and pixels");
  genvis::api::Image im;
  im.width = c.width;
  im.height = c.height;
  im.rgb.assign(c.rgb, c.rgb + static_cast<size_t>(c.width) * static_cast<size_t>(c.height) * 3);
  im.parameters = text(c.parameters);
  return im;
}

void fill(genvis_image& out, const genvis::api::Image& im) {
  out.width = im.width;
  out.height = im.height;
  out.rgb = static_cast<uint8_t*>(std::malloc(im.rgb.size()));
  if (!out.rgb) throw std::bad_alloc();
  std::memcpy(out.rgb, im.rgb.data(), im.rgb.size());
  out.parameters = im.parameters.empty() ? nullptr : copy_string(im.parameters);
}

genvis_status null_argument(const char* what) {
  last_error = std::string(what) + " is NULL";
  return GENVIS_ERROR_USAGE;
}

}  // namespace

extern "C" {

void genvis_load_options_init(genvis_load_options* o) {
  if (o) *o = genvis_load_options{nullptr, "auto", "auto", nullptr};
}

void genvis_request_init(genvis_request* r) {
  if (!r) return;
  std::memset(r, 0, sizeof *r);
  r->guidance = -1;
  r->strength = -1;
  r->batch = 1;
}

genvis_status genvis_pipeline_load(const genvis_load_options* options, genvis_pipeline** out) {
  if (!options) return null_argument("options");
  if (!out) return null_argument("out");
  *out = nullptr;
  return guarded([&] {
    genvis::api::LoadOptions lo;
    lo.model = text(options->model);
    lo.device = options->device ? options->device : "auto";
    lo.dtype = options->dtype ? options->dtype : "auto";
    lo.pipeline = text(options->pipeline);
    *out = new genvis_pipeline{genvis::api::Pipeline::load(lo)};
  });
}

void genvis_pipeline_free(genvis_pipeline* p) { delete p; }

void genvis_pipeline_cancel(genvis_pipeline* p) {
  if (p) p->cancel = true;
}

genvis_status genvis_pipeline_info_json(genvis_pipeline* p, char** json) {
  if (!p) return null_argument("pipeline");
  if (!json) return null_argument("json");
  return guarded([&] { *json = copy_string(p->pipeline.info().json); });
}

genvis_status genvis_generate(genvis_pipeline* p, const genvis_request* request, genvis_image** images, int* count) {
  if (!p) return null_argument("pipeline");
  if (!request) return null_argument("request");
  if (!images || !count) return null_argument("images/count");
  *images = nullptr;
  *count = 0;
  p->cancel = false;
  return guarded([&] {
    genvis::api::GenerateRequest r;
    if (!request->prompt) throw genvis::api::Error(genvis::api::ErrorCode::Usage, "'prompt' is NULL");
    r.prompt = request->prompt;
    r.negative_prompt = text(request->negative_prompt);
    r.seed = request->seed;
    if (request->steps != 0) r.steps = request->steps;
    if (request->guidance >= 0) r.guidance = request->guidance;
    r.sampler = text(request->sampler);
    if (request->width != 0) r.width = request->width;
    if (request->height != 0) r.height = request->height;
    r.batch = request->batch;
    if (request->init_image) r.init_image = image_from(*request->init_image, "init_image");
    if (request->mask) r.mask = image_from(*request->mask, "mask");
    if (request->strength >= 0) r.strength = request->strength;
    if (request->extras_json) r.extras_json = request->extras_json;
    genvis::api::GenerateCallbacks callbacks;
    bool stop = false;
    if (request->progress)
      callbacks.progress = [&](int step, int total) { stop = request->progress(step, total, request->user_data) != 0; };
    callbacks.cancelled = [&] { return stop || p->cancel.load(); };
    const genvis::api::GenerateResult result = p->pipeline.generate(r, callbacks);
    if (!result.videos.empty())
      throw genvis::api::Error(genvis::api::ErrorCode::Usage, "this pipeline makes videos; the C API returns images only");
    auto* out = static_cast<genvis_image*>(std::calloc(result.images.size(), sizeof(genvis_image)));
    if (!out) throw std::bad_alloc();
    int made = 0;
    try {
      for (const auto& im : result.images) fill(out[made++], im);
    } catch (...) {
      genvis_images_free(out, made);
      throw;
    }
    *images = out;
    *count = made;
  });
}

void genvis_images_free(genvis_image* images, int count) {
  if (!images) return;
  for (int i = 0; i < count; ++i) {
    std::free(images[i].rgb);
    std::free(images[i].parameters);
  }
  std::free(images);
}

genvis_status genvis_write_png(const genvis_image* image, const char* path) {
  if (!image) return null_argument("image");
  if (!path) return null_argument("path");
  return guarded([&] { genvis::api::write_png(image_from(*image, "image"), path); });
}

genvis_status genvis_read_png(const char* path, genvis_image** image) {
  if (!path) return null_argument("path");
  if (!image) return null_argument("image");
  *image = nullptr;
  return guarded([&] {
    const genvis::api::Image im = genvis::api::read_png(path);
    auto* out = static_cast<genvis_image*>(std::calloc(1, sizeof(genvis_image)));
    if (!out) throw std::bad_alloc();
    try {
      fill(*out, im);
    } catch (...) {
      std::free(out);
      throw;
    }
    *image = out;
  });
}

genvis_status genvis_train(const char* recipe, const char* config_path, const char* out_dir, int resume) {
  return guarded([&] {
    const auto r = genvis::api::train({text(recipe), text(config_path), text(out_dir), resume != 0});
    if (r.interrupted)
      throw genvis::api::Error(genvis::api::ErrorCode::Runtime,
                               "interrupted: a checkpoint was written; continue with resume in " + text(out_dir));
  });
}

const char* genvis_last_error(void) { return last_error.c_str(); }

const char* genvis_version(void) {
  static const std::string v = genvis::api::version();
  return v.c_str();
}

void genvis_string_free(char* s) { std::free(s); }

}  // extern "C"
