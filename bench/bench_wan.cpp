// Wan 2.1 speed and memory with random weights (no download): the 1.3B text-to-video transformer
// and the full-size VAE, on the CPU. JSON on stdout, progress on stderr.
//
//   bench_wan [--size WxHxT[,WxHxT...]]... [--component transformer|vae|attention|all] [--dtype bf16|f32]
//             [--vae-dtype bf16|f32] [--quant none|int8] [--threads N] [--steps N] [--repeats N] [--warmup auto|N]
//             [--layers N] [--flat-size WxH] [--flat-frames 5,9,17,33] [--no-encode] [--profile] [--quick]
//
// Defaults: --size 256x256x17 --size 832x480x33 (width x height x frames: Wan's 480p, 480 rows of
// 832), bf16, every component, --steps 1, --repeats 1, --threads 0 (the cores). --quick: a smoke
// check in about half a minute (64x64x5, a 2-layer transformer, 32x32 frames for the memory
// runs, no warm-ups); its times are dominated by first calls, not compute.
//
// Models: WanTransformer3DModel with the Wan2.1-T2V-1.3B config (12 heads x 128 = 1536, ffn 8960,
// freq 256, 30 layers, 16 channels in/out, patch 1x2x2, text_dim 4096; --layers changes only the
// depth) and AutoencoderKLWan with the Wan 2.1 config (base 96, z 16, dim_mult 1,2,4,4, 2 residual
// blocks, temporal downsampling in the last two levels). Parameters are created directly in the
// benchmark dtype. A W x H x T video has latents [1, 16, 1 + (T-1)/4, H/8, W/8] and
// 1 + (T-1)/4 x H/16 x W/16 transformer tokens (832x480x33: 9 x 30 x 52 = 14040).
//
// transformer  one CFG step = two batch-1 forwards, conditional then unconditional, combined as
//              uncond + 5 (cond - uncond): what pipelines/wan/wan_sampling.cpp does per step;
//              text embeddings [1, 512, 4096] (random), timestep 999. Reports the median of
//              --steps steps after --warmup steps (auto: one when the step is small (<= 4096
//              tokens), none above: the 14040-token step takes minutes and a cold step differs
//              from a warm one by oneDNN's primitive creation, milliseconds), each forward's time,
//              the FLOPs of a step (counted from the config, below), GFLOP/s, and, filled in by
//              the parent, bf16_flop_bound_s = FLOPs / the bf16 GEMM peak measured in this run and
//              ratio = step_s / bf16_flop_bound_s (1.0 = every FLOP at the GEMM peak).
// vae          decode of the size's latents and encode of a video of that size (the pipeline's
//              path: frame 0, then one latent frame / four video frames per chunk with the
//              causal caches), --repeats each; and decode_memory: the decoder's peak RSS as the
//              frame count grows (--flat-frames at --flat-size), with the default chunking (one
//              latent frame per call) and, for contrast, all latent frames in one call.
// attention    nn::attention alone at the transformer's shapes for each size: self-attention over
//              every token, cross-attention to 512 text tokens and to 257 image tokens (I2V).
// gemm         (always, first and last) the bf16 and f32 GEMM peak: best of 2048^3 at::mm /
//              nn::linear, as bench_sd; the bound uses the larger bf16 peak of the two runs.
//              ratio_cpu_time repeats the ratio with CPU seconds per thread on both sides (the
//              step's and the GEMM's): on a shared machine, the ratio without the time other
//              processes held the cores.
//
// Memory: each measurement runs in its own child process (this binary with --child), so a peak
// belongs to one model and one size. peak_rss_mb is VmHWM over the timed phase (reset before it;
// the model's weights and the inputs are resident throughout), model_rss_mb the RSS after
// building the model, peak_above_model_mb their difference (activations, caches, scratch).
//
// FLOPs (bench/flops.h): 2 per multiply-add of every linear (patch embedding, condition and text
// embedders, q/k/v/o of both attentions, feed-forward, proj_out) and of the two attention matmuls
// (QK^T and PV: 4 * N * T * 1536 per layer); for the VAE, every convolution (each computes every
// input frame once) and the mid block's attention. Norms, activations, softmax, rotary embedding
// and residual adds are not counted. The walks' weight counts are checked against the models'
// (flop_walk_params == model_matrix_params).
#include "pipelines/common/quantize.h"
#include "core/threads.h"
#include "core/torch_compat.h"
#include "args.h"
#include "flops.h"
#include "measure.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "models/wan/wan_transformer.h"
#include "nn/attention.h"

