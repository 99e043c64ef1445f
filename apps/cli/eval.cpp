#include "commands.h"

#include "core/device.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/registry.h"
#include "eval/r_precision.h"
#include "models/contrastive/contrastive_encoder.h"
#include "pipelines/stable_diffusion.h"

#include <iostream>
#include <nlohmann/json.hpp>

namespace genvis::cli {

Command add_eval_command(CLI::App& app) {
  struct Options {
    std::string encoder, model, dataset = "emoji", path, split = "train", output, sampler = "euler";
    std::string device = "auto", dtype = "auto";
    int64_t num = 200, k = 100, steps = 20, resolution = 0, size = 0;
    double cfg_scale = 7.0;
    uint64_t seed = 0;
    bool from_dataset = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate generated images (r-precision)");
  cmd->require_subcommand(1);
  CLI::App* rp = cmd->add_subcommand(
      "r-precision", "How often an image's own caption ranks first among k in a contrastive encoder's space");
  rp->add_option("--encoder", o->encoder, "Contrastive encoder folder (genvis train contrastive)")->required();
  rp->add_option("--model", o->model, "Text-to-image model folder that generates the images");
  rp->add_flag("--images-from-dataset", o->from_dataset, "Score the dataset's own images instead (sanity check)");
  rp->add_option("--dataset", o->dataset, "Dataset whose captions are used")->capture_default_str();
  rp->add_option("--path", o->path, "folder dataset: the directory");
  rp->add_option("--split", o->split, "train or heldout")->capture_default_str();
  rp->add_option("--num", o->num, "Captions evaluated, chosen with --seed (0 = the whole split)")->capture_default_str();
  rp->add_option("--k", o->k, "Candidates per image: the true caption + k-1 others of the split")->capture_default_str();
  rp->add_option("--seed", o->seed, "Caption choice, distractors, and image i's noise seed (seed + i)")
      ->capture_default_str();
  rp->add_option("--steps", o->steps, "Sampling steps")->capture_default_str();
  rp->add_option("--cfg-scale", o->cfg_scale, "Guidance scale")->capture_default_str();
  rp->add_option("--sampler", o->sampler, "Sampler (as genvis generate)")->capture_default_str();
  rp->add_option("--size", o->size, "Generated image width and height (0 = the model's native size)")
      ->capture_default_str();
  rp->add_option("--resolution", o->resolution, "Dataset rendering size (0 = the encoder's image size)")
      ->capture_default_str();
  rp->add_option("-o,--output", o->output, "Also write the result JSON to this file");
  rp->add_option("--device", o->device, "auto, cpu, cuda or cuda:N (generation)")->capture_default_str();
  rp->add_option("--dtype", o->dtype, "auto, f32, bf16 or f16 (generation)")->capture_default_str();

  return {cmd, [o] {
    // 1 options
    const data::Split split = data::parse_split(o->split);
    if (split == data::Split::All) throw UsageError("--split must be train or heldout");
    if (o->num < 0) throw UsageError("--num must be >= 0");
    if (o->k < 2) throw UsageError("--k must be >= 2");
    if (o->resolution < 0) throw UsageError("--resolution must be >= 0");
    if (o->size < 0 || o->size % 8 != 0) throw UsageError("--size must be a multiple of 8 (0 = the model's native size)");
    if (o->from_dataset == !o->model.empty())
      throw UsageError(o->from_dataset ? "--model and --images-from-dataset exclude each other"
                                       : "--model is required (or --images-from-dataset)");

    // 2 encoder, dataset, samples
    models::ContrastiveEncoder encoder = models::ContrastiveEncoder::load(o->encoder);
    data::DatasetSpec spec;
    spec.name = o->dataset;
    spec.path = o->path;
    spec.split = split;
    spec.resolution = static_cast<int>(o->resolution > 0 ? o->resolution : encoder.config().vision_config.image_size);
    const auto dataset = data::make_dataset(spec);
    const size_t n = o->num == 0 ? dataset->size() : static_cast<size_t>(o->num);
    if (n > dataset->size())
      throw UsageError("--num " + std::to_string(n) + ": the " + o->split + " split of " + o->dataset + " has " +
                       std::to_string(dataset->size()) + " samples");
    const eval::RPrecisionSamples samples = eval::choose_r_precision_samples(*dataset, n, o->seed);

    // 3 images
    at::Tensor images;
    nlohmann::ordered_json generation = nullptr;
    if (o->from_dataset) {
      images = eval::dataset_images(*dataset, samples.indices);
    } else {
      pipelines::ModelSource source;
      source.model = o->model;
      const ComputePolicy policy = resolve_policy(o->device, o->dtype);
      source.device = policy.device;
      source.dtype = policy.dtype;
      pipelines::StableDiffusion model = pipelines::load_stable_diffusion(source);
      pipelines::GenerateOptions gen;
      gen.steps = o->steps;
      gen.cfg_scale = o->cfg_scale;
      gen.sampler = o->sampler;
      // The model's native size: the UNet's sample_size times the VAE's downscale factor.
      const auto native = model.unet->config.sample_size;
      gen.width = gen.height = o->size > 0 ? o->size : native ? *native * model.vae->downscale_factor() : 512;
      std::vector<at::Tensor> rows;
      Progress progress("generating", static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i) {
        gen.prompt = samples.captions[i];
        gen.seed = o->seed + i;
        gen.validate();
        rows.push_back(pipelines::generate(model, gen).images.to(at::kCPU, at::kFloat));
        progress.update(static_cast<int64_t>(i + 1));
      }
      progress.finish();
      images = at::cat(rows);
      generation = {{"steps", o->steps}, {"cfg_scale", o->cfg_scale}, {"sampler", o->sampler}, {"size", gen.width}};
    }

    // 4 rank and report
    const eval::RPrecisionResult r = eval::encoder_r_precision(encoder, images, samples, {.k = o->k, .seed = o->seed});
    nlohmann::ordered_json j = {{"metric", "r_precision"},
                                {"value", r.value},
                                {"num", n},
                                {"k", r.k},
                                {"chance", 1.0 / static_cast<double>(r.k)},
                                {"split", data::split_name(split)},
                                {"dataset", o->dataset},
                                {"images", o->from_dataset ? "dataset" : "generated"},
                                {"encoder", o->encoder},
                                {"model", o->from_dataset ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(o->model)},
                                {"seed", o->seed},
                                {"generation", generation},
                                {"mean_rank", 0.0}};
    double rank_sum = 0;
    for (const int64_t rank : r.ranks) rank_sum += static_cast<double>(rank);
    j["mean_rank"] = r.ranks.empty() ? 0.0 : rank_sum / static_cast<double>(r.ranks.size());
    if (!o->output.empty()) write_file_atomic(o->output, j.dump(2) + "\n");
    std::cout << j.dump(2) << "\n";
  }};
}

}  // namespace genvis::cli
