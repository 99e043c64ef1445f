// Training speed of the personalisation methods on the built-in model: DreamBooth (full UNet),
// DreamBooth + LoRA (rank 8) and Textual Inversion (2 vectors), with the red-star subject of
// examples/ (batch 1 instance image, plus 1 class image where the method has prior preservation).
//
//   build/bench/bench_personalize [--steps 40] [--threads 0] [--model DIR]
//   build/bench/bench_personalize --sd15-memory 256 [--method lora|full]
//
// Prints one JSON object: per method, the steady-state seconds per step (the trainer's clock,
// the first 5 steps excluded), steps/s, and the process's peak RSS so far.
// --sd15-memory PX: one training step of an SD1.5-size UNet (859.5 M parameters, random f32
// weights, batch 2 = instance + class image, 77x768 context) at PX pixels, with LoRA rank 4 on
// the attention blocks (base frozen) or the full UNet with AdamW: the peak RSS of the step (the
// weights included) and its time. The text encoder and VAE (0.83 GB in f32) are not built.
#include "args.h"
#include "core/threads.h"
#include "measure.h"
#include "models/unet2d_condition/unet2d_condition.h"
#include "nn/lora.h"
#include "train/optim.h"
#include "core/torch_compat.h"
#include "train/personalize_recipe.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <torch/torch.h>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace genvis;

namespace {

using bench::process_peak_rss_mb;
using bench::status_mb;

json run(train::PersonalizeConfig c, const fs::path& out, int64_t steps) {
  c.train.steps = steps;
  c.train.log_every = 1;
  c.train.checkpoint_every = steps + 1;
  const auto r = train::run_personalize(c, {.out_dir = out.string()});
  std::vector<double> seconds;
  std::ifstream in(out / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) seconds.push_back(json::parse(line).at("seconds").get<double>());
  const size_t skip = std::min<size_t>(5, seconds.size() - 1);
  const double per_step = (seconds.back() - seconds[skip - 1]) / static_cast<double>(seconds.size() - skip);
  return {{"seconds_per_step", per_step}, {"steps_per_second", 1.0 / per_step}, {"steps", steps},
          {"output", r.output}, {"peak_rss_mib", process_peak_rss_mb()}};
}


json sd15_memory(int64_t size, const std::string& method) {
  models::UNet2DConditionConfig config;  // the defaults are SD1.5's but for the context width
  config.cross_attention_dim = {768};
  config.sample_size = 64;
  torch::manual_seed(0);
  models::UNet2DConditionModel unet(config);
  int64_t trainable = 0;
  std::vector<std::pair<std::string, at::Tensor>> params;
  if (method == "lora") {
    for (auto& p : unet->parameters()) p.set_requires_grad(false);
    for (const auto& item : unet->named_modules()) {
      auto* lin = dynamic_cast<torch::nn::LinearImpl*>(item.value().get());
      auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(item.value().get());
      if (item.key().find("attentions.") == std::string::npos || (!lin && !conv)) continue;
      if (conv && conv->weight.size(2) != 1) continue;
      const at::Tensor& w = lin ? lin->weight : conv->weight;
      nn::LoRAAdapter a(nn::LoRAAdapterOptions{.in = w.size(1), .out = w.size(0), .rank = 4, .conv = conv != nullptr});
      nn::attach_lora(*item.value(), a);
      for (const auto& p : a->named_parameters()) params.emplace_back(item.key() + "." + p.key(), p.value());
    }
  } else {
    for (const auto& p : unet->named_parameters()) params.emplace_back(p.key(), p.value());
  }
  for (const auto& [n, p] : params) trainable += p.numel();
  train::AdamW optimizer(params, {});
  const double weights_mib = status_mb("VmRSS:");
  std::ofstream("/proc/self/clear_refs") << "5";  // reset the peak to the current RSS
  const auto t0 = std::chrono::steady_clock::now();
  const at::Tensor x = torch::randn({2, 4, size / 8, size / 8}), context = torch::randn({2, 77, 768});
  const at::Tensor t = torch::full({2}, 500.0);
  const at::Tensor loss = torch::mse_loss(unet->forward(x, t, context), torch::randn_like(x));
  loss.backward();
  optimizer.step(1e-4);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {{"method", method}, {"size", size}, {"batch", 2}, {"trainable_params", trainable},
          {"rss_before_step_mib", weights_mib}, {"peak_rss_step_mib", status_mb("VmHWM:")}, {"seconds", seconds}};
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 40, sd15 = 0;
  int threads = 0;
  std::string method = "lora";
  std::string model = std::string(GENVIS_BENCH_SOURCE_DIR) + "/models/genvis-emoji-32";
  bench::Args args(argc, argv, "bench_personalize", "[--steps N] [--threads N] [--model DIR] [--sd15-memory PX [--method lora|full]]");
  while (args.next()) {
    if (args.is("--steps")) steps = args.count();
    else if (args.is("--threads")) threads = static_cast<int>(args.count());
    else if (args.is("--model")) model = args.text();
    else if (args.is("--sd15-memory")) sd15 = args.count();
    else if (args.is("--method")) method = args.text();
    else args.unknown();
  }
  if (method != "lora" && method != "full") args.fail("--method takes lora or full, got " + method);
  if (steps < 1) args.fail("--steps must be >= 1");
  if (threads > 0) set_num_threads(threads);
  if (sd15 > 0) {
    std::cout << json{{"benchmark", "personalize-sd15-memory"}, {"threads", num_threads()},
                      {"libtorch", compat::torch_version()}, {"result", sd15_memory(sd15, method)}}
                     .dump(2)
              << "\n";
    return 0;
  }
  const fs::path tmp = fs::temp_directory_path() / ("genvis-bench-personalize-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  train::PersonalizeConfig c;
  c.model = model;
  c.instance_dir = std::string(GENVIS_BENCH_SOURCE_DIR) + "/examples/red-star";
  c.instance_prompt = "a sks star";
  c.class_prompt = "a star";
  c.num_class_images = 4;
  c.class_dir = (tmp / "class").string();
  c.class_steps = 4;
  c.validation_prompts = {"a sks star"};
  c.train.lr = 1e-4;
  json report = {{"benchmark", "personalize"}, {"threads", num_threads()}, {"libtorch", compat::torch_version()},
                 {"model", model}, {"batch", "1 instance + 1 class (prior) / 1 instance (textual inversion)"}};
  c.method = train::PersonalizeMethod::DreamBooth;
  report["dreambooth"] = run(c, tmp / "db", steps);
  c.lora = true;
  c.lora_rank = 8;
  report["dreambooth_lora_rank8"] = run(c, tmp / "lora", steps);
  train::PersonalizeConfig ti = c;
  ti.method = train::PersonalizeMethod::TextualInversion;
  ti.class_prompt.clear();
  ti.placeholder = "sks";
  ti.initializer = "star";
  ti.num_vectors = 2;
  report["textual_inversion"] = run(ti, tmp / "ti", steps);
  fs::remove_all(tmp);
  std::cout << report.dump(2) << "\n";
  return 0;
}
