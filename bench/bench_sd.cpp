// Stable Diffusion 1.5 inference benchmark with random weights (no model file needed).
//
//   bench_sd [--size 256,512] [--dtype f32,bf16,int8] [--steps 3] [--threads 0] [--only unet|vae|text]
//            [--device cpu|cuda] [--memory-format auto|nchw|cl] [--profile]
// Without --device it measures the CPU, and CUDA too when torch::cuda::is_available(). "int8" is
// the bf16 models with `--quant int8` applied to the UNet and text encoder (the VAE stays bf16);
// its UNet rows add relative_error_vs_bf16 (the step's output against the same weights in bf16).
//
// Models: SD1.5-architecture UNet (UNet2DConditionConfig defaults, cross_attention_dim 768),
// AutoencoderKL (128/256/512/512, 2 layers per block) and CLIP ViT-L/14 text encoder. JSON on
// stdout; "summary" has one row per dtype and image size:
//   unet_step_s      median seconds of one CFG step = one UNet forward at batch 2 (after a warm-up)
//   text_encode_s    CLIP-L forward, batch 2, 77 tokens (median)
//   vae_decode_s     VAE decode, batch 1 (median)
//   *_cpu_s          CPU seconds of the same run, all threads (on a loaded machine the wall
//                    time is not the work: compare cpu_s / threads)
//   *_peak_rss_mb    peak resident memory during that phase (VmHWM, reset before the phase with
//                    /proc/self/clear_refs), every model of the process included;
//                    process_peak_rss_mb is ru_maxrss (model construction included)
//   unet_gflop       UNet FLOPs per step, counted analytically from the config (below)
//   ratio            unet_step_s / (unet_gflop / bf16 GEMM peak); 1.0 = every FLOP at GEMM peak
// "gemm" holds the machine's GEMM peak (best of several 2048^3 at::mm / nn::linear; f32 at::mm
// at 1024^3 only, as it may be the reference BLAS) and "results" every run and profile in full.
//
// Each dtype (and the GEMM measurement) runs in its own child process (this binary with --child),
// so every process peak belongs to one dtype. Models are built directly in the benchmark dtype
// (default dtype set while constructing), then cast with ->to() (a no-op) - a file-loading
// pipeline never holds an f32 copy of a bf16 model either.
//
// FLOP counting: 2*M*N*K per matmul; convolutions 2*Cout*Cin*k*k*Hout*Wout per sample; linears
// 2*rows*in*out; attention 4*N*T*inner per sample (QK^T and PV). Norms, activations, softmax,
// residual adds and upsampling are not counted (memory-bound, <1% of FLOPs). The walk mirrors the
// module tree; the weights it visits are checked against the built model's parameter count
// (flop_walk_params == model_matrix_params, every conv and linear weight).
#include "core/threads.h"
#include "core/torch_compat.h"
#include "models/autoencoder_kl/autoencoder_kl.h"
#include "models/clip_text/clip_text_model.h"
#include "models/unet2d_condition/unet2d_condition.h"
#include "nn/attention.h"
#include "nn/memory_format.h"
#include "nn/quantize.h"
#include "pipelines/common/quantize.h"
#include "args.h"
#include "flops.h"
#include "measure.h"

#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <torch/cuda.h>
#include <torch/torch.h>

namespace {

using genvis::models::AutoencoderKLConfig;
using genvis::models::CLIPTextConfig;
using genvis::models::UNet2DConditionConfig;
using json = nlohmann::json;
using namespace genvis::bench;

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  std::vector<int64_t> sizes = {256, 512};
  std::vector<std::string> dtypes = {"f32", "bf16"};
  int steps = 3;
  int threads = 0;  // 0: automatic (genvis::set_num_threads)
  std::string only;  // "", "unet", "vae", "text"
  std::string device = "cpu";
  bool device_given = false;
  std::string memory_format = "auto";  // auto: channels-last on the CPU
  bool profile = false;
  std::string child;  // "", "gemm", or a dtype
};

constexpr const char* kUsage =
    "[--size 256,512] [--dtype f32,bf16,f16,int8] [--steps N] [--threads N] [--only unet|vae|text] [--device cpu|cuda] "
    "[--memory-format auto|nchw|cl] [--profile]";
[[noreturn]] void usage(const std::string& why) { usage_exit("bench_sd", kUsage, why); }

