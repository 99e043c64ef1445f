// The int8 layers against the bf16 layers they replace, side by side in one run (issue 21):
// linears and 3x3 convolutions of SD 1.5's UNet at 512 x 512 with CFG (a 64 x 64 latent, batch 2),
// bf16 through libtorch (oneDNN; convolutions channels-last) against nn::int8 on every int8
// kernel this CPU has (activation quantisation, product and epilogue included).
//
//   bench_int8 [--threads N] [--runs 5] [--only linear|conv]
//
// Prints one JSON object: {"threads", "kernels", "rows": [{"op", "shape", "bf16_ms", "<kernel>_ms",
// "<kernel>_ratio" (int8 time / bf16 time), "<kernel>_relative_error" (against the f32 layer),
// "bf16_relative_error"}]}. Times are medians of --runs calls after one warm-up.
#include "args.h"
#include "measure.h"
#include "nn/int8_gemm.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace {

using genvis::bench::now_s;
using json = nlohmann::ordered_json;
namespace int8 = genvis::nn::int8;

double median_ms(int runs, const std::function<void()>& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const double t0 = now_s();
    f();
    t.push_back((now_s() - t0) * 1e3);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double rel(const at::Tensor& got, const at::Tensor& want) {
  return ((got.to(at::kDouble) - want.to(at::kDouble)).norm() / want.to(at::kDouble).norm()).item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  genvis::bench::Args args(argc, argv, "bench_int8", "[--threads N] [--runs 5] [--only linear|conv]");
  int64_t threads = 0, runs = 5;
  std::string only;
  while (args.next()) {
    if (args.is("--threads")) threads = args.count();
    else if (args.is("--runs")) runs = args.count();
    else if (args.is("--only")) only = args.text();
    else args.unknown();
  }
  if (runs < 1) args.fail("--runs must be >= 1");
  if (!only.empty() && only != "linear" && only != "conv") args.fail("--only takes linear or conv");
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  std::vector<int8::Kernel> kernels;
  json names = json::array();
  for (auto k : {int8::Kernel::Amx, int8::Kernel::Vnni, int8::Kernel::Reference})
    if (int8::supported(k) && k != int8::Kernel::Reference) {
      kernels.push_back(k);
      names.push_back(int8::kernel_name(k));
    }
  json out = {{"threads", at::get_num_threads()}, {"kernels", names}, {"rows", json::array()}};

  // M x K x N of SD 1.5's linears at 64 x 64 latents with CFG (M = 2 x 4096 tokens) and lower levels.
  const std::vector<std::array<int64_t, 3>> linears = {
      {8192, 320, 320}, {8192, 320, 2560}, {8192, 1280, 320}, {2048, 640, 5120}, {512, 1280, 5120}, {154, 768, 320}};
  if (only.empty() || only == "linear")
    for (const auto& [m, k, n] : linears) {
      const at::Tensor x = torch::randn({m, k});
      const at::Tensor w = torch::randn({n, k}) / std::sqrt(static_cast<double>(k));
      const at::Tensor b = torch::randn({n}) * 0.1;
      const at::Tensor exact = at::linear(x, w, b);
      const at::Tensor xb = x.to(at::kBFloat16), wb = w.to(at::kBFloat16), bb = b.to(at::kBFloat16);
      json row = {{"op", "linear"}, {"shape", std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n)}};
      at::Tensor y;
      row["bf16_ms"] = median_ms(static_cast<int>(runs), [&] { y = at::linear(xb, wb, bb); });
      row["bf16_relative_error"] = rel(y, exact);
      const int8::PackedWeight p = int8::quantize_weight(w);
      for (auto kern : kernels) {
        int8::set_kernel(kern);
        const std::string name = int8::kernel_name(kern);
        // (each call quantises its input: the kept quantised input of the last call is dropped)
        row[name + "_ms"] = median_ms(static_cast<int>(runs), [&] {
          int8::clear_input_cache();
          y = int8::linear(xb, p, b);
        });
        row[name + "_ratio"] = row[name + "_ms"].get<double>() / row["bf16_ms"].get<double>();
        row[name + "_relative_error"] = rel(y, exact);
      }
      int8::set_kernel(std::nullopt);
      out["rows"].push_back(row);
    }

  // [B, C, H, W] -> O channels, 3x3, padding 1, of the UNet's levels at 64 x 64 latents with CFG.
  const std::vector<std::array<int64_t, 4>> convs = {{2, 320, 64, 320}, {2, 640, 32, 640}, {2, 1280, 16, 1280},
                                                     {2, 1280, 8, 1280}, {2, 640, 64, 320}};
  if (only.empty() || only == "conv")
    for (const auto& [batch, c, hw, o] : convs) {
      const at::Tensor x = torch::randn({batch, c, hw, hw});
      const at::Tensor w = torch::randn({o, c, 3, 3}) / std::sqrt(9.0 * static_cast<double>(c));
      const at::Tensor b = torch::randn({o}) * 0.1;
      const at::Tensor exact = at::conv2d(x, w, b, 1, 1);
      const auto cl = at::MemoryFormat::ChannelsLast;
      const at::Tensor xb = x.to(at::kBFloat16).contiguous(cl), wb = w.to(at::kBFloat16).contiguous(cl),
                       bb = b.to(at::kBFloat16);
      json row = {{"op", "conv3x3"},
                  {"shape", std::to_string(batch) + "x" + std::to_string(c) + "x" + std::to_string(hw) + "x" +
                                std::to_string(hw) + "->" + std::to_string(o)}};
      at::Tensor y;
      row["bf16_ms"] = median_ms(static_cast<int>(runs), [&] { y = at::conv2d(xb, wb, bb, 1, 1); });
      row["bf16_relative_error"] = rel(y, exact);
      const int8::PackedWeight p = int8::quantize_weight(int8::conv_weight_rows(w));
      for (auto kern : kernels) {
        int8::set_kernel(kern);
        const std::string name = int8::kernel_name(kern);
        row[name + "_ms"] =
            median_ms(static_cast<int>(runs), [&] { y = int8::conv2d(xb, p, b, {3, 3, 1, 1, 1, 1}); });
        row[name + "_ratio"] = row[name + "_ms"].get<double>() / row["bf16_ms"].get<double>();
        row[name + "_relative_error"] = rel(y, exact);
      }
      int8::set_kernel(std::nullopt);
      out["rows"].push_back(row);
    }
  std::printf("%s\n", out.dump(1).c_str());
  return 0;
}
