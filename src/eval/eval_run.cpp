#include "eval/eval_run.h"

#include "core/distributed.h"
#include "core/error.h"
#include "core/file.h"
#include "core/hash.h"
#include "core/log.h"
#include "data/registry.h"
#include "eval/feature_extractor.h"
#include "eval/judges.h"
#include "eval/r_precision.h"
#include "eval/reference_features.h"
#include "eval/video_metrics.h"
#include "io/grid.h"
#include "io/image.h"
#include "io/image_tensor.h"
#include "io/weights.h"
#include "models/video_classifier/video_classifier.h"
#include "pipelines/registry.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <optional>

namespace genvis::eval {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

// pipelines::generate_each over the processes of a distributed evaluation (core/distributed.h):
// rank r generates the batches k with k % processes == r, each with the seed generate_each gives
// batch k, and the images are summed into one tensor on every rank, so that every rank holds
// exactly what one process would have generated (and scores it alike; rank 0 writes).
at::Tensor generate_shared(pipelines::Pipeline& model, const std::vector<std::string>& captions,
                           pipelines::Request request, int64_t batch) {
  if (!dist::active()) return pipelines::generate_each(model, captions, request, batch, "generating");
  const auto n = static_cast<int64_t>(captions.size());
  const int64_t ranks = dist::world_size(), rank = dist::rank();
  const uint64_t seed = request.seed;
  std::vector<std::pair<int64_t, at::Tensor>> mine;
  for (int64_t b = 0, k = 0; b < n; b += batch, ++k) {
    if (k % ranks != rank) continue;
    const std::vector<std::string> part(captions.begin() + b, captions.begin() + std::min(n, b + batch));
    request.seed = seed + static_cast<uint64_t>(b);
    mine.emplace_back(b, pipelines::generate_each(model, part, request, batch, "generating"));
  }
  // Rank 0 always has batch 0: its shape for everyone.
  at::Tensor shape = at::zeros({8}, at::kLong);
  if (rank == 0) {
    const auto sizes = mine.front().second.sizes();
    shape[0] = static_cast<int64_t>(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) shape[static_cast<int64_t>(i) + 1] = sizes[i];
  }
  dist::broadcast({shape}, "the shape of the generated images");
  std::vector<int64_t> sizes;
  for (int64_t i = 0; i < shape[0].item<int64_t>(); ++i) sizes.push_back(shape[i + 1].item<int64_t>());
  sizes[0] = n;
  at::Tensor all = at::zeros(sizes, at::kFloat);
  for (const auto& [b, images] : mine) all.narrow(0, b, images.size(0)).copy_(images);
  dist::all_reduce_sum({all}, "gathering the generated images");
  return all;
}

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

// The JSON in `file`, or null when there is no such file; LoadError when it is not JSON.
template <class J>
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

// The generation settings both kinds of dataset share: batch and size.
void check_generation(const EvalRun& o) {
  if (o.batch < 1 || o.batch > 64) throw UsageError("'batch' must be 1..64");
  if (o.size < 0 || o.size % 8 != 0) throw UsageError("'size' must be a multiple of 8 (0 = the model's native size)");
}

void check(const EvalRun& o, data::Split split, data::Split ref_split) {
  const int modes = !o.model.empty() + !o.images.empty() + o.images_from_dataset;
  if (modes != 1)
    throw UsageError(modes == 0 ? "give 'model' (generate and score), 'images' or 'images_from_dataset'"
                                : "'model', 'images' and 'images_from_dataset' exclude each other");
  if (split == data::Split::All || ref_split == data::Split::All)
    throw UsageError("'split' and 'reference_split' must be train or heldout");
  if (o.num < 0 || o.reference_num < 0) throw UsageError("'num' and 'reference_num' must be >= 0");
  check_generation(o);
  if (o.width || o.height)  // (video datasets do not come here)
    throw UsageError("'width' and 'height' are for video datasets; images are generated at 'size' x 'size'");
  if (o.resolution < 0) throw UsageError("'resolution' must be >= 0");
  if (o.k < 2) throw UsageError("'k' must be >= 2");
  if (o.dataset == "folder" && o.path.empty()) throw UsageError("the folder dataset needs 'path'");
}

// What is scored, where it came from and how it was generated.
struct Scored {
  EvalSet set;
  ojson source, generation = nullptr;
  std::string name;
  int64_t side = 0;                                     // the scored images' side
  std::shared_ptr<const data::Dataset> caption_split;   // null for a folder of images
};

// The run's sampling settings as far as the model's family takes them (a GAN makes an image in
// one pass: no steps, guidance or sampler; a flow model has its own samplers, so the image default
// euler gives way to the family's default), and what was used, into `generation`.
pipelines::Request sampling_request(const pipelines::Pipeline& model, const EvalRun& o, ojson& generation) {
  const auto& info = model.info();
  pipelines::Request request;
  generation = ojson::object();
  if (info.supports.steps) {
    request.steps = o.steps;
    generation["steps"] = o.steps;
  } else {
    generation["steps"] = "one pass";
  }
  if (info.supports.guidance) {
    request.guidance = o.cfg_scale;
    generation["cfg_scale"] = o.cfg_scale;
  }
  if (info.supports.sampler) {
    const auto& samplers = info.samplers;
    // An unknown name other than the default stays, for the family to refuse by name.
    const bool known = std::find(samplers.begin(), samplers.end(), o.sampler) != samplers.end();
    request.sampler = known || o.sampler != EvalRun{}.sampler ? o.sampler : "";
    generation["sampler"] = request.sampler.empty() ? info.defaults.sampler : request.sampler;
  }
  if (!o.extras.is_object() || !o.extras.empty()) {
    request.extras = o.extras;  // the family refuses a non-object or an unknown key, naming it
    generation["extras"] = ojson::parse(o.extras.dump());
  }
  request.cache_interval = o.cache_interval;  // the family refuses what it cannot do, naming it
  request.cache_threshold = o.cache_threshold;
  if (o.cache_interval != 1) generation["cache_interval"] = o.cache_interval;
  if (!o.quant.empty() && o.quant != "none") generation["quant"] = o.quant;
  if (o.cache_threshold != 0) generation["cache_threshold"] = o.cache_threshold;
  return request;
}

Scored folder_images(const EvalRun& o) {
  Scored s;
  // A folder of images from any source: captions from .txt, facts (e.g. {"label": 3}) from .json.
  data::DatasetSpec spec{.name = "folder", .resolution = static_cast<int>(o.resolution > 0 ? o.resolution : 64)};
  spec.path = o.images;
  const auto folder = data::make_dataset(spec);
  const size_t n = o.num == 0 ? folder->size() : std::min<size_t>(folder->size(), static_cast<size_t>(o.num));
  if (n < 2)
    throw UsageError("'images' " + o.images + ": at least 2 PNG images are needed, found " +
                     std::to_string(folder->size()));
  std::vector<at::Tensor> rows;
  for (size_t i = 0; i < n; ++i) {
    const data::Sample sample = folder->get(i);
    const at::Tensor x = (io::image_to_tensor(sample.image) + 1.0) * 0.5;
    if (s.side == 0) s.side = o.resolution > 0 ? o.resolution : x.size(3);
    rows.push_back(to_square(x, s.side));
    s.set.captions.push_back(sample.meta.value("caption_file", false) ? sample.caption : "");
    s.set.metas.push_back(read_json_or_null<nlohmann::json>(
        fs::path(o.images) / fs::path(sample.meta["path"].get<std::string>()).replace_extension(".json")));
  }
  s.set.images = at::cat(rows);
  s.name = eval::folder_name(o.images);
  s.source = {{"images", o.images}};
  return s;
}

// Captions (and facts) of `num` samples of the split, chosen with the seed; then the model's
// images of them, or the split's own.
Scored split_images(const EvalRun& o, data::Split split, const std::function<std::shared_ptr<const data::Dataset>(
                                                                 data::Split, int)>& make) {
  Scored s;
  std::unique_ptr<pipelines::Pipeline> model;
  if (!o.model.empty()) {
    pipelines::ModelSource ms;
    ms.model = o.model;
    ms.device = o.device;
    ms.dtype = o.dtype;
    ms.quant = o.quant;
    model = pipelines::load_pipeline(ms);
    s.side = o.size > 0 ? o.size : model->info().native_width;
    s.name = eval::folder_name(o.model);
    s.source = {{"model", o.model},
                {"parameters", count_parameters(o.model)},
                {"training", read_json_or_null<ojson>(fs::path(o.model) / "training.json")}};
  }
  // Rendered at 'resolution', else the generated size, else the dataset's native size.
  const int native = data::native_resolution(o.dataset);
  s.caption_split = make(split, static_cast<int>(o.resolution > 0 ? o.resolution : s.side > 0 ? s.side : native));
  const size_t available = s.caption_split->size();
  const size_t n = o.num == 0 ? available : static_cast<size_t>(o.num);
  if (n < 2 || n > available)
    throw UsageError("'num' " + std::to_string(n) + ": the " + o.split + " split of " + o.dataset + " has " +
                     std::to_string(available) + " samples (at least 2 are needed)");
  const std::vector<size_t> indices = eval::choose_indices(available, n, o.seed);
  for (const size_t i : indices) {
    const data::Sample sample = s.caption_split->get(i);
    s.set.captions.push_back(sample.caption);
    s.set.metas.push_back(sample.meta);
  }
  if (o.images_from_dataset) {
    s.set.images = eval::dataset_images(*s.caption_split, indices);
    s.side = s.set.images.size(3);
    s.name = o.dataset + " " + data::split_name(split) + " images";
    s.source = {{"images", "dataset"}};
    return s;
  }
  pipelines::Request request = sampling_request(*model, o, s.generation);
  request.width = request.height = s.side;
  request.seed = o.seed;
  s.set.images = pipelines::generate_each(*model, s.set.captions, request, o.batch, "generating");
  s.generation["size"] = s.side;
  s.generation["seed"] = o.seed;
  return s;
}

// Real clips [N,3,T,H,W] in [0,1] of `indices`.
at::Tensor dataset_clips(const data::VideoDataset& clips, const std::vector<size_t>& indices) {
  std::vector<at::Tensor> rows;
  for (const size_t i : indices) {
    const data::VideoSample c = clips.get(i);
    std::vector<at::Tensor> frames;
    for (const auto& f : c.frames) frames.push_back((io::image_to_tensor(f) + 1) / 2);
    rows.push_back(at::stack(frames, 2));
  }
  return at::cat(rows);
}

// A video dataset: clips generated from `num` captions of the split (or the split's own clips),
// scored by the clip scorer (shapes-video) and their frame-to-frame change against the real
// clips of the same captions.
EvalReport run_video_evaluation(const EvalRun& o, data::Split split) {
  if (!o.images.empty()) throw UsageError("'images': a video dataset is scored from a model or its own clips");
  if (o.num < 0) throw UsageError("'num' must be >= 0");
  check_generation(o);
  if (o.width < 0 || o.width % 8 != 0 || o.height < 0 || o.height % 8 != 0)
    throw UsageError("'width' and 'height' must be multiples of 8 (0 = 'size')");
  std::unique_ptr<pipelines::Pipeline> model;
  int64_t side = o.size, frames = o.frames;
  ojson source, generation = nullptr;
  std::string name;
  if (!o.model.empty()) {
    model = pipelines::load_pipeline({.model = o.model, .dtype = o.dtype, .device = o.device});
    if (!model->info().supports.video) throw UsageError("'model' " + o.model + " makes images, not clips");
    if (side == 0) side = model->info().native_width;
    if (frames == 0) frames = model->info().native_frames;
    name = eval::folder_name(o.model);
    source = {{"model", o.model},
              {"parameters", count_parameters(o.model)},
              {"training", read_json_or_null<ojson>(fs::path(o.model) / "training.json")}};
  }
  if (side == 0) side = data::native_resolution(o.dataset);
  if (frames == 0) frames = 9;
  // A non-square clip is scored inside the square scene it is cut from (centre_crop /
  // pad_to_square): the dataset renders at the larger side, as the training loader does.
  const int64_t width = o.width ? o.width : side, height = o.height ? o.height : side;
  const bool square = width == height;
  side = std::max(width, height);
  const auto framed = [&](const at::Tensor& real_clips) {
    return square ? real_clips : pad_to_square(centre_crop(real_clips, height, width));
  };
  // The video encoder (FVD[...] and its heads), loaded before minutes of generation.
  const std::string encoder_dir = o.classifier.empty() ? default_video_encoder(o.dataset) : o.classifier;
  std::optional<models::VideoClassifier> encoder;
  if (!encoder_dir.empty()) encoder.emplace(models::VideoClassifier::load(encoder_dir));
  const auto clips = data::make_video_dataset({.name = o.dataset, .resolution = static_cast<int>(side),
                                               .num_frames = static_cast<int>(frames), .split = split});
  const size_t available = clips->size();
  const size_t n = o.num == 0 ? available : static_cast<size_t>(o.num);
  if (n < 2 || n > available)
    throw UsageError("'num' " + std::to_string(n) + ": the " + o.split + " split of " + o.dataset + " has " +
                     std::to_string(available) + " clips (at least 2 are needed)");
  const std::vector<size_t> indices = eval::choose_indices(available, n, o.seed);
  EvalSet set;
  for (const size_t i : indices) {
    const data::VideoSample c = clips->get(i);
    set.captions.push_back(c.caption);
    set.metas.push_back(c.meta);
  }
  const at::Tensor real = framed(dataset_clips(*clips, indices));
  if (o.images_from_dataset) {
    set.images = real;
    name = o.dataset + " " + data::split_name(split) + " clips";
    source = {{"images", "dataset"}};
  } else {
    pipelines::Request request = sampling_request(*model, o, generation);
    request.width = width;
    request.height = height;
    request.num_frames = frames;
    request.seed = o.seed;
    set.images = pad_to_square(generate_shared(*model, set.captions, request, o.batch));
    if (square) {
      generation["size"] = side;
    } else {
      generation["width"] = width;
      generation["height"] = height;
    }
    generation["frames"] = frames;
    generation["seed"] = o.seed;
  }
  ojson metrics = ojson::object();
  if (o.dataset == "shapes-video") metrics.update(shapes_video_metrics(set.images, set.metas));
  metrics.erase("clips");
  ojson reference = nullptr;
  if (encoder) {
    const data::Split ref_split = o.reference_split.empty() ? split : data::parse_split(o.reference_split);
    const auto ref_clips = ref_split == split ? clips
                                              : data::make_video_dataset({.name = o.dataset, .resolution = static_cast<int>(side),
                                                                          .num_frames = static_cast<int>(frames), .split = ref_split});
    const size_t m = o.reference_num == 0 ? ref_clips->size() : std::min(ref_clips->size(), static_cast<size_t>(o.reference_num));
    if (m < 2) throw UsageError("'reference_num' must be >= 2 for FVD");
    std::vector<at::Tensor> features;
    std::vector<size_t> chunk;
    for (size_t i = 0; i < m; ++i) {
      chunk.push_back(i);
      if (chunk.size() == 256 || i + 1 == m) {
        features.push_back(encoder->run(framed(dataset_clips(*ref_clips, chunk))).features);
        chunk.clear();
      }
    }
    metrics.update(video_encoder_metrics(*encoder, eval::folder_name(encoder_dir), set.images, set.metas, at::cat(features)));
    reference = {{"split", data::split_name(ref_split)}, {"num", m}, {"encoder", encoder_dir}};
  }
  const double change = mean_frame_change(set.images), real_change = mean_frame_change(real);
  metrics["frame_change"] = change;
  metrics["frame_change_ratio_to_real"] = change / std::max(real_change, 1e-12);

  EvalReport report;
  report.result = {{"name", o.name.empty() ? name : o.name},
                   {"dataset", o.dataset},
                   {"split", data::split_name(split)},
                   {"num", set.images.size(0)},
                   {"frames", frames},
                   {"source", source},
                   {"generation", generation},
                   {"metrics", metrics},
                   {"date", today_iso()}};
  if (!reference.is_null()) report.result["reference"] = reference;
  if (source.contains("parameters")) report.result["params"] = source["parameters"];
  if (source.contains("training") && source["training"].is_object())
    for (const char* k : {"data", "steps", "wall_time", "hardware"})
      if (source["training"].contains(k)) report.result[k] = source["training"][k];
  report.columns = {"name", "dataset", "split", "num"};
  for (const auto& [k, v] : metrics.items()) report.columns.push_back(k);
  report.set = std::move(set);
  return report;
}

// Clips as rows of frames with their captions (the first `count`).
io::Image clip_grid(const EvalSet& set, size_t count) {
  std::vector<io::Image> strips;
  std::vector<std::string> captions;
  io::GridOptions tight;
  tight.padding = 1;
  for (int64_t i = 0; i < std::min<int64_t>(set.images.size(0), static_cast<int64_t>(count)); ++i) {
    const auto frames = clip_frames(set.images, i);
    strips.push_back(io::make_grid(frames, static_cast<int>(frames.size()), {}, tight));
    captions.push_back(set.captions.at(static_cast<size_t>(i)));
  }
  io::GridOptions options;
  options.font_size = 10;
  try {
    return io::make_grid(strips, 2, captions, options);
  } catch (const Error&) {
    return io::make_grid(strips, 2);  // no caption font installed
  }
}

}  // namespace