Options parse(int argc, char** argv) {
  Options o;
  Args args(argc, argv, "bench_sd", kUsage);
  while (args.next()) {
    if (args.is("--size")) o.sizes = args.counts();
    else if (args.is("--dtype")) o.dtypes = args.list();
    else if (args.is("--steps")) o.steps = static_cast<int>(args.count());
    else if (args.is("--threads")) o.threads = static_cast<int>(args.count());
    else if (args.is("--only")) o.only = args.text();
    else if (args.is("--device")) o.device = args.text(), o.device_given = true;
    else if (args.is("--memory-format")) o.memory_format = args.text();
    else if (args.is("--profile")) o.profile = true;
    else if (args.is("--child")) o.child = args.text();
    else args.unknown();
  }
  for (const auto& d : o.dtypes)
    if (d != "f32" && d != "bf16" && d != "f16" && d != "int8") usage("unknown dtype " + d);
  for (const auto s : o.sizes)
    if (s < 64 || s % 64 != 0) usage("--size must be a multiple of 64");
  if (!o.only.empty() && o.only != "unet" && o.only != "vae" && o.only != "text") usage("bad --only " + o.only);
  if (o.device != "cpu" && o.device != "cuda") usage("bad --device " + o.device);
  if (o.memory_format != "auto" && o.memory_format != "nchw" && o.memory_format != "cl")
    usage("bad --memory-format " + o.memory_format);
  if (o.steps < 1) usage("--steps must be >= 1");
  return o;
}

// "int8": the bf16 models with int8 copies of the UNet's and text encoder's layers (--quant int8).
at::ScalarType scalar_type(const std::string& d) {
  return d == "bf16" || d == "int8" ? at::kBFloat16 : d == "f16" ? at::kHalf : at::kFloat;
}

// ---------------------------------------------------------------------------------------------
// Model configurations (SD1.5)

UNet2DConditionConfig unet_config() {
  UNet2DConditionConfig c;  // defaults are SD1.5 but for the context width
  c.cross_attention_dim = {768};
  c.sample_size = 64;
  return c;
}

AutoencoderKLConfig vae_config() {
  AutoencoderKLConfig c;
  c.block_out_channels = {128, 256, 512, 512};
  c.down_block_types = std::vector<std::string>(4, "DownEncoderBlock2D");
  c.up_block_types = std::vector<std::string>(4, "UpDecoderBlock2D");
  c.layers_per_block = 2;
  c.sample_size = 512;
  return c;
}

CLIPTextConfig clip_config() {
  CLIPTextConfig c;
  c.architectures = {"CLIPTextModel"};
  c.hidden_size = 768;
  c.intermediate_size = 3072;
  c.projection_dim = 768;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.hidden_act = "quick_gelu";
  return c;
}

constexpr int64_t kTokens = 77;

// ---------------------------------------------------------------------------------------------
// Measurement helpers

struct Device {
  at::Device device = at::kCPU;
  void sync() const {
    if (device.is_cuda()) torch::cuda::synchronize();
  }
};

// Median of `runs` timed calls after one warm-up; also the phase's peak RSS.
// cpu_s: median CPU seconds per run (all threads); on a loaded machine cpu_s / threads is a
// steadier measure of the work than the wall time.
struct Timing {
  double median_s = 0, min_s = 0, cpu_s = 0, peak_rss_mb = 0;
  std::vector<double> runs, cpu_runs;
};

template <typename F>
Timing time_phase(const Device& dev, int runs, F&& f) {
  reset_peak_rss();
  Timing t;
  f();  // warm-up: oneDNN primitive creation, allocator pools
  dev.sync();
  for (int i = 0; i < runs; ++i) {
    const double t0 = now_s(), c0 = cpu_s();
    f();
    dev.sync();
    t.runs.push_back(now_s() - t0);
    t.cpu_runs.push_back(cpu_s() - c0);
  }
  t.median_s = median(t.runs);
  t.min_s = *std::min_element(t.runs.begin(), t.runs.end());
  t.cpu_s = median(t.cpu_runs);
  t.peak_rss_mb = status_mb("VmHWM:");
  return t;
}

json timing_json(const Timing& t) {
  return {{"median_s", t.median_s}, {"min_s", t.min_s}, {"runs_s", t.runs}, {"cpu_s", t.cpu_s}, {"peak_rss_mb", t.peak_rss_mb}};
}

