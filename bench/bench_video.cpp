// genvis's own video model on the CPU (JSON on stdout): how fast `genvis train video` trains its
// transformer and how long a clip takes to sample.
//
//   bench_video --model runs/video-shapes-quick/model [--batch 16] [--frames 9] [--size 32]
//               [--train-steps 6] [--steps 20] [--runs 3] [--threads 0] [--dtype f32,bf16]
//               [--only train|generate]
//
// train     The model's transformer + CLIP text encoder, built from its config.json files with fresh
//           random weights, trained as the recipe's dit stage trains them: batch --batch of
//           --frames x --size x --size clips' latents (random, the VAE's shape), the frame
//           condition channels when the model has them, 77 text tokens, flow-matching MSE,
//           backward, AdamW. Median step after one warm-up step; samples/s; the step's GFLOP (3x
//           the forward, bench/flops.h) and its fraction of the GEMM peak of the same dtype
//           measured in this run (best 2048^3 product).
// generate  The model as saved: one clip of --frames at --size, --steps UniPC steps with CFG
//           (the pipeline's default guidance), batch 1; median of --runs after a warm-up.
#include "args.h"
#include "flops.h"
#include "measure.h"

#include "core/rng.h"
#include "core/threads.h"
#include "core/torch_compat.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "models/clip_text/clip_text_model.h"
#include "models/wan/wan_transformer.h"
#include "nn/attention.h"
#include "pipelines/genvis_video/genvis_video_pipeline.h"
#include "pipelines/registry.h"
#include "train/optim.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace {

using json = nlohmann::json;
using namespace genvis;
using bench::median;
using bench::now_s;

struct Options {
  std::string model = std::string(GENVIS_BENCH_SOURCE_DIR) + "/models/genvis-shapes-video";
  int64_t batch = 16, frames = 9, size = 32, train_steps = 6, steps = 20, runs = 3;
  int threads = 0;
  std::vector<std::string> dtypes = {"f32", "bf16"};
  std::string only;  // "", "train" or "generate"
};

constexpr const char* kUsage =
    "[--model DIR] [--batch N] [--frames N] [--size PX] [--train-steps N] [--steps N] [--runs N] [--threads N] "
    "[--dtype f32,bf16] [--only train|generate]";
[[noreturn]] void usage(const std::string& why) { bench::usage_exit("bench_video", kUsage, why); }

Options parse(int argc, char** argv) {
  Options o;
  bench::Args args(argc, argv, "bench_video", kUsage);
  while (args.next()) {
    if (args.is("--model")) o.model = args.text();
    else if (args.is("--batch")) o.batch = args.count();
    else if (args.is("--frames")) o.frames = args.count();
    else if (args.is("--size")) o.size = args.count();
    else if (args.is("--train-steps")) o.train_steps = args.count();
    else if (args.is("--steps")) o.steps = args.count();
    else if (args.is("--runs")) o.runs = args.count();
    else if (args.is("--threads")) o.threads = static_cast<int>(args.count());
    else if (args.is("--only")) o.only = args.text();
    else if (args.is("--dtype")) o.dtypes = args.list();
    else args.unknown();
  }
  if (!o.only.empty() && o.only != "train" && o.only != "generate") usage("--only takes train or generate");
  for (const auto& d : o.dtypes)
    if (d != "f32" && d != "bf16") usage("--dtype takes f32 and/or bf16, got " + d);
  if (o.batch < 1 || o.train_steps < 1 || o.runs < 1 || o.steps < 1 || o.frames < 1)
    usage("--batch, --frames, --train-steps, --runs, --steps must be >= 1");
  return o;
}

json read_json(const std::string& path) { return bench::read_model_json(path, "bench_video"); }

using bench::gemm_peak_gflops;

