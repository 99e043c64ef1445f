// Image tokens per second of DALL·E's transformer on the CPU, drawn with the KV cache against
// recomputing the whole stream for every token (the reference the cache is tested equal to),
// measured in the same run (JSON on stdout).
//
//   bench_dalle [--config configs/dalle-emoji.json] [--batch 4] [--runs 3] [--threads 0]
//
// The transformer of the recipe config's `transformer.model` section, its vocabularies and grid
// set from the `tokenizer` and `dvae.model` sections as the recipe sets them, with fresh random
// weights (speed does not depend on them). Each row: median seconds to draw every image token of
// a batch (top-k 64, no guidance) over --runs after one warm-up, image tokens per second.
// Recomputation costs one whole-stream forward per token whatever the token, so its row draws only
// the last --recompute-tokens tokens (the rest given) and its tokens/s stands for the whole image.
#include "core/rng.h"
#include "core/threads.h"
#include "args.h"
#include "measure.h"
#include "models/dalle/dalle_transformer.h"
#include "models/dalle/dvae.h"
#include "pipelines/dalle/dalle_sampling.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace {

using json = nlohmann::json;
using namespace genvis;

struct Options {
  std::string config = std::string(GENVIS_BENCH_SOURCE_DIR) + "/configs/dalle-emoji.json";
  int64_t batch = 4, runs = 3, recompute_tokens = 16;
  int threads = 0;
};

constexpr const char* kUsage = "[--config FILE] [--batch N] [--runs N] [--threads N] [--recompute-tokens N]";
[[noreturn]] void usage(const std::string& why) { bench::usage_exit("bench_dalle", kUsage, why); }

Options parse(int argc, char** argv) {
  Options o;
  bench::Args args(argc, argv, "bench_dalle", kUsage);
  while (args.next()) {
    if (args.is("--config")) o.config = args.text();
    else if (args.is("--batch")) o.batch = args.count();
    else if (args.is("--runs")) o.runs = args.count();
    else if (args.is("--threads")) o.threads = static_cast<int>(args.count());
    else if (args.is("--recompute-tokens")) o.recompute_tokens = args.count();
    else args.unknown();
  }
  if (o.batch < 1 || o.runs < 1 || o.recompute_tokens < 1) usage("--batch, --runs and --recompute-tokens must be >= 1");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  set_num_threads(o.threads);
  std::ifstream in(o.config);
  if (!in) usage("cannot read " + o.config);
  json recipe;
  try {
    recipe = json::parse(in);
  } catch (const json::exception& e) {
    usage(o.config + " is not JSON: " + e.what());
  }
  json dvae = recipe.at("dvae").at("model");
  dvae["image_size"] = recipe.at("dataset").at("resolution");
  const models::DVAEConfig v = models::DVAEConfig::from_json(dvae, "dvae.model");
  json m = recipe.at("transformer").value("model", json::object());
  m["text_vocab_size"] = recipe.value("tokenizer", json::object()).value("vocab_size", 1024);
  m["image_vocab_size"] = v.vocab_size;
  m["image_rows"] = m["image_cols"] = v.grid_size();
  torch::manual_seed(0);
  models::DalleTransformer model(models::DalleConfig::from_json(m, "transformer.model"));
  model->eval();
  const auto& c = model->config;
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  const at::Tensor text = at::randint(0, c.text_vocab_size, {o.batch, c.text_len}, at::kLong);
  json rows = json::array();
  for (const bool cache : {true, false}) {
    const int64_t drawn = cache ? c.image_len() : std::min(o.recompute_tokens, c.image_len());
    pipelines::DalleSampleOptions so{.sampling = {.top_k = 64}, .use_cache = cache};
    if (drawn < c.image_len())
      so.known = at::randint(0, c.image_vocab_size, {o.batch, c.image_len() - drawn}, at::kLong);
    const double s = bench::timed_runs_s(o.runs, [&] {
      Rng rng(1);
      (void)pipelines::dalle_sample(model, text, so, rng);
    });
    const double tokens = static_cast<double>(o.batch * drawn);
    rows.push_back({{"kv_cache", cache}, {"tokens_drawn", drawn}, {"batch_s", s}, {"image_tokens_per_s", tokens / s}});
    std::fprintf(stderr, "bench_dalle: %s %.3f s per batch of %lld, %.1f image tokens/s\n",
                 cache ? "kv cache" : "recompute", s, static_cast<long long>(o.batch), tokens / s);
  }
  const json out = {{"benchmark", "bench_dalle"},
                    {"threads", num_threads()},
                    {"config", o.config},
                    {"batch", o.batch},
                    {"sequence", c.sequence_len()},
                    {"parameters", params},
                    {"rows", rows},
                    {"cache_speedup", rows[0]["image_tokens_per_s"].get<double>() / rows[1]["image_tokens_per_s"].get<double>()}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
