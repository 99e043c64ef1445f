// Latent diffusion recipe and default-model benchmark on the CPU (JSON on stdout).
//
//   bench_ldm [--model models/genvis-emoji-32] [--batch 32] [--train-steps 6] [--dtype f32,bf16]
//             [--size 64] [--steps 20] [--runs 3] [--threads 0] [--only train|generate] [--profile PREFIX]
//             [--cache-interval 1,2,3]
//
// train     The model's UNet + CLIP text encoder, built from its config.json files with fresh
//           random weights, trained as `genvis train ldm` trains them (joint; batch --batch, 77
//           tokens): one step = text encoder + UNet forward, MSE against the noise, backward,
//           AdamW update. f32, and bf16 autocast (f32 weights and optimiser). Reports the median
//           step time after one warm-up step, steps/s, samples/s, the step's GFLOP (3x the
//           forward: forward + two backward GEMMs), the achieved GFLOP/s and its fraction of this
//           machine's GEMM peak of the same dtype (measured here: best of 2048^3 products).
// generate  The model as shipped (weights loaded through the pipeline): one --size image,
//           --steps Euler steps, CFG 7, batch 1; median of --runs after a warm-up, split into
//           model load, text encoding + sampling + VAE decode (total). With --cache-interval, one
//           row per DeepCache interval (1 = off): its time, speed-up and the PSNR of its image
//           against the uncached one (same seed; a batch of 4 prompts' images, [0, 1] scale).
#include "args.h"
#include "flops.h"
#include "measure.h"

#include "core/rng.h"

#include <cmath>
#include "core/threads.h"
#include "core/torch_compat.h"
#include "models/clip_text/clip_text_model.h"
#include "models/unet2d_condition/unet2d_condition.h"
#include "nn/attention.h"
#include "pipelines/stable_diffusion.h"
#include "train/optim.h"

#include <ATen/Parallel.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace {

using json = nlohmann::json;
using namespace genvis;

struct Options {
  std::string model = std::string(GENVIS_BENCH_SOURCE_DIR) + "/models/genvis-emoji-32";
  int64_t batch = 32, train_steps = 6, size = 64, steps = 20, runs = 3;
  int threads = 0;
  std::vector<std::string> dtypes = {"f32", "bf16"};
  std::string only;
  std::string profile;  // chrome trace of the last training step of each dtype (libtorch 1.x)
  std::vector<int64_t> cache_intervals = {1};
};

constexpr const char* kUsage =
    "[--model DIR] [--batch N] [--train-steps N] [--dtype f32,bf16] [--size PX] [--steps N] [--runs N] [--threads N] "
    "[--only train|generate] [--profile TRACE.json] [--cache-interval 1,2,3]";
[[noreturn]] void usage(const std::string& why) { bench::usage_exit("bench_ldm", kUsage, why); }

Options parse(int argc, char** argv) {
  Options o;
  bench::Args args(argc, argv, "bench_ldm", kUsage);
  while (args.next()) {
    if (args.is("--model")) o.model = args.text();
    else if (args.is("--batch")) o.batch = args.count();
    else if (args.is("--train-steps")) o.train_steps = args.count();
    else if (args.is("--size")) o.size = args.count();
    else if (args.is("--steps")) o.steps = args.count();
    else if (args.is("--runs")) o.runs = args.count();
    else if (args.is("--threads")) o.threads = static_cast<int>(args.count());
    else if (args.is("--only")) o.only = args.text();
    else if (args.is("--profile")) o.profile = args.text();
    else if (args.is("--dtype")) o.dtypes = args.list();
    else if (args.is("--cache-interval")) o.cache_intervals = args.counts();
    else args.unknown();
  }
  for (const auto& d : o.dtypes)
    if (d != "f32" && d != "bf16") usage("--dtype takes f32 and/or bf16, got " + d);
  if (!o.only.empty() && o.only != "train" && o.only != "generate") usage("--only takes train or generate");
  if (o.batch < 1 || o.train_steps < 1 || o.runs < 1 || o.steps < 1) usage("--batch, --train-steps, --runs, --steps must be >= 1");
  if (o.size < 8 || o.size % 8) usage("--size must be a positive multiple of 8");
  return o;
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

json read_json(const std::string& path) { return bench::read_model_json(path, "bench_ldm"); }

using bench::gemm_peak_gflops;

json bench_train(const Options& o, const json& peaks) {
  const json unet_json = read_json(o.model + "/unet/config.json");
  const json te_json = read_json(o.model + "/text_encoder/config.json");
  const auto unet_config = models::UNet2DConditionConfig::from_json(unet_json, "unet/config.json");
  const auto te_config = models::CLIPTextConfig::from_json(te_json, "text_encoder/config.json");
  const int64_t latent = unet_config.sample_size.value_or(8), tokens = 77, B = o.batch;
  const bench::Flops unet_f = bench::unet_flops(unet_config, B, latent, latent, tokens);
  const bench::Flops te_f = bench::clip_flops(te_config, B, tokens);
  const double step_gflop = 3.0 * (unet_f.total() + te_f.total()) / 1e9;

  json rows = json::array();
  for (const auto& dtype : o.dtypes) {
    torch::manual_seed(0);
    models::CLIPTextModel te(te_config);
    models::UNet2DConditionModel unet(unet_config);
    train::NamedTensors params = train::named(unet->named_parameters(true));
    for (auto& p : train::named(te->named_parameters(true))) params.emplace_back("te." + p.first, p.second);
    train::AdamW opt(params, {});
    Rng rng(1);
    const at::Tensor ids = at::randint(0, te_config.vocab_size, {B, tokens}, at::kLong);
    const at::Tensor acp = at::linspace(0.999, 0.01, 1000);
    std::vector<double> times;
    double loss = 0;
    for (int64_t s = 0; s <= o.train_steps; ++s) {
#if !GENVIS_TORCH_AT_LEAST(2, 0)
      std::optional<torch::autograd::profiler::RecordProfile> trace;
      if (!o.profile.empty() && s == o.train_steps) trace.emplace(o.profile + "." + dtype + ".json");
#endif
      const double t0 = now_s();
      compat::AutocastGuard autocast(at::kCPU, at::kBFloat16, dtype == "bf16");
      const at::Tensor x0 = rng.randn({B, unet_config.in_channels, latent, latent});
      const at::Tensor eps = rng.randn(x0.sizes());
      const at::Tensor ts = at::randint(0, 1000, {B}, at::kLong);
      const at::Tensor a = acp.index_select(0, ts).view({B, 1, 1, 1});
      const at::Tensor context = models::sd_prompt_embeds(te, ids, 0);
      const at::Tensor out = unet->forward(a.sqrt() * x0 + (1 - a).sqrt() * eps, ts.to(at::kFloat), context);
      const at::Tensor l = torch::mse_loss(out.to(at::kFloat), eps);
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
                    {"latent", latent},
                    {"step_s", step_s},
                    {"steps_per_s", 1.0 / step_s},
                    {"samples_per_s", B / step_s},
                    {"step_gflop", step_gflop},
                    {"achieved_gflops", step_gflop / step_s},
                    {"gemm_peak_gflops", peak},
                    {"fraction_of_gemm_peak", step_gflop / step_s / peak},
                    {"last_loss", loss},
                    {"runs_s", times}});
    std::fprintf(stderr, "bench_ldm: train %s %.3f s/step, %.1f samples/s, %.0f%% of the GEMM peak\n", dtype.c_str(),
                 step_s, B / step_s, 100.0 * step_gflop / step_s / peak);
  }
  return {{"unet_forward", unet_f.to_json()}, {"text_encoder_forward", te_f.to_json()}, {"rows", rows}};
}

