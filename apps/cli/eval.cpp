#include "commands.h"
#include "default_model.h"
#include "flag_names.h"
#include "launch.h"

#include "core/device.h"
#include "core/distributed.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "data/registry.h"
#include "eval/eval_run.h"
#include "eval/evaluation.h"
#include "eval/r_precision_run.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

namespace genvis::cli {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// A result.json's object, or null when there is no such file.
ojson read_json_or_null(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return nullptr;
  try {
    const std::vector<uint8_t> bytes = read_file(file.string(), size_t{64} << 20);
    return ojson::parse(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    throw LoadError(file.string(), std::string("not valid JSON: ") + e.what());
  }
}

Command add_r_precision_command(CLI::App* cmd);
Command add_table_command(CLI::App* cmd);

}  // namespace

Command add_eval_command(CLI::App& app) {
  struct Options {
    std::string model, images, dataset = "emoji", path, split = "train", reference_split, out, sampler = "euler";
    std::string encoder, classifier, inception, damsm, cache_dir, device = "auto", dtype = "auto", name, extras, quant = "none";
    int64_t num = 200, reference_num = 2000, steps = 20, size = 0, resolution = 0, batch = 16, k = 100, frames = 0, width = 0, height = 0;
    int64_t cache_interval = 1;
    double cache_threshold = 0;
    double cfg_scale = 7.0;
    uint64_t seed = 0;
    bool from_dataset = false, no_cache = false;
    int nproc = 1;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Evaluate a model or a folder of images: FID/KID/precision/recall, R-precision, CLIP-score analogue, "
              "classifier accuracy, shapes scorer");
  cmd->require_subcommand(0, 1);
  cmd->add_option("--model", o->model, "Text-to-image model to generate with (DIR|FILE, or 'default')");
  cmd->add_option("--images", o->images, "Score a folder of PNG images instead (+ .txt captions, + .json facts)");
  cmd->add_flag("--images-from-dataset", o->from_dataset, "Score the split's own images (the real-data row)");
  cmd->add_option("--dataset,--reference", o->dataset, "Dataset: the captions generated from and the reference")
      ->capture_default_str();
  cmd->add_option("--path", o->path, "folder dataset: the directory");
  cmd->add_option("--split", o->split, "Split the captions come from: train or heldout")->capture_default_str();
  cmd->add_option("--reference-split", o->reference_split, "Split of the real reference images (default: --split)");
  cmd->add_option("--num", o->num, "Images generated / scored (0 = every sample of the split or folder)")
      ->capture_default_str();
  cmd->add_option("--reference-num", o->reference_num, "Real reference images (0 = the whole split)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Caption choice, reference choice, KID subsets; image i's noise seed is seed + i")
      ->capture_default_str();
  cmd->add_option("--steps", o->steps, "Sampling steps")->capture_default_str();
  cmd->add_option("--cfg-scale", o->cfg_scale, "Guidance scale")->capture_default_str();
  cmd->add_option("--sampler", o->sampler, "Sampler (as genvis generate)")->capture_default_str();
  cmd->add_option("--size", o->size, "Generated width and height (0 = the model's native size)")->capture_default_str();
  cmd->add_option("--frames", o->frames,
                  "Video datasets (shapes-video, emoji-video): frames per clip (0 = the model's native count)")
      ->capture_default_str();
  cmd->add_option("--width", o->width,
                  "Video datasets: generated clip width for a non-square size (0 = --size); scored inside the square "
                  "scene the clip is cut from, as the training buckets cut it")
      ->capture_default_str();
  cmd->add_option("--height", o->height, "Video datasets: generated clip height (0 = --size)")->capture_default_str();
  cmd->add_option("--cache-interval", o->cache_interval, "Step caching for UNet models, as genvis generate (1: off)")
      ->capture_default_str();
  cmd->add_option("--cache-threshold", o->cache_threshold, "Step caching for transformer models, as genvis generate (0: off)")
      ->capture_default_str();
  cmd->add_option("--batch", o->batch, "Images per denoising batch")->capture_default_str();
  cmd->add_option("--extras", o->extras,
                  "Family settings for every generation request, a JSON object as genvis generate's --extras "
                  "(e.g. DALL·E's '{\"rerank\": 16}')");
  cmd->add_option("--resolution", o->resolution,
                  "Reference rendering size (0 = the generated size, or the first scored image's width)")
      ->capture_default_str();
  cmd->add_option("--encoder", o->encoder,
                  "Contrastive text-image encoder folder (default for emoji: the shipped genvis-contrastive-emoji)");
  cmd->add_option("--classifier", o->classifier,
                  "Image classifier folder (default for fashion-mnist: the shipped genvis-fmnist-classifier); for a video "
                  "dataset the video encoder of FVD[...] (default for shapes-video: genvis-shapes-video-encoder)");
  cmd->add_option("--inception", o->inception,
                  "pytorch-fid's pt_inception-2015-12-05-6726825d.pth: adds standard FID (default: $GENVIS_INCEPTION)");
  cmd->add_option("--damsm", o->damsm,
                  "DAMSM folder (genvis train damsm): R-precision in the AttnGAN protocol beside the contrastive "
                  "encoder's (default for emoji: genvis-damsm-emoji when installed)");
  cmd->add_option("--k", o->k, "R-precision candidates per image")->capture_default_str();
  cmd->add_option("--out", o->out, "Output folder for result.json, result.md, samples.png (default eval/<name>)");
  cmd->add_option("--name", o->name, "Row name in the tables (default: the model or folder name)");
  cmd->add_option("--cache-dir", o->cache_dir, "Reference feature cache (default: $GENVIS_CACHE_DIR or ~/.cache/genvis/eval)");
  cmd->add_flag("--no-cache", o->no_cache, "Recompute the reference features and do not store them");
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N (generation)")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "auto, f32, bf16 or f16 (generation)")->capture_default_str();
  cmd->add_option("--quant", o->quant, "none or int8: int8 linears and convolutions (generation; CPU)")
      ->check(CLI::IsMember({"none", "int8"}))
      ->capture_default_str();
  add_nproc_option(cmd, o->nproc, "Generate");

  const Command rp = add_r_precision_command(cmd);
  const Command table = add_table_command(cmd);
  const Command personalization = add_personalization_eval_command(cmd);

  return {cmd, [o, cmd, rp, table, personalization] {
    if (rp.app->parsed()) return rp.run();
    if (personalization.app->parsed()) return personalization.run();
    if (table.app->parsed()) return table.run();

    if (o->nproc > 1) return launch_local(o->nproc);
    // A rank of a distributed evaluation generates its share of the batches (eval/eval_run.h);
    // rank 0 writes and prints the result.
    const bool primary = join_from_env();
    struct Leave {
      ~Leave() { dist::finalize(); }
    } leave;

    eval::EvalRun run;
    const bool video = data::is_video_dataset(o->dataset);
    run.model = o->model != "default" ? o->model : video ? pipelines::find_default_video_model() : find_default_model();
    run.images = o->images;
    run.frames = o->frames;
    run.images_from_dataset = o->from_dataset;
    run.dataset = o->dataset;
    run.path = o->path;
    run.split = o->split;
    run.reference_split = o->reference_split;
    run.num = o->num;
    run.reference_num = o->reference_num;
    run.seed = o->seed;
    run.resolution = o->resolution;
    run.k = o->k;
    run.steps = o->steps;
    run.size = o->size;
    run.width = o->width;
    run.height = o->height;
    run.cache_interval = o->cache_interval;
    run.cache_threshold = o->cache_threshold;
    run.batch = o->batch;
    run.cfg_scale = o->cfg_scale;
    run.sampler = o->sampler;
    if (!o->extras.empty()) {
      run.extras = nlohmann::json::parse(o->extras, nullptr, false);
      if (!run.extras.is_object()) throw UsageError("--extras must be a JSON object, e.g. '{\"rerank\": 16}'");
    }
    run.encoder = o->encoder;
    run.classifier = o->classifier;
    run.inception = o->inception;
    run.damsm = o->damsm;
    run.quant = o->quant;
    run.name = o->name;
    run.cache_dir = o->cache_dir;
    run.no_cache = o->no_cache;
    eval::EvalReport report;
    try {
      if (!run.model.empty()) {
        const ComputePolicy policy = resolve_policy(o->device, o->dtype);
        run.device = policy.device;
        run.dtype = policy.dtype;
      }
      report = eval::run_evaluation(run);
    } catch (const UsageError& e) {
      throw UsageError(with_flag_names(e.what(), cmd, {{"images_from_dataset", "--images-from-dataset"}}));
    }
    if (!primary) return;
    const std::string out = o->out.empty() ? eval::default_evaluation_folder(report) : o->out;
    eval::write_evaluation(report, out);
    std::cout << report.result.dump(2) << "\n";
    log_info("wrote " + (fs::path(out) / "result.json").string() + ", result.md and samples.png");
  }};
}

namespace {

// genvis eval r-precision: R-precision alone (one caption per pipeline call, as before).
Command add_r_precision_command(CLI::App* cmd) {
  struct Options {
    std::string encoder, model, dataset = "emoji", path, split = "train", output, sampler = "euler";
    std::string device = "auto", dtype = "auto";
    int64_t num = 200, k = 100, steps = 20, resolution = 0, size = 0;
    double cfg_scale = 7.0;
    uint64_t seed = 0;
    bool from_dataset = false;
  };
  auto o = std::make_shared<Options>();
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

  return {rp, [o, rp] {
    eval::RPrecisionRun run;
    run.encoder = o->encoder;
    run.model = o->model;
    run.images_from_dataset = o->from_dataset;
    run.dataset = o->dataset;
    run.path = o->path;
    run.split = o->split;
    run.num = o->num;
    run.k = o->k;
    run.resolution = o->resolution;
    run.size = o->size;
    run.seed = o->seed;
    run.steps = o->steps;
    run.cfg_scale = o->cfg_scale;
    run.sampler = o->sampler;
    nlohmann::ordered_json j;
    try {
      if (!o->model.empty()) {
        const ComputePolicy policy = resolve_policy(o->device, o->dtype);
        run.device = policy.device;
        run.dtype = policy.dtype;
      }
      j = eval::run_r_precision(run);
    } catch (const UsageError& e) {
      throw UsageError(with_flag_names(e.what(), rp));
    }
    if (!o->output.empty()) write_file_atomic(o->output, j.dump(2) + "\n");
    std::cout << j.dump(2) << "\n";
  }};
}

// genvis eval table RESULT.json... : one Markdown table of several results.
Command add_table_command(CLI::App* cmd) {
  struct Options {
    std::vector<std::string> results;
    std::string output, columns;
  };
  auto o = std::make_shared<Options>();
  CLI::App* t = cmd->add_subcommand("table", "One Markdown table from several eval result.json files");
  t->add_option("results", o->results, "result.json files")->required();
  t->add_option("-o,--output", o->output, "Write the table here (default: stdout)");
  t->add_option("--columns", o->columns, "Comma-separated columns (default: name, dataset, split, num, then every metric)");
  return {t, [o] {
    std::vector<ojson> rows;
    std::vector<std::string> columns;
    if (!o->columns.empty()) {
      std::string c;
      for (const char ch : o->columns + ",")
        if (ch == ',') {
          if (!c.empty()) columns.push_back(c);
          c.clear();
        } else {
          c += ch;
        }
    } else {
      columns = {"name", "dataset", "split", "num"};
    }
    for (const auto& f : o->results) {
      ojson r = read_json_or_null(f);
      if (!r.is_object() || !r.contains("metrics") || !r["metrics"].is_object())
        throw LoadError(f, "not a genvis eval result (no \"metrics\" object)");
      if (o->columns.empty())
        for (const auto& [k, v] : r["metrics"].items())
          if (std::find(columns.begin(), columns.end(), k) == columns.end()) columns.push_back(k);
      rows.push_back(std::move(r));
    }
    const std::string md = eval::markdown_table(rows, columns);
    if (o->output.empty()) std::cout << md;
    else write_file_atomic(o->output, md);
  }};
}

}  // namespace

}  // namespace genvis::cli