#include <ATen/Parallel.h>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <torch/torch.h>
#include <vector>

namespace {

using json = nlohmann::json;
using namespace genvis;
using namespace genvis::bench;

constexpr int64_t kTextTokens = 512;   // Wan's max_sequence_length
constexpr int64_t kImageTokens = 257;  // CLIP ViT-H/14 penultimate states (I2V)
constexpr double kGuidance = 5.0;

struct Size {
  int64_t width = 0, height = 0, frames = 0;
  std::string label() const { return std::to_string(width) + "x" + std::to_string(height) + "x" + std::to_string(frames); }
  int64_t latent_frames() const { return 1 + (frames - 1) / 4; }
  int64_t tokens() const { return latent_frames() * (height / 16) * (width / 16); }
};

struct Options {
  std::vector<Size> sizes;
  std::string component = "all";
  std::string dtype = "bf16", vae_dtype;
  std::string quant = "none";  // "int8": the transformer's layers as int8 products (--quant int8)
  int threads = 0;
  int steps = 1, repeats = 1;
  int warmup = -1;  // -1: auto
  int64_t layers = 30;
  Size flat = {128, 128, 0};
  std::vector<int64_t> flat_frames = {5, 9, 17, 33};
  bool encode = true, profile = false, quick = false;
  std::string child;        // "", "gemm", "transformer", "vae", "vae-flat", "attention"
  int64_t decode_chunk = 1;  // vae-flat child: latent frames per decoder call
};

constexpr const char* kUsage =
    "[--size WxHxT[,...]]... [--component transformer|vae|attention|all] [--dtype bf16|f32] [--vae-dtype bf16|f32] "
    "[--quant none|int8] "
    "[--threads N] [--steps N] [--repeats N] [--warmup auto|N] [--layers N] [--flat-size WxH] "
    "[--flat-frames 5,9,17,33] [--no-encode] [--profile] [--quick]";
[[noreturn]] void usage(const std::string& why) { bench::usage_exit("bench_wan", kUsage, why); }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

int64_t to_int(const std::string& v, const std::string& what) {
  const auto n = bench::parse_integer(v, INT64_MIN);
  if (!n) usage(what + " needs an integer, got '" + v + "'");
  return *n;
}

Size parse_size(const std::string& s, bool with_frames) {
  const auto parts = split(s, 'x');
  if (parts.size() != (with_frames ? 3u : 2u)) usage("bad size '" + s + "' (want " + (with_frames ? "WxHxT)" : "WxH)"));
  Size z{to_int(parts[0], "width"), to_int(parts[1], "height"), with_frames ? to_int(parts[2], "frames") : 1};
  if (z.width < 16 || z.height < 16 || z.width % 16 || z.height % 16)
    usage("width and height must be positive multiples of 16 (the transformer's 2x2 patches of 8x latents): " + s);
  if (z.frames < 1 || (z.frames - 1) % 4) usage("frames must be 4k+1 (Wan's VAE): " + s);
  return z;
}

Options parse(int argc, char** argv) {
  Options o;
  bool sizes_given = false, flat_given = false, layers_given = false;
  bench::Args args(argc, argv, "bench_wan", kUsage);
  while (args.next()) {
    const std::string& a = args.name();
    if (args.is("--size")) {
      if (!sizes_given) o.sizes.clear();
      sizes_given = true;
      for (const auto& s : split(args.text(), ',')) o.sizes.push_back(parse_size(s, true));
    } else if (args.is("--component")) o.component = args.text();
    else if (args.is("--dtype")) o.dtype = args.text();
    else if (args.is("--vae-dtype")) o.vae_dtype = args.text();
    else if (args.is("--quant")) o.quant = args.text();
    else if (args.is("--threads")) o.threads = static_cast<int>(args.count());
    else if (args.is("--steps")) o.steps = static_cast<int>(args.count());
    else if (args.is("--repeats")) o.repeats = static_cast<int>(args.count());
    else if (args.is("--warmup")) {
      const std::string v = args.text();
      o.warmup = v == "auto" ? -1 : static_cast<int>(to_int(v, a));
    } else if (args.is("--layers")) o.layers = args.count(), layers_given = true;
    else if (args.is("--flat-size")) o.flat = parse_size(args.text(), false);
    else if (args.is("--flat-frames")) {
      flat_given = true;
      o.flat_frames.clear();
      for (const auto& f : split(args.text(), ',')) o.flat_frames.push_back(to_int(f, a));
    } else if (args.is("--no-encode")) o.encode = false;
    else if (args.is("--profile")) o.profile = true;
    else if (args.is("--quick")) o.quick = true;
    else if (args.is("--child")) o.child = args.text();
    else if (args.is("--decode-chunk")) o.decode_chunk = args.count();
    else args.unknown();
  }
  if (o.quick) {  // a smoke check (~30 s, mostly oneDNN's first calls): a 2-layer transformer on
                  // 64x64x5 (32 tokens), the full VAE on tiny frames, no warm-ups
    if (!sizes_given) o.sizes = {{64, 64, 5}};
    if (!layers_given) o.layers = 2;
    if (!flat_given) o.flat_frames = {1, 5};
    if (o.warmup < 0) o.warmup = 0;
    o.flat = {32, 32, 1};
  }
  if (o.sizes.empty() && !sizes_given) o.sizes = {{256, 256, 17}, {832, 480, 33}};
  if (o.vae_dtype.empty()) o.vae_dtype = o.dtype;
  if (o.quant != "none" && o.quant != "int8") usage("--quant is none or int8, got " + o.quant);
  for (const auto& d : {o.dtype, o.vae_dtype})
    if (d != "bf16" && d != "f32") usage("dtypes are bf16 or f32, got " + d);
  if (o.component != "all" && o.component != "transformer" && o.component != "vae" && o.component != "attention")
    usage("bad --component " + o.component);
  if (o.steps < 1 || o.repeats < 1 || o.layers < 1 || o.decode_chunk < 1) usage("--steps, --repeats, --layers must be >= 1");
  for (const int64_t f : o.flat_frames)
    if (f < 1 || (f - 1) % 4) usage("--flat-frames must be 4k+1");
  return o;
}

at::ScalarType scalar_type(const std::string& d) { return d == "bf16" ? at::kBFloat16 : at::kFloat; }

models::WanTransformer3DConfig transformer_config(int64_t layers) {
  models::WanTransformer3DConfig c;  // Wan2.1-T2V-1.3B's transformer/config.json
  c.num_attention_heads = 12;
  c.attention_head_dim = 128;
  c.ffn_dim = 8960;
  c.freq_dim = 256;
  c.num_layers = layers;
  c.in_channels = c.out_channels = 16;
  c.text_dim = 4096;
  c.patch_size = {1, 2, 2};
  c.eps = 1e-6;
  c.cross_attn_norm = true;
  c.qk_norm = "rms_norm_across_heads";
  return c;
}

models::AutoencoderKLWanConfig vae_config() { return {}; }  // the defaults are Wan 2.1's VAE

// Conv and linear weights (matrices and kernels), without norms' weights and modulation tables.
double weight_params(const torch::nn::Module& m) {
  double n = 0;
  for (const auto& p : m.named_parameters()) {
    const std::string& k = p.key();
    if (p.value().dim() < 2 || k.find("scale_shift_table") != std::string::npos || k.find("gamma") != std::string::npos)
      continue;
    n += static_cast<double>(p.value().numel());
  }
  return n;
}

// Warm-up runs: --warmup N, or in auto mode one for a small measurement and none for a large one.
int warmup_runs(const Options& o, bool small) { return o.warmup < 0 ? (small ? 1 : 0) : o.warmup; }

// `runs` timed calls of f after `warmups` untimed ones; the peak RSS of the timed phase (VmHWM
// reset after the warm-up).
struct Timing {
  std::vector<double> runs_s, cpu_runs_s;
  double peak_rss_mb = 0, rss_before_mb = 0;
  json to_json() const {
    return {{"median_s", median(runs_s)},
            {"runs_s", runs_s},
            {"cpu_s", median(cpu_runs_s)},
            {"peak_rss_mb", peak_rss_mb},
            {"rss_before_mb", rss_before_mb}};
  }
};

template <typename F>
Timing time_runs(int warmups, int runs, F&& f) {
  for (int i = 0; i < warmups; ++i) f();
  Timing t;
  t.rss_before_mb = rss_mb();
  reset_peak_rss();
  for (int i = 0; i < runs; ++i) {
    const double t0 = now_s(), c0 = cpu_s();
    f();
    t.runs_s.push_back(now_s() - t0);
    t.cpu_runs_s.push_back(cpu_s() - c0);
  }
  t.peak_rss_mb = peak_rss_mb();
  return t;
}

// ---------------------------------------------------------------------------------------------
// Children

// Best GFLOP/s of `runs` calls after one warm-up, by the wall clock and by CPU time per thread
// (the rate while this process's threads run: on a shared machine they are also descheduled).
template <typename F>
std::pair<double, double> best_gflops(double flop, int runs, int threads, F&& f) {
  f();
  double best = 1e30, best_cpu = 1e30;
  for (int i = 0; i < runs; ++i) {
    const double t0 = now_s(), c0 = cpu_s();
    f();
    best = std::min(best, now_s() - t0);
    best_cpu = std::min(best_cpu, (cpu_s() - c0) / threads);
  }
  return {flop / best / 1e9, flop / best_cpu / 1e9};
}

json run_gemm(const Options& o) {
  torch::NoGradGuard no_grad;
  const int64_t n = o.quick ? 1024 : 2048;
  const at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
  const at::Tensor ab = a.to(at::kBFloat16), bb = b.to(at::kBFloat16);
  json r = {{"n", n}};
  const auto mm = best_gflops(2.0 * n * n * n, 5, o.threads, [&] { at::mm(ab, bb); });
  const auto lin = best_gflops(2.0 * n * n * n, 5, o.threads, [&] { nn::linear(ab, bb, {}); });
  r["bf16_mm_gflops"] = mm.first;
  r["bf16_linear_gflops"] = lin.first;
  r["f32_linear_gflops"] = best_gflops(2.0 * n * n * n, 3, o.threads, [&] { nn::linear(a, b, {}); }).first;
  // The transformer's own largest linear (feed-forward in: 1536 -> 8960) on 2048 tokens.
  const at::Tensor x = at::randn({2048, 1536}).to(at::kBFloat16), w = at::randn({8960, 1536}).to(at::kBFloat16);
  r["bf16_ffn_linear_gflops"] = best_gflops(2.0 * 2048 * 1536 * 8960, 3, o.threads, [&] { nn::linear(x, w, {}); }).first;
  r["gemm_peak_gflops"] = {{"bf16", std::max(mm.first, lin.first)}, {"f32", r["f32_linear_gflops"]}};
  r["gemm_peak_gflops_cpu_time"] = {{"bf16", std::max(mm.second, lin.second)}};
  return r;
}

json run_transformer(const Options& o, const Size& size) {
  const at::ScalarType dtype = scalar_type(o.dtype);
  torch::NoGradGuard no_grad;
  const double t0 = now_s();
  const auto config = transformer_config(o.layers);
  auto dit = build_in_dtype<models::WanTransformer3DModel>(config, dtype);
  if (o.quant == "int8") pipelines::quant::apply(*dit, "transformer", pipelines::quant::video_transformer_keeps);
  json r = {{"build_s", now_s() - t0}, {"model_rss_mb", rss_mb()}, {"layers", o.layers}, {"dtype", o.dtype},
            {"quant", o.quant}};
  std::fprintf(stderr, "bench_wan: transformer built in %.1f s, RSS %.0f MB\n", now_s() - t0, rss_mb());

  const int64_t lf = size.latent_frames(), lh = size.height / 8, lw = size.width / 8;
  at::manual_seed(0);
  const at::Tensor latents = at::randn({1, 16, lf, lh, lw});  // the pipeline's f32 latents
  const at::Tensor cond = at::randn({1, kTextTokens, config.text_dim}).to(dtype);
  const at::Tensor uncond = at::randn({1, kTextTokens, config.text_dim}).to(dtype);
  const at::Tensor timestep = at::full({1}, 999.0, at::kFloat);
  std::vector<double> cond_s, uncond_s;
  at::Tensor out;
  const auto step = [&] {
    const double s0 = now_s();
    const at::Tensor c = dit->forward(latents, timestep, cond);
    const double s1 = now_s();
    const at::Tensor u = dit->forward(latents, timestep, uncond);
    cond_s.push_back(s1 - s0);
    uncond_s.push_back(now_s() - s1);
    out = u + (c - u) * kGuidance;
  };
  const bool small = size.tokens() <= 4096;
  const int warmups = warmup_runs(o, small);
  std::fprintf(stderr, "bench_wan: transformer %s, %lld tokens: %d warm-up + %d CFG steps\n", size.label().c_str(),
               static_cast<long long>(size.tokens()), warmups, o.steps);
  const Timing t = time_runs(warmups, o.steps, step);
  const Flops f = wan_transformer_flops(config, size.tokens(), kTextTokens);
  r["step"] = t.to_json();
  r["step"]["warmup_steps"] = warmups;
  r["step"]["peak_above_model_mb"] = t.peak_rss_mb - r["model_rss_mb"].get<double>();
  r["step"]["cond_forward_s"] = std::vector<double>(cond_s.end() - o.steps, cond_s.end());
  r["step"]["uncond_forward_s"] = std::vector<double>(uncond_s.end() - o.steps, uncond_s.end());
  r["step"]["finite"] = out.isfinite().all().item<bool>();
  r["forward_flops"] = f.to_json();
  r["step_gflop"] = 2 * f.total() / 1e9;
  r["achieved_gflops"] = 2 * f.total() / 1e9 / median(t.runs_s);
  r["param_check"] = {{"flop_walk_params", f.params}, {"model_matrix_params", weight_params(*dit)}};
  std::fprintf(stderr, "bench_wan: transformer %s CFG step %.2f s (%.0f GFLOP/s), peak RSS %.0f MB\n",
               size.label().c_str(), median(t.runs_s), r["achieved_gflops"].get<double>(), t.peak_rss_mb);
  if (o.profile) r["profile_one_forward"] = profile([&] { dit->forward(latents, timestep, cond); });
  return r;
}

json run_vae(const Options& o, const Size& size) {
  const at::ScalarType dtype = scalar_type(o.vae_dtype);
  torch::NoGradGuard no_grad;
  const double t0 = now_s();
  auto vae = build_in_dtype<models::AutoencoderKLWan>(vae_config(), dtype);
  json r = {{"build_s", now_s() - t0}, {"model_rss_mb", rss_mb()}, {"dtype", o.vae_dtype}};
  const auto& c = vae->config;
  const int64_t lf = size.latent_frames(), lh = size.height / 8, lw = size.width / 8;
  const bool small = size.frames * size.height * size.width <= 256 * 256 * 17;
  at::manual_seed(0);
  {
    const at::Tensor z = at::randn({1, c.z_dim, lf, lh, lw}).to(dtype);
    at::Tensor video;
    const Timing t = time_runs(warmup_runs(o, small), o.repeats, [&] { video = vae->decode(z); });
    const Flops f = wan_vae_decode_flops(c, lf, lh, lw);
    r["decode"] = t.to_json();
    r["decode"]["peak_above_model_mb"] = t.peak_rss_mb - r["model_rss_mb"].get<double>();
    r["decode"]["flops"] = f.to_json();
    r["decode"]["achieved_gflops"] = f.total() / 1e9 / median(t.runs_s);
    r["decode"]["output_shape"] = video.sizes().vec();
    r["decode"]["finite"] = video.isfinite().all().item<bool>();
    r["decode_param_check"] = {{"flop_walk_params", f.params},
                               {"model_matrix_params", weight_params(*vae->decoder) + weight_params(*vae->post_quant_conv)}};
    std::fprintf(stderr, "bench_wan: VAE decode %s %.2f s, peak RSS %.0f MB\n", size.label().c_str(), median(t.runs_s),
                 t.peak_rss_mb);
    if (o.profile) r["decode"]["profile"] = profile([&] { vae->decode(z); });
  }
  if (o.encode) {
    const at::Tensor video = at::randn({1, c.in_channels, size.frames, size.height, size.width}).clamp_(-1, 1).to(dtype);
    at::Tensor mean;
    const Timing t = time_runs(warmup_runs(o, small), o.repeats, [&] { mean = vae->encode(video).mean; });
    const Flops f = wan_vae_encode_flops(c, size.frames, size.height, size.width);
    r["encode"] = t.to_json();
    r["encode"]["peak_above_model_mb"] = t.peak_rss_mb - r["model_rss_mb"].get<double>();
    r["encode"]["flops"] = f.to_json();
    r["encode"]["achieved_gflops"] = f.total() / 1e9 / median(t.runs_s);
    r["encode"]["latent_shape"] = mean.sizes().vec();
    r["encode"]["finite"] = mean.isfinite().all().item<bool>();
    r["encode_param_check"] = {{"flop_walk_params", f.params},
                               {"model_matrix_params", weight_params(*vae->encoder) + weight_params(*vae->quant_conv)}};
    std::fprintf(stderr, "bench_wan: VAE encode %s %.2f s, peak RSS %.0f MB\n", size.label().c_str(), median(t.runs_s),
                 t.peak_rss_mb);
  }
  return r;
}

// One cold decode (as a pipeline runs it) of size.frames frames, decode_chunk latent frames per call.
json run_vae_flat(const Options& o, const Size& size) {
  const at::ScalarType dtype = scalar_type(o.vae_dtype);
  torch::NoGradGuard no_grad;
  auto vae = build_in_dtype<models::AutoencoderKLWan>(vae_config(), dtype);
  const double model = rss_mb();
  at::manual_seed(0);
  const at::Tensor z = at::randn({1, vae->config.z_dim, size.latent_frames(), size.height / 8, size.width / 8}).to(dtype);
  at::Tensor video;
  const Timing t = time_runs(0, 1, [&] { video = vae->decode(z, {.decode_frames = o.decode_chunk}); });
  return {{"frames", size.frames},
          {"latent_frames", size.latent_frames()},
          {"decode_chunk", o.decode_chunk},
          {"decode_s", t.runs_s[0]},
          {"model_rss_mb", model},
          {"peak_rss_mb", t.peak_rss_mb},
          {"peak_above_model_mb", t.peak_rss_mb - model},
          {"output_mb", static_cast<double>(video.numel() * video.element_size()) / (1 << 20)}};
}

// nn::attention at the transformer's shapes: self over every token, cross to text and image.
json run_attention(const Options& o, const Size& size) {
  const at::ScalarType dtype = scalar_type(o.dtype);
  torch::NoGradGuard no_grad;
  const int64_t heads = 12, width = 12 * 128, n = size.tokens();
  at::manual_seed(0);
  const at::Tensor q = at::randn({1, n, width}).to(dtype);
  json r = json::array();
  for (const auto& [name, t] : std::vector<std::pair<std::string, int64_t>>{
           {"self", n}, {"cross_text", kTextTokens}, {"cross_image", kImageTokens}}) {
    const at::Tensor k = name == "self" ? at::randn({1, n, width}).to(dtype) : at::randn({1, t, width}).to(dtype);
    const at::Tensor v = at::randn_like(k);
    const double flop = 4.0 * n * t * width;
    const bool small = flop < 50e9;
    const Timing tm = time_runs(warmup_runs(o, small), o.repeats, [&] { nn::attention(q, k, v, heads); });
    r.push_back({{"kind", name}, {"queries", n}, {"keys", t}, {"heads", heads}, {"head_dim", 128},
                 {"median_s", median(tm.runs_s)}, {"best_s", *std::min_element(tm.runs_s.begin(), tm.runs_s.end())},
                 {"cpu_s", median(tm.cpu_runs_s)}, {"gflop", flop / 1e9}, {"achieved_gflops", flop / 1e9 / median(tm.runs_s)}});
    std::fprintf(stderr, "bench_wan: attention %s %lld x %lld: %.3f s (%.0f GFLOP/s)\n", name.c_str(),
                 static_cast<long long>(n), static_cast<long long>(t), median(tm.runs_s), flop / 1e9 / median(tm.runs_s));
  }
  return {{"size", size.label()}, {"tokens", n}, {"dtype", o.dtype}, {"shapes", r}};
}

// ---------------------------------------------------------------------------------------------
// Parent

std::vector<std::string> child_args(const Options& o, const std::string& child, const Size& size) {
  std::vector<std::string> a = {"--child", child, "--size", size.label(), "--dtype", o.dtype, "--vae-dtype", o.vae_dtype,
                                "--threads", std::to_string(o.threads), "--steps", std::to_string(o.steps),
                                "--repeats", std::to_string(o.repeats), "--layers", std::to_string(o.layers),
                                "--warmup", o.warmup < 0 ? "auto" : std::to_string(o.warmup),
                                "--decode-chunk", std::to_string(o.decode_chunk)};
  a.insert(a.end(), {"--quant", o.quant});
  if (!o.encode) a.push_back("--no-encode");
  if (o.profile) a.push_back("--profile");
  if (o.quick) a.push_back("--quick");
  return a;
}

json child(const Options& o, const std::string& kind, const Size& size) {
  const std::string start = load_average();
  json r = run_child(child_args(o, kind, size));
  r["load_average_start"] = start;
  r["load_average_end"] = load_average();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  genvis::set_num_threads(o.threads);
  o.threads = genvis::num_threads();

  if (!o.child.empty()) {
    try {
      const Size& size = o.sizes.at(0);
      json r = o.child == "gemm"          ? run_gemm(o)
               : o.child == "transformer" ? run_transformer(o, size)
               : o.child == "vae"         ? run_vae(o, size)
               : o.child == "vae-flat"    ? run_vae_flat(o, size)
               : o.child == "attention"   ? run_attention(o, size)
                                          : throw std::invalid_argument("unknown child " + o.child);
      r["process_peak_rss_mb"] = process_peak_rss_mb();
      std::printf("%s\n", r.dump().c_str());
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_wan child %s: %s\n", o.child.c_str(), e.what());
      return 1;
    }
  }

  const bool all = o.component == "all";
  json report = {{"benchmark", "wan2.1"},
                 {"threads", o.threads},
                 {"hardware_concurrency", std::thread::hardware_concurrency()},
                 {"libtorch", compat::torch_version()},
                 {"mkldnn", at::hasMKLDNN()},
                 {"dtype", o.dtype},
                 {"vae_dtype", o.vae_dtype},
                 {"transformer_layers", o.layers},
                 {"steps", o.steps},
                 {"repeats", o.repeats},
                 {"quick", o.quick},
                 {"load_average_start", load_average()}};
  const double t0 = now_s();
  // 1. The GEMM peak at the start; 2. every size; 3. decode memory against frames; 4. the GEMM
  // peak again at the end. The FLOP bound uses the larger of the two peaks (on a shared machine
  // the load changes during a long run; the larger peak gives the larger, more conservative ratio).
  const json gemm_start = child(o, "gemm", o.sizes.empty() ? Size{16, 16, 1} : o.sizes[0]);
  for (const Size& size : o.sizes) {
    json s = {{"size", size.label()}, {"width", size.width}, {"height", size.height}, {"frames", size.frames},
              {"latent_frames", size.latent_frames()}, {"tokens", size.tokens()}};
    if (all || o.component == "attention") s["attention"] = child(o, "attention", size);
    if (all || o.component == "transformer") s["transformer"] = child(o, "transformer", size);
    if (all || o.component == "vae") s["vae"] = child(o, "vae", size);
    report["sizes"].push_back(s);
  }
  if (all || o.component == "vae") {
    json flat = json::array();
    for (const int64_t frames : o.flat_frames) {
      Size size = o.flat;
      size.frames = frames;
      for (const int64_t chunk : {int64_t{1}, size.latent_frames()}) {
        Options c = o;
        c.decode_chunk = chunk;
        json r = child(c, "vae-flat", size);
        r["chunking"] = chunk == 1 ? "one latent frame per call (default)" : "all latent frames in one call";
        flat.push_back(r);
        if (size.latent_frames() == 1) break;
      }
    }
    report["vae_decode_memory"] = {{"size", std::to_string(o.flat.width) + "x" + std::to_string(o.flat.height)},
                                   {"runs", flat}};
  }
  const json gemm_end = child(o, "gemm", o.sizes.empty() ? Size{16, 16, 1} : o.sizes[0]);
  report["gemm"] = {{"start", gemm_start}, {"end", gemm_end}};
  const auto peak_of = [&](const char* key) {
    double p = 0;
    for (const json* g : {&gemm_start, &gemm_end})
      if (g->contains(key)) p = std::max(p, (*g)[key]["bf16"].get<double>());
    return p;
  };
  const double peak = peak_of("gemm_peak_gflops"), peak_cpu = peak_of("gemm_peak_gflops_cpu_time");
  report["bf16_gemm_peak_gflops"] = peak;
  report["bf16_gemm_peak_gflops_cpu_time"] = peak_cpu;

  // 5. Ratios to the bf16 FLOP bound and the summary. ratio: wall seconds / bound; ratio_cpu_time:
  // CPU seconds per thread / (FLOPs / the GEMM peak by CPU time), the same ratio without the time
  // other processes held the cores.
  json summary = json::array();
  for (auto& s : report["sizes"]) {
    json row = {{"size", s["size"]}, {"tokens", s["tokens"]}};
    if (s.contains("transformer") && s["transformer"].contains("step") && peak > 0) {
      json& t = s["transformer"];
      const double gflop = t["step_gflop"].get<double>(), bound = gflop / peak;
      t["bf16_flop_bound_s"] = bound;
      t["ratio"] = t["step"]["median_s"].get<double>() / bound;
      if (peak_cpu > 0) t["ratio_cpu_time"] = t["step"]["cpu_s"].get<double>() / o.threads / (gflop / peak_cpu);
      row.update({{"cfg_step_s", t["step"]["median_s"]}, {"cfg_step_cpu_s", t["step"]["cpu_s"]}, {"step_gflop", gflop},
                  {"attention_share_of_flops",
                   t["forward_flops"]["attention_gflop"].get<double>() / t["forward_flops"]["gflop"].get<double>()},
                  {"achieved_gflops", t["achieved_gflops"]}, {"bf16_flop_bound_s", bound}, {"ratio", t["ratio"]},
                  {"ratio_cpu_time", t.value("ratio_cpu_time", json())},
                  {"transformer_peak_rss_mb", t["step"]["peak_rss_mb"]}, {"transformer_model_rss_mb", t["model_rss_mb"]},
                  {"load_average", t["load_average_start"].get<std::string>() + " -> " + t["load_average_end"].get<std::string>()}});
    }
    if (s.contains("vae"))
      for (const char* phase : {"decode", "encode"}) {
        json& v = s["vae"];
        if (!v.contains(phase)) continue;
        if (peak > 0) v[phase]["ratio"] = v[phase]["median_s"].get<double>() / (v[phase]["flops"]["gflop"].get<double>() / peak);
        row[std::string("vae_") + phase + "_s"] = v[phase]["median_s"];
        row[std::string("vae_") + phase + "_peak_rss_mb"] = v[phase]["peak_rss_mb"];
        row[std::string("vae_") + phase + "_gflop"] = v[phase]["flops"]["gflop"];
        if (peak > 0) row[std::string("vae_") + phase + "_ratio"] = v[phase]["ratio"];
      }
    summary.push_back(row);
  }
  report["summary"] = summary;
  report["wall_s"] = now_s() - t0;
  report["load_average_end"] = load_average();
  std::printf("%s\n", report.dump(2).c_str());
  return 0;
}
