// Training speed of the personalisation methods on the built-in model: DreamBooth (full UNet),
// DreamBooth + LoRA (rank 8) and Textual Inversion (2 vectors), with the red-star subject of
// examples/ (batch 1 instance image, plus 1 class image where the method has prior preservation).
//
//   build/bench/bench_personalize [--steps 40] [--threads 0] [--model DIR]
//
// Prints one JSON object: per method, the steady-state seconds per step (the trainer's clock,
// the first 5 steps excluded), steps/s, trainable tensors, and the process's peak RSS so far.
#include "core/threads.h"
#include "core/torch_compat.h"
#include "train/personalize_recipe.h"

#include <filesystem>
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

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

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
          {"output", r.output}, {"peak_rss_mib", peak_rss_mib()}};
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 40;
  int threads = 0;
  std::string model = std::string(GENVIS_BENCH_SOURCE_DIR) + "/models/genvis-emoji-32";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "usage: bench_personalize [--steps N] [--threads N] [--model DIR]\n";
      return 2;
    }
    if (a == "--steps") steps = std::stoll(argv[++i]);
    else if (a == "--threads") threads = std::stoi(argv[++i]);
    else if (a == "--model") model = argv[++i];
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  if (threads > 0) set_num_threads(threads);
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
