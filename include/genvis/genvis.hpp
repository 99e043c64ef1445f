// genvis public C++ API: load a model, generate images, train a recipe, evaluate a model.
// It needs only this header and libgenvis (find_package(genvis) -> genvis::genvis); libtorch
// stays inside the library.
//
//   #include <genvis/genvis.hpp>
//   namespace gv = genvis::api;
//   gv::Pipeline p = gv::Pipeline::load({});                       // the built-in model
//   gv::GenerateRequest r;
//   r.prompt = "grinning face";
//   r.seed = 42;
//   gv::GenerateResult out = p.generate(r, {.progress = [](int step, int total) { /* ... */ }});
//   gv::write_png(out.images[0], "face.png");                     // with A1111 `parameters`
//
// Errors are genvis::api::Error with a code (usage, load, runtime, cancelled) and one line of
// text naming the request field or file at fault ("'steps': must be 1..1000 (got 0)").
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace genvis::api {

enum class ErrorCode { Runtime = 1, Usage = 2, Load = 3, Cancelled = 4 };

class Error : public std::runtime_error {
public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

private:
  ErrorCode code_;
};

// 8-bit RGB, rows top to bottom, `rgb` of size width * height * 3.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  std::string parameters;  // A1111 generation parameters ("" when none)
};

// 8-bit RGB frames, frame after frame, `rgb` of size frames * width * height * 3.
struct Video {
  int width = 0, height = 0, frames = 0;
  std::vector<uint8_t> rgb;
  std::string parameters;
};

Image read_png(const std::string& path);
// Writes `image.parameters` as the PNG's `parameters` text chunk when not empty.
void write_png(const Image& image, const std::string& path);

struct LoadOptions {
  std::string model;     // model folder or single file; "" = the built-in default model
  std::string pipeline;  // force a pipeline class ("" = model_index.json's, or detected)
  std::string device = "auto", dtype = "auto";  // "cpu", "cuda", "cuda:1"; "f32", "bf16", "f16"
  // Stable Diffusion components (override the model's, or give a model in parts); Wan 2.1 takes
  // vae, text_encoder, vocab (its tokenizer folder) and image_encoder, as folders or single files.
  std::string unet, vae, text_encoder, text_encoder_2, vocab, scheduler_config;
  std::string image_encoder;
  // Settings tensor shapes cannot tell, per component, merged onto the configs of single files: a
  // JSON file (Wan: also the JSON text), e.g. {"transformer": {"num_attention_heads": 12}}.
  std::string model_config;
};

struct LoRA {
  std::string file;
  double weight = 1.0;
};

struct GenerateRequest {
  std::string prompt, negative_prompt;
  uint64_t seed = 0;  // sample i uses seed + i
  // Unset or empty: the model's default.
  std::optional<int> steps;
  std::optional<double> guidance;
  std::string sampler, schedule;
  std::optional<int> width, height, num_frames;
  int batch = 1;
  std::optional<Image> init_image;  // img2img / inpainting
  std::optional<Image> mask;        // inpainting: white (>= 50%) is repainted
  std::optional<double> strength;
  std::vector<LoRA> loras;
  std::string lora_dir, embeddings_dir;
  std::string extras_json = "{}";  // per-family settings, e.g. {"clip_skip": 2}
};

struct GenerateCallbacks {
  std::function<void(int step, int total)> progress;
  std::function<bool()> cancelled;  // polled each step; true stops with ErrorCode::Cancelled
};

struct GenerateResult {
  std::vector<Image> images;
  std::vector<Video> videos;
};

struct PipelineInfo {
  std::string class_name, family, name;
  int native_width = 0, native_height = 0;
  bool image_to_image = false, inpainting = false, video = false, negative_prompt = false;
  int default_steps = 0;
  double default_guidance = 0;
  std::string default_sampler;
  std::vector<std::string> samplers;
  std::string json;  // everything above and more, as JSON
};

class Pipeline {
public:
  static Pipeline load(const LoadOptions& options);
  Pipeline(Pipeline&&) noexcept;
  Pipeline& operator=(Pipeline&&) noexcept;
  ~Pipeline();

  PipelineInfo info() const;
  GenerateResult generate(const GenerateRequest& request, const GenerateCallbacks& callbacks = {});

  struct Impl;

private:
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Registered pipeline classes (e.g. "StableDiffusionPipeline").
std::vector<std::string> pipeline_classes();
// The built-in model's folder; Error (usage) listing the places looked in when absent.
std::string default_model();

// Training recipes that read a JSON config (ldm, contrastive, classifier, ...).
std::vector<std::string> recipe_names();
struct TrainOptions {
  std::string recipe;  // a name from recipe_names()
  std::string config;  // the recipe's JSON config file
  std::string out_dir;
  bool resume = false;
};
struct TrainResult {
  std::string output;  // the trained model's folder
  bool interrupted = false;
};
TrainResult train(const TrainOptions& options);

// R-precision of a model on a dataset's captions, judged by a contrastive text-image encoder:
// how often the image's own caption ranks first among `k` candidates.
struct EvaluateOptions {
  std::string model;            // "" = the built-in model
  std::string dataset = "emoji";
  std::string split = "train";  // or "heldout"
  std::string encoder;          // contrastive judge folder ("" = the dataset's shipped judge)
  int num = 100, k = 100, steps = 20, batch = 16;
  double guidance = 7.0;
  uint64_t seed = 0;
  std::string device = "auto";
};
struct EvaluateResult {
  double r_precision = 0;  // top-1 retrieval accuracy among k candidates
  int num = 0, k = 0;
  std::string json;        // the full report
};
EvaluateResult evaluate(const EvaluateOptions& options);

std::string version();

}  // namespace genvis::api