json bench_train(const Options& o, const json& peaks) {
  const auto dit_config = models::WanTransformer3DConfig::from_json(read_json(o.model + "/transformer/config.json"));
  const auto te_config = models::CLIPTextConfig::from_json(read_json(o.model + "/text_encoder/config.json"));
  const auto vae_config = models::AutoencoderKLWanConfig::from_json(read_json(o.model + "/vae/config.json"));
  const int64_t B = o.batch, z = vae_config.z_dim, tf = vae_config.temporal_factor(), f = vae_config.spatial_factor();
  if ((o.frames - 1) % tf != 0 || o.size % (f * dit_config.patch_size[1]) != 0) usage("--frames or --size does not fit the model");
  const int64_t lf = 1 + (o.frames - 1) / tf, h = o.size / f;
  const int64_t tokens = lf / dit_config.patch_size[0] * (h / dit_config.patch_size[1]) * (h / dit_config.patch_size[2]);
  bench::Flops dit_f = bench::wan_transformer_flops(dit_config, tokens, 77);
  const bench::Flops te_f = bench::clip_flops(te_config, B, 77);
  const double step_gflop = 3.0 * (B * dit_f.total() + te_f.total()) / 1e9;
  json rows = json::array();
  for (const auto& dtype : o.dtypes) {
    torch::manual_seed(0);
    models::CLIPTextModel te(te_config);
    models::WanTransformer3DModel dit(dit_config);
    train::NamedTensors params = train::named(dit->named_parameters(true));
    for (auto& p : train::named(te->named_parameters(true))) params.emplace_back("te." + p.first, p.second);
    train::AdamW opt(params, {});
    Rng rng(1);
    const at::Tensor ids = at::randint(0, te_config.vocab_size, {B, 77}, at::kLong);
    std::vector<double> times;
    double loss = 0;
    for (int64_t s = 0; s <= o.train_steps; ++s) {
      const double t0 = now_s();
      compat::AutocastGuard autocast(at::kCPU, at::kBFloat16, dtype == "bf16");
      const at::Tensor x0 = rng.randn({B, z, lf, h, h}), eps = rng.randn(x0.sizes());
      const at::Tensor sigma = rng.rand({B}), sv = sigma.view({B, 1, 1, 1, 1});
      at::Tensor input = (1 - sv) * x0 + sv * eps;
      if (dit_config.in_channels == 2 * z + tf)
        input = at::cat({input, pipelines::video_frame_condition(x0, at::zeros({B}, at::kLong), tf)}, 1);
      const at::Tensor context = models::sd_prompt_embeds(te, ids, 0);
      const at::Tensor out = dit->forward(input, sigma * 1000, context);
      const at::Tensor l = torch::mse_loss(out.to(at::kFloat), eps - x0);
      opt.zero_grad();
      l.backward();
      opt.step(1e-4);
      loss = l.item<double>();
      if (s > 0) times.push_back(now_s() - t0);  // step 0 is the warm-up
    }
    const double step_s = median(times);
    const double peak = peaks.at(dtype).get<double>();
    rows.push_back({{"dtype", dtype == "bf16" ? "bf16 autocast" : "f32"},
                    {"batch", B},
                    {"clip", std::to_string(o.frames) + "x" + std::to_string(o.size) + "x" + std::to_string(o.size)},
                    {"tokens", tokens},
                    {"step_s", step_s},
                    {"samples_per_s", B / step_s},
                    {"step_gflop", step_gflop},
                    {"achieved_gflops", step_gflop / step_s},
                    {"gemm_peak_gflops", peak},
                    {"fraction_of_gemm_peak", step_gflop / step_s / peak},
                    {"last_loss", loss},
                    {"runs_s", times}});
    std::fprintf(stderr, "bench_video: train %s %.3f s/step, %.1f samples/s, %.0f%% of the GEMM peak\n", dtype.c_str(),
                 step_s, B / step_s, 100.0 * step_gflop / step_s / peak);
  }
  return {{"transformer_forward_per_sample", dit_f.to_json()}, {"text_encoder_forward", te_f.to_json()}, {"rows", rows}};
}

json bench_generate(const Options& o) {
  const double t0 = now_s();
  auto pipeline = pipelines::load_pipeline({.model = o.model});
  const double load_s = now_s() - t0;
  pipelines::Request r;
  r.prompt = "a red star moving to the left";
  r.num_frames = o.frames;
  r.width = r.height = o.size;
  r.steps = o.steps;
  std::vector<double> times;
  for (int64_t i = 0; i <= o.runs; ++i) {
    const double s0 = now_s();
    (void)pipeline->generate(r);
    if (i > 0) times.push_back(now_s() - s0);
  }
  const double clip_s = median(times);
  std::fprintf(stderr, "bench_video: generate %.3f s per clip (%lld steps)\n", clip_s, static_cast<long long>(o.steps));
  return {{"load_s", load_s},  {"frames", o.frames}, {"size", o.size}, {"steps", o.steps},
          {"seconds_per_clip", clip_s}, {"runs_s", times}, {"guidance", pipeline->info().defaults.guidance}};
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  set_num_threads(o.threads);
  json report = {{"benchmark", "genvis-video"}, {"model", o.model}, {"threads", num_threads()},
                 {"load_average_start", bench::load_average()}};
  try {
    if (o.only.empty() || o.only == "train") {
      json peaks = {{"f32", gemm_peak_gflops(at::kFloat)}, {"bf16", gemm_peak_gflops(at::kBFloat16)}};
      report["gemm_peak_gflops"] = peaks;
      report["train"] = bench_train(o, peaks);
    }
    if (o.only.empty() || o.only == "generate") report["generate"] = bench_generate(o);
  } catch (const std::exception& e) {  // a model folder that does not load: one line, not an abort
    std::fprintf(stderr, "bench_video: %s\n", e.what());
    return 1;
  }
  report["load_average_end"] = bench::load_average();
  std::printf("%s\n", report.dump(2).c_str());
  return 0;
}