EvalReport run_evaluation(const EvalRun& o) {
  // 1 settings
  const data::Split split = data::parse_split(o.split);
  if (data::is_video_dataset(o.dataset)) {
    if (split == data::Split::All) throw UsageError("'split' must be train or heldout");
    return run_video_evaluation(o, split);
  }
  const data::Split ref_split = o.reference_split.empty() ? split : data::parse_split(o.reference_split);
  check(o, split, ref_split);

  // 2 judges (loaded first: a missing encoder fails before minutes of generation)
  LoadedJudges loaded = load_judges({.dataset = o.dataset, .encoder = o.encoder, .classifier = o.classifier,
                                     .inception = o.inception, .damsm = o.damsm});
  Judges& judges = loaded.judges;

  // 3 the images to score, with their captions and facts
  const auto make = [&](data::Split s, int resolution) {
    data::DatasetSpec spec;
    spec.name = o.dataset;
    spec.path = o.path;
    spec.split = s;
    spec.resolution = resolution;
    return data::make_dataset(spec);
  };
  Scored scored = o.images.empty() ? split_images(o, split, make) : folder_images(o);
  if (!o.name.empty()) scored.name = o.name;

  // 4 reference split and metrics; the caption split is rendered at this size too and reused
  // when the splits agree.
  const int ref_resolution = static_cast<int>(o.resolution > 0 ? o.resolution : scored.side);
  const auto reference =
      scored.caption_split && ref_split == split ? scored.caption_split : make(ref_split, ref_resolution);
  if (judges.text_image || !judges.more_text_image.empty()) {
    const auto pool_split = scored.caption_split ? scored.caption_split : make(split, ref_resolution);
    for (size_t i = 0; i < pool_split->size(); ++i) judges.caption_pool.push_back(pool_split->get(i).caption);
  }
  const size_t ref_num =
      o.reference_num == 0 ? 0 : std::min<size_t>(reference->size(), static_cast<size_t>(o.reference_num));
  std::string key = o.dataset + "-" + data::split_name(ref_split) + "-" + std::to_string(ref_resolution) + "px";
  if (o.dataset == "folder") key += "-" + sha256_hex(o.path.data(), o.path.size()).substr(0, 8);
  EvalOptions eo;
  eo.dataset_key = key;
  eo.reference_num = ref_num;
  eo.cache_dir = o.no_cache ? "" : o.cache_dir.empty() ? default_cache_dir() : o.cache_dir;
  eo.seed = o.seed;
  eo.r_precision_k = o.k;
  const ojson metrics = evaluate(scored.set, judges, *reference, eo);

  // 5 the report
  EvalReport report;
  ojson& result = report.result;
  result = {{"name", scored.name},
            {"dataset", o.dataset},
            {"split", data::split_name(split)},
            {"reference_split", data::split_name(ref_split)},
            {"num", scored.set.images.size(0)},
            {"source", scored.source},
            {"generation", scored.generation},
            {"metrics", metrics["metrics"]},
            {"extractors", metrics["extractors"]},
            {"inception", loaded.inception.empty()
                              ? ojson("not used: give pytorch-fid's pt_inception-2015-12-05-6726825d.pth "
                                      "(genvis eval --inception, or $GENVIS_INCEPTION) for standard FID")
                              : ojson(loaded.inception)},
            {"date", today_iso()}};
  // Table columns for docs/results.md: the model's size and, when its folder has a
  // training.json ({"data", "steps", "wall_time", "hardware"}), how it was trained.
  const ojson& source = scored.source;
  if (source.contains("parameters")) result["params"] = source["parameters"];
  if (source.contains("training") && source["training"].is_object())
    for (const char* k : {"data", "steps", "wall_time", "hardware"})
      if (source["training"].contains(k)) result[k] = source["training"][k];
  report.columns = {"name", "dataset", "split", "num"};
  for (const auto& [k, v] : metrics["metrics"].items()) report.columns.push_back(k);
  report.set = std::move(scored.set);
  return report;
}

void write_evaluation(const EvalReport& report, const std::string& folder) {
  const fs::path out(folder);
  fs::create_directories(out);
  write_file_atomic((out / "result.json").string(), report.result.dump(2) + "\n");
  write_file_atomic((out / "result.md").string(), markdown_table({report.result}, report.columns));
  io::write_png((out / "samples.png").string(),
                report.set.images.dim() == 5 ? clip_grid(report.set, 16) : sample_grid(report.set, 16));
}

std::string default_evaluation_folder(const EvalReport& report) {
  return (fs::path("eval") / report.result.value("name", std::string("unnamed"))).string();
}

}  // namespace genvis::eval