json bench_generate(const Options& o) {
  pipelines::ModelSource source;
  source.model = o.model;
  const double t0 = now_s();
  pipelines::StableDiffusion sd = pipelines::load_stable_diffusion(source);
  const double load_s = now_s() - t0;
  pipelines::GenerateOptions g;
  g.prompt = "a red apple";
  g.steps = o.steps;
  g.width = g.height = o.size;
  g.cfg_scale = 7;
  g.seed = 1;
  g.validate();
  json rows = json::array();
  at::Tensor reference;  // interval 1's images
  double base_s = 0;
  for (const int64_t interval : o.cache_intervals) {
    if (interval < 1) usage("--cache-interval values must be >= 1");
    g.cache_interval = interval;
    std::vector<double> times;
    for (int64_t r = 0; r <= o.runs; ++r) {
      const double s0 = now_s();
      const auto out = pipelines::generate(sd, g);
      (void)out.images.sum().item<float>();
      if (r > 0) times.push_back(now_s() - s0);
    }
    const double total = median(times);
    json row = {{"cache_interval", interval}, {"generate_s", total}, {"runs_s", times}};
    if (o.cache_intervals.size() > 1) {
      pipelines::GenerateOptions q = g;
      q.prompts = {"a red apple", "grinning face", "a blue car", "a cat"};
      q.batch = 4;
      const at::Tensor images = pipelines::generate(sd, q).images.to(at::kFloat);
      if (interval == 1) {
        reference = images;
        base_s = total;
      } else if (reference.defined()) {
        const double mse = (images - reference).pow(2).mean().item<double>();
        row["psnr_db_vs_off"] = 10 * std::log10(1.0 / std::max(mse, 1e-20));
        row["speedup_vs_off"] = base_s / total;
      }
    }
    std::fprintf(stderr, "bench_ldm: generate %lldx%lld, %lld steps, cache interval %lld: %.3f s\n",
                 static_cast<long long>(o.size), static_cast<long long>(o.size), static_cast<long long>(o.steps),
                 static_cast<long long>(interval), total);
    rows.push_back(row);
  }
  json report = {{"model", o.model}, {"size", o.size}, {"steps", o.steps}, {"sampler", g.sampler},
                 {"cfg_scale", g.cfg_scale}, {"load_s", load_s}, {"generate_s", rows[0]["generate_s"]},
                 {"runs_s", rows[0]["runs_s"]}};
  if (o.cache_intervals.size() > 1) report["cache"] = rows;
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    set_num_threads(o.threads);
    if (std::getenv("BENCH_FTZ")) at::globalContext().setFlushDenormal(true);
    json report = {{"benchmark", "ldm"}, {"threads", at::get_num_threads()}, {"libtorch", compat::torch_version()}};
    if (o.only.empty() || o.only == "train") {
      json peaks;
      for (const auto& d : o.dtypes) peaks[d] = gemm_peak_gflops(d == "bf16" ? at::kBFloat16 : at::kFloat);
      report["gemm_peak_gflops"] = peaks;
      report["train"] = bench_train(o, peaks);
    }
    if (o.only.empty() || o.only == "generate") report["generate"] = bench_generate(o);
    std::printf("%s\n", report.dump(2).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ldm: %s\n", e.what());
    return 1;
  }
  return 0;
}
