#include "commands.h"
#include "default_model.h"
#include "flag_names.h"

#include "core/device.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "data/registry.h"
#include "eval/evaluation.h"
#include "eval/judges.h"
#include "eval/r_precision.h"
#include "eval/r_precision_run.h"
#include "eval/reference_features.h"
#include "core/hash.h"
#include "io/image.h"
#include "io/image_tensor.h"
#include "io/weights.h"
#include "models/contrastive/contrastive_encoder.h"
#include "pipelines/registry.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

namespace genvis::cli {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// Parameters of every weights file in a diffusers folder (or one file).
int64_t count_parameters(const std::string& model) {
  int64_t total = 0;
  const auto add = [&](const fs::path& f) {
    const auto reader = io::open_weights(f.string());  // kept alive: tensors() refers into it
    for (const auto& t : reader->tensors()) {
      int64_t n = 1;
      for (const int64_t d : t.shape) n *= d;
      total += n;
    }
  };
  if (fs::is_regular_file(model)) {
    add(model);
    return total;
  }
  for (const auto& e : fs::recursive_directory_iterator(model))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") add(e.path());
  return total;
}

// [1,3,h,w] -> [1,3,side,side] (area average down, bilinear up), for sets of mixed sizes.
at::Tensor to_square(const at::Tensor& x, int64_t side) {
  if (x.size(2) == side && x.size(3) == side) return x;
  if (x.size(2) >= side && x.size(3) >= side) return at::adaptive_avg_pool2d(x, {side, side});
  return at::upsample_bilinear2d(x, {side, side}, false);
}

std::string today_iso() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

// J = nlohmann::json or ordered_json.
template <class J = ojson>
J read_json_or_null(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return nullptr;
  try {
    const std::vector<uint8_t> bytes = read_file(file.string(), size_t{64} << 20);
    return J::parse(bytes.begin(), bytes.end());
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
    std::string encoder, classifier, inception, cache_dir, device = "auto", dtype = "auto", name;
    int64_t num = 200, reference_num = 2000, steps = 20, size = 0, resolution = 0, batch = 16, k = 100;
    double cfg_scale = 7.0;
    uint64_t seed = 0;
    bool from_dataset = false, no_cache = false;
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
  cmd->add_option("--batch", o->batch, "Images per denoising batch")->capture_default_str();
  cmd->add_option("--resolution", o->resolution,
                  "Reference rendering size (0 = the generated size, or the first scored image's width)")
      ->capture_default_str();
  cmd->add_option("--encoder", o->encoder,
                  "Contrastive text-image encoder folder (default for emoji: the shipped genvis-contrastive-emoji)");
  cmd->add_option("--classifier", o->classifier,
                  "Image classifier folder (default for fashion-mnist: the shipped genvis-fmnist-classifier)");
  cmd->add_option("--inception", o->inception,
                  "pytorch-fid's pt_inception-2015-12-05-6726825d.pth: adds standard FID (default: $GENVIS_INCEPTION)");
  cmd->add_option("--k", o->k, "R-precision candidates per image")->capture_default_str();
  cmd->add_option("--out", o->out, "Output folder for result.json, result.md, samples.png (default eval/<name>)");
  cmd->add_option("--name", o->name, "Row name in the tables (default: the model or folder name)");
  cmd->add_option("--cache-dir", o->cache_dir, "Reference feature cache (default: $GENVIS_CACHE_DIR or ~/.cache/genvis/eval)");
  cmd->add_flag("--no-cache", o->no_cache, "Recompute the reference features and do not store them");
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N (generation)")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "auto, f32, bf16 or f16 (generation)")->capture_default_str();

  const Command rp = add_r_precision_command(cmd);
  const Command table = add_table_command(cmd);
  const Command personalization = add_personalization_eval_command(cmd);

  return {cmd, [o, cmd, rp, table, personalization] {
    if (rp.app->parsed()) return rp.run();
    if (personalization.app->parsed()) return personalization.run();
    if (table.app->parsed()) return table.run();

    // 1 options
    const int modes = !o->model.empty() + !o->images.empty() + o->from_dataset;
    if (modes != 1)
      throw UsageError(modes == 0 ? "give --model M (generate and score), --images DIR or --images-from-dataset"
                                  : "--model, --images and --images-from-dataset exclude each other");
    const data::Split split = data::parse_split(o->split);
    const data::Split ref_split = o->reference_split.empty() ? split : data::parse_split(o->reference_split);
    if (split == data::Split::All || ref_split == data::Split::All)
      throw UsageError("--split and --reference-split must be train or heldout");
    if (o->num < 0 || o->reference_num < 0) throw UsageError("--num and --reference-num must be >= 0");
    if (o->batch < 1 || o->batch > 64) throw UsageError("--batch must be 1..64");
    if (o->size < 0 || o->size % 8 != 0) throw UsageError("--size must be a multiple of 8 (0 = the model's native size)");
    if (o->resolution < 0) throw UsageError("--resolution must be >= 0");
    if (o->k < 2) throw UsageError("--k must be >= 2");
    if (o->dataset == "folder" && o->path.empty()) throw UsageError("--dataset folder needs --path");

    // 2 judges (loaded first: a missing encoder fails before minutes of generation)
    eval::LoadedJudges loaded;
    try {
      loaded = eval::load_judges({.dataset = o->dataset, .encoder = o->encoder, .classifier = o->classifier,
                                  .inception = o->inception});
    } catch (const UsageError& e) {
      throw UsageError(with_flag_names(e.what(), cmd));
    }
    eval::Judges& judges = loaded.judges;
    const std::string& inception = loaded.inception;

    // 3 the images to score, with their captions and facts
    eval::EvalSet set;
    ojson generation = nullptr, source;
    std::string name = o->name;
    int64_t image_side = 0;
    std::shared_ptr<const data::Dataset> caption_split;
    const auto make = [&](data::Split s, int resolution) {
      data::DatasetSpec spec;
      spec.name = o->dataset;
      spec.path = o->path;
      spec.split = s;
      spec.resolution = resolution;
      return data::make_dataset(spec);
    };
    if (!o->images.empty()) {
      // A folder of images from any source: captions from .txt, facts (e.g. {"label": 3}) from .json.
      data::DatasetSpec spec{.name = "folder", .resolution = static_cast<int>(o->resolution > 0 ? o->resolution : 64)};
      spec.path = o->images;
      const auto folder = data::make_dataset(spec);
      const size_t n = o->num == 0 ? folder->size() : std::min<size_t>(folder->size(), static_cast<size_t>(o->num));
      if (n < 2) throw UsageError("--images " + o->images + ": at least 2 PNG images are needed, found " +
                                  std::to_string(folder->size()));
      std::vector<at::Tensor> rows;
      for (size_t i = 0; i < n; ++i) {
        const data::Sample s = folder->get(i);
        const at::Tensor x = (io::image_to_tensor(s.image) + 1.0) * 0.5;
        if (image_side == 0) image_side = o->resolution > 0 ? o->resolution : x.size(3);
        rows.push_back(to_square(x, image_side));
        set.captions.push_back(s.meta.value("caption_file", false) ? s.caption : "");
        set.metas.push_back(read_json_or_null<nlohmann::json>(
            fs::path(o->images) / fs::path(s.meta["path"].get<std::string>()).replace_extension(".json")));
      }
      set.images = at::cat(rows);
      if (name.empty()) name = eval::folder_name(o->images);
      source = {{"images", o->images}};
    } else {
      // Captions (and facts) of n samples of the split, chosen with the seed.
      std::unique_ptr<pipelines::Pipeline> model;
      if (!o->model.empty()) {
        pipelines::ModelSource ms;
        ms.model = o->model == "default" ? find_default_model() : o->model;
        const ComputePolicy policy = resolve_policy(o->device, o->dtype);
        ms.device = policy.device;
        ms.dtype = policy.dtype;
        model = pipelines::load_pipeline(ms);
        image_side = o->size > 0 ? o->size : model->info().native_width;
        if (name.empty()) name = eval::folder_name(ms.model);
        source = {{"model", ms.model}, {"parameters", count_parameters(ms.model)},
                  {"training", read_json_or_null(fs::path(ms.model) / "training.json")}};
      }
      // Rendered at --resolution, else the generated size, else the split's native size
      // (fashion-mnist 28, the rendered datasets 64).
      const int64_t native = o->dataset == "fashion-mnist" ? 28 : 64;
      caption_split = make(split, static_cast<int>(o->resolution > 0 ? o->resolution : image_side > 0 ? image_side : native));
      const size_t n = o->num == 0 ? caption_split->size() : static_cast<size_t>(o->num);
      if (n < 2 || n > caption_split->size())
        throw UsageError("--num " + std::to_string(n) + ": the " + o->split + " split of " + o->dataset + " has " +
                         std::to_string(caption_split->size()) + " samples (at least 2 are needed)");
      const std::vector<size_t> indices = eval::choose_indices(caption_split->size(), n, o->seed);
      for (const size_t i : indices) {
        const data::Sample s = caption_split->get(i);
        set.captions.push_back(s.caption);
        set.metas.push_back(s.meta);
      }
      if (o->from_dataset) {
        set.images = eval::dataset_images(*caption_split, indices);
        image_side = set.images.size(3);
        if (name.empty()) name = o->dataset + " " + data::split_name(split) + " images";
        source = {{"images", "dataset"}};
      } else {
        pipelines::Request request;
        request.steps = o->steps;
        request.guidance = o->cfg_scale;
        request.sampler = o->sampler;
        request.width = request.height = image_side;
        request.seed = o->seed;
        set.images = pipelines::generate_each(*model, set.captions, request, o->batch, "generating");
        generation = {{"steps", o->steps}, {"cfg_scale", o->cfg_scale}, {"sampler", o->sampler},
                      {"size", image_side}, {"seed", o->seed}};
      }
    }

    // 4 reference split and metrics
    // caption_split is rendered at this size too: reused when the splits agree.
    const int ref_resolution = static_cast<int>(o->resolution > 0 ? o->resolution : image_side);
    const auto reference = caption_split && ref_split == split ? caption_split : make(ref_split, ref_resolution);
    if (judges.text_image) {
      const auto pool_split = caption_split ? caption_split : make(split, ref_resolution);
      for (size_t i = 0; i < pool_split->size(); ++i) judges.caption_pool.push_back(pool_split->get(i).caption);
    }
    const size_t ref_num = o->reference_num == 0 ? 0 : std::min<size_t>(reference->size(), static_cast<size_t>(o->reference_num));
    std::string key = o->dataset + "-" + data::split_name(ref_split) + "-" + std::to_string(ref_resolution) + "px";
    if (o->dataset == "folder") key += "-" + sha256_hex(o->path.data(), o->path.size()).substr(0, 8);
    eval::EvalOptions eo;
    eo.dataset_key = key;
    eo.reference_num = ref_num;
    eo.cache_dir = o->no_cache ? "" : o->cache_dir.empty() ? eval::default_cache_dir() : o->cache_dir;
    eo.seed = o->seed;
    eo.r_precision_k = o->k;
    const ojson scored = eval::evaluate(set, judges, *reference, eo);

    // 5 report: result.json, result.md, samples.png
    ojson result = {{"name", name},
                    {"dataset", o->dataset},
                    {"split", data::split_name(split)},
                    {"reference_split", data::split_name(ref_split)},
                    {"num", set.images.size(0)},
                    {"source", source},
                    {"generation", generation},
                    {"metrics", scored["metrics"]},
                    {"extractors", scored["extractors"]},
                    {"inception", inception.empty() ? ojson("not used: pass --inception pt_inception-2015-12-05-6726825d.pth "
                                                            "(pytorch-fid release) for standard FID")
                                                    : ojson(inception)},
                    {"date", today_iso()}};
    // Table columns for docs/results.md: the model's size and, when its folder has a
    // training.json ({"data", "steps", "wall_time", "hardware"}), how it was trained.
    if (source.contains("parameters")) result["params"] = source["parameters"];
    if (source.contains("training") && source["training"].is_object())
      for (const char* k : {"data", "steps", "wall_time", "hardware"})
        if (source["training"].contains(k)) result[k] = source["training"][k];
    const fs::path out = o->out.empty() ? fs::path("eval") / name : fs::path(o->out);
    fs::create_directories(out);
    write_file_atomic((out / "result.json").string(), result.dump(2) + "\n");
    std::vector<std::string> columns = {"name", "dataset", "split", "num"};
    for (const auto& [k, v] : scored["metrics"].items()) columns.push_back(k);
    write_file_atomic((out / "result.md").string(), eval::markdown_table({result}, columns));
    io::write_png((out / "samples.png").string(), eval::sample_grid(set, 16));
    std::cout << result.dump(2) << "\n";
    log_info("wrote " + (out / "result.json").string() + ", result.md and samples.png");
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