// Builds a module with parameters created directly in `dtype`, then casts it (a no-op for
// the parameters, but also moves it to the device).
template <typename M, typename Config>
M build(const Config& config, at::ScalarType dtype, const Device& dev, bool channels_last) {
  const auto previous = c10::get_default_dtype();
  c10::set_default_dtype(c10::scalarTypeToTypeMeta(dtype == at::kHalf ? at::kFloat : dtype));
  M m(config);
  c10::set_default_dtype(previous);
  m->to(dtype);
  m->to(dev.device);
  m->eval();
  if (channels_last) genvis::nn::to_channels_last(*m);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Child: GEMM peak

template <typename F>
double best_gflops(double flop, int runs, F&& f) {
  f();
  double best = 1e30;
  for (int i = 0; i < runs; ++i) {
    const double t0 = now_s();
    f();
    best = std::min(best, now_s() - t0);
  }
  return flop / best / 1e9;
}

json run_gemm(const Options& o, const Device& dev) {
  json r;
  const auto opts = at::TensorOptions().device(dev.device);
  {
    const int64_t n = 2048;
    const at::Tensor a = at::randn({n, n}, opts).to(at::kBFloat16), b = at::randn({n, n}, opts).to(at::kBFloat16);
    r["bf16_mm_gflops"] = best_gflops(2.0 * n * n * n, 5, [&] { at::mm(a, b); dev.sync(); });
    r["bf16_mm_n"] = n;
  }
  {
    // at::mm f32 goes to the BLAS libtorch was linked with (Debian: whatever libblas.so.3 is);
    // genvis::nn::linear goes through oneDNN on the CPU.
    const int64_t n = dev.device.is_cuda() ? 2048 : 1024;
    const at::Tensor a = at::randn({n, n}, opts), b = at::randn({n, n}, opts);
    r["f32_mm_gflops"] = best_gflops(2.0 * n * n * n, 2, [&] { at::mm(a, b); dev.sync(); });
    r["f32_mm_n"] = n;
    const int64_t m = 2048;
    const at::Tensor x = at::randn({m, m}, opts), w = at::randn({m, m}, opts);
    r["f32_linear_gflops"] = best_gflops(2.0 * m * m * m, 3, [&] { genvis::nn::linear(x, w, {}); dev.sync(); });
    const at::Tensor xb = x.to(at::kBFloat16), wb = w.to(at::kBFloat16);
    r["bf16_linear_gflops"] = best_gflops(2.0 * m * m * m, 5, [&] { genvis::nn::linear(xb, wb, {}); dev.sync(); });
    r["linear_n"] = m;
  }
  r["gemm_peak_gflops"] = {{"bf16", std::max(r["bf16_mm_gflops"].get<double>(), r["bf16_linear_gflops"].get<double>())},
                           {"f32", std::max(r["f32_mm_gflops"].get<double>(), r["f32_linear_gflops"].get<double>())}};
  return r;
}

// ---------------------------------------------------------------------------------------------
// Child: one dtype, every size

json run_dtype(const Options& o, const Device& dev) {
  const at::ScalarType dtype = scalar_type(o.child);
  const bool want_unet = o.only.empty() || o.only == "unet";
  const bool want_vae = o.only.empty() || o.only == "vae";
  const bool want_text = o.only.empty() || o.only == "text";
  torch::NoGradGuard no_grad;
  json r = {{"dtype", o.child}};

  const double t0 = now_s();
  genvis::models::UNet2DConditionModel unet{nullptr};
  genvis::models::AutoencoderKL vae{nullptr};
  genvis::models::CLIPTextModel clip{nullptr};
  const bool channels_last = o.memory_format == "cl" || (o.memory_format == "auto" && !dev.device.is_cuda());
  r["channels_last"] = channels_last;
  if (want_unet) unet = build<genvis::models::UNet2DConditionModel>(unet_config(), dtype, dev, channels_last);
  if (want_vae) vae = build<genvis::models::AutoencoderKL>(vae_config(), dtype, dev, channels_last);
  if (want_text) clip = build<genvis::models::CLIPTextModel>(clip_config(), dtype, dev, false);
  const bool int8 = o.child == "int8";
  if (int8) {
    if (want_unet) genvis::pipelines::quant::apply(*unet, "unet", genvis::pipelines::quant::unet_keeps);
    if (want_text) genvis::pipelines::quant::apply(*clip, "text_encoder");
    r["int8_kernel"] = genvis::nn::int8::kernel_name(genvis::nn::int8::kernel());
  }
  r["build_s"] = now_s() - t0;
  r["models_rss_mb"] = status_mb("VmRSS:");
  r["build_peak_rss_mb"] = status_mb("VmHWM:");
  std::fprintf(stderr, "bench_sd: %s models built in %.1f s, RSS %.0f MB\n", o.child.c_str(), now_s() - t0,
               status_mb("VmRSS:"));

  const auto opts = at::TensorOptions().device(dev.device);
  if (want_unet) {
    const Flops f = unet_flops(unet->config, 2, 64, 64, kTokens);
    r["unet_param_check"] = {{"flop_walk_params", f.params}, {"model_matrix_params", matrix_params(*unet)}};
  }
  if (want_vae) {
    const Flops f = vae_decode_flops(vae->config, 64, 64);
    r["vae_decode_param_check"] = {{"flop_walk_params", f.params},
                                   {"model_matrix_params", matrix_params(*vae->decoder) + matrix_params(*vae->post_quant_conv)}};
  }
  if (want_text) {
    const Flops f = clip_flops(clip->text_model->config, 2, kTokens);
    r["text_param_check"] = {{"flop_walk_params", f.params},
                             {"model_matrix_params", matrix_params(*clip, "text_model.embeddings.")}};
  }

  if (want_text) {
    at::manual_seed(0);
    const at::Tensor ids = at::randint(0, 49407, {2, kTokens}, opts.dtype(at::kLong));
    const Timing t = time_phase(dev, o.steps, [&] { clip->forward(ids); });
    r["text"] = timing_json(t);
    r["text"]["gflop"] = clip_flops(clip->text_model->config, 2, kTokens).total() / 1e9;
    if (o.profile) r["text"]["profile"] = profile([&] { clip->forward(ids); });
    std::fprintf(stderr, "bench_sd: %s text encode %.3f s\n", o.child.c_str(), t.median_s);
  }

  for (const int64_t size : o.sizes) {
    const int64_t lat = size / 8;
    json s = {{"size", size}};
    if (want_unet) {
      at::manual_seed(0);
      const at::Tensor x = at::randn({2, 4, lat, lat}, opts).to(dtype);
      const at::Tensor t = at::full({2}, 999.0, opts);
      const at::Tensor ctx = at::randn({2, kTokens, 768}, opts).to(dtype);
      at::Tensor out;
      const Timing tm = time_phase(dev, o.steps, [&] { out = unet->forward(x, t, ctx); });
      const Flops f = unet_flops(unet->config, 2, lat, lat, kTokens);
      s["unet"] = timing_json(tm);
      s["unet"]["flops"] = f.to_json();
      s["unet"]["finite"] = out.isfinite().all().item<bool>();
      std::fprintf(stderr, "bench_sd: %s %ld unet step %.2f s\n", o.child.c_str(), size, tm.median_s);
      if (o.profile) s["unet"]["profile"] = profile([&] { unet->forward(x, t, ctx); });
      // DeepCache's cached pass (conv_in, the first down block and the last up block on the kept
      // deep features): its time against the full step bounds what an interval can save.
      genvis::models::UNetDeepCache cache;
      unet->forward(x, t, ctx, std::nullopt, cache, true);
      const Timing shallow = time_phase(dev, o.steps, [&] { out = unet->forward(x, t, ctx, std::nullopt, cache, false); });
      s["unet"]["deepcache_cached_pass"] = timing_json(shallow);
      s["unet"]["deepcache_cached_over_full"] = shallow.median_s / tm.median_s;
      std::fprintf(stderr, "bench_sd: %s %ld unet DeepCache cached pass %.2f s\n", o.child.c_str(), size, shallow.median_s);
      if (int8) {
        // The int8 step's deviation from the bf16 step of the same weights and inputs.
        const at::Tensor q = unet->forward(x, t, ctx).to(at::kFloat);
        genvis::nn::dequantize(*unet);
        const at::Tensor b = unet->forward(x, t, ctx).to(at::kFloat);
        s["unet"]["relative_error_vs_bf16"] = ((q - b).norm() / b.norm()).item<double>();
        genvis::pipelines::quant::apply(*unet, "unet", genvis::pipelines::quant::unet_keeps);
      }
    }
    if (want_vae) {
      at::manual_seed(0);
      const at::Tensor z = at::randn({1, 4, lat, lat}, opts).to(dtype);
      at::Tensor img;
      const Timing tm = time_phase(dev, o.steps, [&] { img = vae->decode(z); });
      s["vae_decode"] = timing_json(tm);
      s["vae_decode"]["flops"] = vae_decode_flops(vae->config, lat, lat).to_json();
      s["vae_decode"]["finite"] = img.isfinite().all().item<bool>();
      if (o.profile) s["vae_decode"]["profile"] = profile([&] { vae->decode(z); });
      std::fprintf(stderr, "bench_sd: %s %ld vae decode %.2f s\n", o.child.c_str(), size, tm.median_s);
    }
    r["sizes"].push_back(s);
  }
  r["process_peak_rss_mb"] = process_peak_rss_mb();
  return r;
}

// ---------------------------------------------------------------------------------------------
// Parent: one child per dtype, then the summary.

std::vector<std::string> child_args(const Options& o, const std::string& device, const std::string& child) {
  std::string sizes;
  for (const auto s : o.sizes) sizes += (sizes.empty() ? "" : ",") + std::to_string(s);
  std::vector<std::string> a = {"--child", child, "--size", sizes, "--steps", std::to_string(o.steps),
                                "--threads", std::to_string(o.threads), "--device", device};
  if (!o.only.empty()) a.insert(a.end(), {"--only", o.only});
  a.insert(a.end(), {"--memory-format", o.memory_format});
  if (o.profile) a.push_back("--profile");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  const bool cuda = torch::cuda::is_available();
  if (o.device == "cuda" && !cuda) usage("--device cuda but CUDA is not available");
  const int libtorch_default_threads = at::get_num_threads();
  genvis::set_num_threads(o.threads);  // 0: automatic, as the CLI's --threads 0
  o.threads = genvis::num_threads();

  if (!o.child.empty()) {
    Device dev;
    dev.device = o.device == "cuda" ? at::Device(at::kCUDA) : at::Device(at::kCPU);
    try {
      json r = o.child == "gemm" ? run_gemm(o, dev) : run_dtype(o, dev);
      r["device"] = o.device;
      std::printf("%s\n", r.dump().c_str());
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_sd child %s on %s: %s\n", o.child.c_str(), o.device.c_str(), e.what());
      return 1;
    }
  }

  // Without --device: the CPU, and CUDA too where there is one.
  std::vector<std::string> devices = {o.device_given ? o.device : "cpu"};
  if (!o.device_given && cuda) devices.push_back("cuda");
  json report = {{"benchmark", "sd15"},
                 {"devices", devices},
                 {"threads", o.threads},
                 {"libtorch_default_threads", libtorch_default_threads},
                 {"hardware_concurrency", std::thread::hardware_concurrency()},
                 {"mkldnn", at::hasMKLDNN()},
                 {"attention_kernel_bf16", genvis::nn::cpu_attention_kernel(at::kBFloat16)},
                 {"steps", o.steps},
                 {"load_average_start", load_average()}};
  const double t0 = now_s();
  report["results"] = json::array();
  for (const auto& device : devices) {
    const json gemm = run_child(child_args(o, device, "gemm"));
    report["gemm"][device] = gemm;
    const double bf16_peak = gemm.contains("gemm_peak_gflops") ? gemm["gemm_peak_gflops"]["bf16"].get<double>() : 0.0;
    for (const auto& d : o.dtypes) {
      json r = run_child(child_args(o, device, d));
      r["device"] = device;
      if (r.contains("sizes"))
        for (auto& s : r["sizes"])
          if (s.contains("unet") && bf16_peak > 0) {
            const double bound = s["unet"]["flops"]["gflop"].get<double>() / bf16_peak;
            s["unet"]["bf16_flop_bound_s"] = bound;
            s["unet"]["ratio"] = s["unet"]["median_s"].get<double>() / bound;
          }
      report["results"].push_back(r);
    }
  }
  json summary = json::array();
  for (const auto& r : report["results"]) {
    if (!r.contains("sizes")) continue;
    for (const auto& sz : r["sizes"]) {
      json row = {{"device", r["device"]}, {"dtype", r["dtype"]}, {"size", sz["size"]}, {"channels_last", r["channels_last"]}};
      if (r.contains("text")) row["text_encode_s"] = r["text"]["median_s"];
      if (sz.contains("unet")) {
        const json& u = sz["unet"];
        row.update({{"unet_step_s", u["median_s"]}, {"unet_cpu_s", u["cpu_s"]}, {"unet_peak_rss_mb", u["peak_rss_mb"]},
                    {"unet_gflop", u["flops"]["gflop"]}});
        if (u.contains("ratio")) row.update({{"bf16_flop_bound_s", u["bf16_flop_bound_s"]}, {"ratio", u["ratio"]}});
        row["deepcache_cached_pass_s"] = u["deepcache_cached_pass"]["median_s"];
        if (u.contains("relative_error_vs_bf16")) row["unet_relative_error_vs_bf16"] = u["relative_error_vs_bf16"];
      }
      if (sz.contains("vae_decode"))
        row.update({{"vae_decode_s", sz["vae_decode"]["median_s"]}, {"vae_decode_cpu_s", sz["vae_decode"]["cpu_s"]},
                    {"vae_peak_rss_mb", sz["vae_decode"]["peak_rss_mb"]}});
      row["process_peak_rss_mb"] = r["process_peak_rss_mb"];
      summary.push_back(row);
    }
  }
  report["summary"] = summary;
  report["wall_s"] = now_s() - t0;
  report["load_average_end"] = load_average();
  std::printf("%s\n", report.dump(2).c_str());
  return 0;
}
