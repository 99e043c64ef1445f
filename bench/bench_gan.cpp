// Images per second of the text-conditional GANs against latent diffusion on the CPU, measured in
// the same run (JSON on stdout). A GAN makes an image in one forward pass, diffusion in `steps`
// UNet evaluations (two with guidance) plus a VAE decode.
//
//   bench_gan [--batch 16] [--runs 3] [--threads 0] [--diffusion models/genvis-emoji-32]
//             [--dfgan configs/dfgan-emoji.json] [--attngan configs/attngan-emoji.json]
//
// GANs: the generator of each recipe config's `model` section at its dataset.resolution, with
// fresh random weights (speed does not depend on them), plus the DAMSM text encoder of its
// `damsm.model` section on 8-token captions: text encoding + one forward pass per batch.
// Diffusion: the model folder through the pipeline registry at its defaults (steps, guidance,
// native size), the same batch, prompts encoded in the run. Each row: median seconds per batch of
// --runs after one warm-up, images/s; `gan_over_diffusion` divides images/s.
#include "core/rng.h"
#include "core/threads.h"
#include "args.h"
#include "measure.h"
#include "models/attngan/attngan_model.h"
#include "models/damsm/damsm_model.h"
#include "models/dfgan/dfgan_model.h"
#include "pipelines/registry.h"

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
  std::string diffusion = std::string(GENVIS_BENCH_SOURCE_DIR) + "/models/genvis-emoji-32";
  std::string dfgan = std::string(GENVIS_BENCH_SOURCE_DIR) + "/configs/dfgan-emoji.json";
  std::string attngan = std::string(GENVIS_BENCH_SOURCE_DIR) + "/configs/attngan-emoji.json";
  int64_t batch = 16, runs = 3;
  int threads = 0;
};

constexpr const char* kUsage = "[--batch N] [--runs N] [--threads N] [--diffusion DIR] [--dfgan CONFIG] [--attngan CONFIG]";
[[noreturn]] void usage(const std::string& why) { bench::usage_exit("bench_gan", kUsage, why); }

Options parse(int argc, char** argv) {
  Options o;
  bench::Args args(argc, argv, "bench_gan", kUsage);
  while (args.next()) {
    if (args.is("--batch")) o.batch = args.count();
    else if (args.is("--runs")) o.runs = args.count();
    else if (args.is("--threads")) o.threads = static_cast<int>(args.count());
    else if (args.is("--diffusion")) o.diffusion = args.text();
    else if (args.is("--dfgan")) o.dfgan = args.text();
    else if (args.is("--attngan")) o.attngan = args.text();
    else args.unknown();
  }
  if (o.batch < 2 || o.runs < 1) usage("--batch must be >= 2 and --runs >= 1");
  return o;
}

json read_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage("cannot read " + path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    usage(path + " is not JSON: " + e.what());
  }
}

// The recipe's DAMSM text encoder with random weights, and a batch of 8-token captions.
struct Text {
  models::DamsmModel model{nullptr};
  at::Tensor ids, lengths;
};

Text damsm_text(const json& recipe, int64_t batch) {
  json m = recipe.at("damsm").at("model");
  m["text_config"]["vocab_size"] = recipe.value("tokenizer", json::object()).value("vocab_size", 1024);
  Text t;
  t.model = models::DamsmModel(models::DamsmConfig::from_json(m, "damsm.model"));
  t.model->eval();
  t.ids = at::randint(1, t.model->config.text_config.vocab_size, {batch, 8}, at::kLong);
  t.lengths = at::full({batch}, 8, at::kLong);
  return t;
}

json row(const std::string& name, int64_t batch, int64_t size, double s, const json& extra = json::object()) {
  json r = {{"model", name}, {"batch", batch}, {"size", size}, {"batch_s", s}, {"images_per_s", batch / s}};
  r.update(extra);
  std::fprintf(stderr, "bench_gan: %s %.4f s per batch of %lld, %.1f images/s\n", name.c_str(), s,
               static_cast<long long>(batch), batch / s);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  set_num_threads(o.threads);
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  Rng rng(1);
  json rows = json::array();

  {
    const json recipe = read_config(o.dfgan);
    json m = recipe.at("model");
    const int64_t size = recipe.at("dataset").at("resolution");
    m["image_size"] = size;
    Text text = damsm_text(recipe, o.batch);
    m["cond_dim"] = text.model->config.embedding_dim;
    models::DFGANGenerator g(models::DFGANConfig::from_json(m, "dfgan model"));
    g->eval();
    int64_t params = 0;
    for (const auto& p : g->parameters()) params += p.numel();
    const double s = bench::timed_runs_s(o.runs, [&] {
      const auto t = text.model->encode_text(text.ids, text.lengths);
      (void)g(rng.randn({o.batch, g->config.z_dim}), t.sentence).sum().item<float>();
    });
    rows.push_back(row("dfgan", o.batch, size, s, {{"generator_parameters", params}, {"config", o.dfgan}}));
  }
  {
    const json recipe = read_config(o.attngan);
    json m = recipe.at("model");
    const int64_t size = recipe.at("dataset").at("resolution");
    m["image_size"] = size;
    Text text = damsm_text(recipe, o.batch);
    m["embedding_dim"] = text.model->config.embedding_dim;
    models::AttnGANGenerator g(models::AttnGANConfig::from_json(m, "attngan model"));
    g->eval();
    int64_t params = 0;
    for (const auto& p : g->parameters()) params += p.numel();
    const at::Tensor mask = at::ones({o.batch, 8}, at::kBool);
    const double s = bench::timed_runs_s(o.runs, [&] {
      const auto t = text.model->encode_text(text.ids, text.lengths);
      const auto out = g(rng.randn({o.batch, g->config.z_dim}), rng.randn({o.batch, g->config.condition_dim}),
                         t.sentence, t.words, mask);
      (void)out.images.back().sum().item<float>();
    });
    rows.push_back(row("attngan", o.batch, size, s, {{"generator_parameters", params}, {"config", o.attngan}}));
  }
  {
    auto p = pipelines::load_pipeline({.model = o.diffusion});
    pipelines::Request r;
    r.prompt = "grinning face";
    r.batch = o.batch;
    const double s = bench::timed_runs_s(o.runs, [&] { (void)p->generate(r).samples.sum().item<float>(); });
    const auto& d = p->info().defaults;
    rows.push_back(row("diffusion", o.batch, p->info().native_width, s,
                       {{"folder", o.diffusion}, {"steps", d.steps}, {"guidance", d.guidance}}));
  }
  const double diffusion = rows.back()["images_per_s"];
  for (auto& r : rows)
    if (r["model"] != "diffusion") r["gan_over_diffusion"] = r["images_per_s"].get<double>() / diffusion;
  const json out = {{"benchmark", "bench_gan"}, {"threads", num_threads()}, {"rows", rows}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
