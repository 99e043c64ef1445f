// Tiled VAE benchmark. An SD-architecture AutoencoderKL (block_out_channels 128/256/512/512,
// layers_per_block 2, sample_size 512) with random weights decodes random latents for a --size
// image tiled (tiled_decode, --tile pixels, 0 = sample_size) and, for comparison, a --untiled-size
// image untiled (vae->decode); --encode adds tiled_encode of a --size image. Each case runs in a
// child process (this binary with --case) so that its peak RSS is its own. Reports JSON:
//   cases[]: mode, size, tile, tiles (tile passes), dtype, threads, seconds,
//            rss_after_load_mb (weights in memory), peak_rss_mb (ru_maxrss of the case's process)
// Usage: bench_vae_tiled [--size 2048] [--tile 0] [--overlap 0.25] [--untiled-size 512]
//                        [--dtype f32|bf16] [--threads 0] [--encode]
#include "args.h"
#include "core/threads.h"
#include "measure.h"
#include "models/autoencoder_kl/tiled.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/resource.h>
#include <torch/torch.h>
#include <unistd.h>

namespace {

using genvis::models::AutoencoderKL;
using genvis::models::AutoencoderKLConfig;

struct Options {
  int64_t size = 2048, tile = 0, untiled_size = 512;
  double overlap = 0.25;
  std::string dtype = "f32";
  int threads = 0;
  bool encode = false;
  std::string run_case;  // child: "decode_tiled", "decode_untiled" or "encode_tiled"
};

using genvis::bench::now_s;
using genvis::bench::status_mb;

AutoencoderKL sd_vae(at::ScalarType dtype) {
  AutoencoderKLConfig c;
  c.block_out_channels = {128, 256, 512, 512};
  c.down_block_types.assign(4, "DownEncoderBlock2D");
  c.up_block_types.assign(4, "UpDecoderBlock2D");
  c.layers_per_block = 2;
  c.sample_size = 512;
  torch::manual_seed(0);
  AutoencoderKL vae(c);
  vae->to(dtype);
  vae->eval();
  return vae;
}

// One case in this process; prints one JSON object.
int run_case(const Options& o) {
  genvis::set_num_threads(o.threads);
  const at::ScalarType dtype = o.dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  AutoencoderKL vae = sd_vae(dtype);
  const double rss_after_load = status_mb("VmRSS:");
  const genvis::models::VAETiling tiling{.tile_size = o.tile, .overlap = o.overlap};
  const int64_t f = vae->downscale_factor();
  const bool untiled = o.run_case == "decode_untiled";
  const int64_t size = untiled ? o.untiled_size : o.size;
  const auto grid = genvis::models::detail::latent_grid(*vae, tiling);
  const int64_t per_side = genvis::models::needs_tiling(vae, size, size, tiling) && !untiled
                               ? (size / f + grid.stride - 1) / grid.stride
                               : 1;

  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  double checksum = 0, seconds = 0;
  if (o.run_case == "encode_tiled") {
    const at::Tensor image = at::rand({1, 3, size, size}).mul(2).sub(1).to(dtype);
    const double t0 = now_s();
    const auto posterior = genvis::models::tiled_encode(vae, image, tiling);
    seconds = now_s() - t0;
    checksum = posterior.mean.to(at::kFloat).mean().item<double>();
  } else {
    const at::Tensor z = at::randn({1, 4, size / f, size / f}).to(dtype);
    const double t0 = now_s();
    const at::Tensor image = untiled ? vae->decode(z) : genvis::models::tiled_decode(vae, z, tiling);
    seconds = now_s() - t0;
    checksum = image.to(at::kFloat).mean().item<double>();
  }

  nlohmann::ordered_json j;
  j["mode"] = o.run_case;
  j["size"] = size;
  j["tile"] = untiled ? 0 : grid.tile * f;
  j["overlap"] = o.overlap;
  j["tiles"] = per_side * per_side;
  j["dtype"] = o.dtype;
  j["threads"] = at::get_num_threads();
  j["seconds"] = seconds;
  j["rss_after_load_mb"] = rss_after_load;
  j["peak_rss_mb"] = genvis::bench::process_peak_rss_mb();
  j["checksum"] = checksum;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

std::string self_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "bench_vae_tiled";
}

// Runs this binary with --case and parses the JSON line it prints.
nlohmann::ordered_json run_child(const Options& o, const std::string& which) {
  const std::string cmd = "'" + self_path() + "' --case " + which + " --size " + std::to_string(o.size) + " --tile " +
                          std::to_string(o.tile) + " --overlap " + std::to_string(o.overlap) + " --untiled-size " +
                          std::to_string(o.untiled_size) + " --dtype " + o.dtype + " --threads " +
                          std::to_string(o.threads);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {{"mode", which}, {"error", "popen failed"}};
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = ::pclose(p);
  if (status != 0) return {{"mode", which}, {"error", "exit status " + std::to_string(status)}};
  return nlohmann::ordered_json::parse(out);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  genvis::bench::Args args(argc, argv, "bench_vae_tiled",
                           "[--size 2048] [--tile 0] [--overlap 0.25] [--untiled-size 512] [--dtype f32|bf16] "
                           "[--threads 0] [--encode]");
  while (args.next()) {
    if (args.is("--size")) o.size = args.count();
    else if (args.is("--tile")) o.tile = args.count();
    else if (args.is("--overlap")) o.overlap = args.real();
    else if (args.is("--untiled-size")) o.untiled_size = args.count();
    else if (args.is("--dtype")) o.dtype = args.text();
    else if (args.is("--threads")) o.threads = static_cast<int>(args.count());
    else if (args.is("--encode")) o.encode = true;
    else if (args.is("--case")) o.run_case = args.text();
    else args.unknown();
  }
  if (o.dtype != "f32" && o.dtype != "bf16") args.fail("--dtype must be f32 or bf16");
  if (o.size < 8 || o.overlap < 0 || o.overlap >= 1) args.fail("--size must be >= 8 and --overlap in [0, 1)");
  if (!o.run_case.empty()) return run_case(o);

  nlohmann::ordered_json j;
  j["benchmark"] = "vae_tiled";
  j["model"] = "AutoencoderKL SD architecture (128/256/512/512, 2 layers per block), random weights";
  j["cases"] = nlohmann::ordered_json::array();
  j["cases"].push_back(run_child(o, "decode_tiled"));
  if (o.untiled_size > 0) j["cases"].push_back(run_child(o, "decode_untiled"));
  if (o.encode) j["cases"].push_back(run_child(o, "encode_tiled"));
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}
