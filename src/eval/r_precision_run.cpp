#include "eval/r_precision_run.h"

#include "core/error.h"
#include "data/registry.h"
#include "eval/r_precision.h"
#include "models/contrastive/contrastive_encoder.h"
#include "pipelines/registry.h"

namespace genvis::eval {

nlohmann::ordered_json run_r_precision(const RPrecisionRun& o) {
  // 1 options
  const data::Split split = data::parse_split(o.split);
  if (split == data::Split::All) throw UsageError("'split' must be train or heldout");
  if (o.num < 0) throw UsageError("'num' must be >= 0");
  if (o.k < 2) throw UsageError("'k' must be >= 2");
  if (o.resolution < 0) throw UsageError("'resolution' must be >= 0");
  if (o.size < 0 || o.size % 8 != 0) throw UsageError("'size' must be a multiple of 8 (0 = the model's native size)");
  if (o.images_from_dataset == !o.model.empty())
    throw UsageError(o.images_from_dataset ? "'model' and 'images_from_dataset' exclude each other"
                                           : "'model' is required (or 'images_from_dataset')");
  if (o.encoder.empty()) throw UsageError("'encoder' is required (a contrastive encoder folder)");

  // 2 encoder, dataset, samples
  models::ContrastiveEncoder encoder = models::ContrastiveEncoder::load(o.encoder);
  data::DatasetSpec spec;
  spec.name = o.dataset;
  spec.path = o.path;
  spec.split = split;
  spec.resolution = static_cast<int>(o.resolution > 0 ? o.resolution : encoder.config().vision_config.image_size);
  const auto dataset = data::make_dataset(spec);
  const size_t n = o.num == 0 ? dataset->size() : static_cast<size_t>(o.num);
  if (n > dataset->size())
    throw UsageError("'num' " + std::to_string(n) + ": the " + o.split + " split of " + o.dataset + " has " +
                     std::to_string(dataset->size()) + " samples");
  const RPrecisionSamples samples = choose_r_precision_samples(*dataset, n, o.seed);

  // 3 images
  at::Tensor images;
  nlohmann::ordered_json generation = nullptr;
  if (o.images_from_dataset) {
    images = dataset_images(*dataset, samples.indices);
  } else {
    pipelines::ModelSource source;
    source.model = o.model;
    source.device = o.device;
    source.dtype = o.dtype;
    const std::unique_ptr<pipelines::Pipeline> model = pipelines::load_pipeline(source);
    pipelines::Request request;
    request.steps = o.steps;
    request.guidance = o.cfg_scale;
    request.sampler = o.sampler;
    const int64_t side = o.size > 0 ? o.size : model->info().native_width;
    request.width = request.height = side;
    request.seed = o.seed;  // caption i: seed + i
    images = pipelines::generate_each(*model, samples.captions, request, 1, "generating");
    generation = {{"steps", o.steps}, {"cfg_scale", o.cfg_scale}, {"sampler", o.sampler}, {"size", side}};
  }

  // 4 rank and report
  const RPrecisionResult r = encoder_r_precision(encoder, images, samples, {.k = o.k, .seed = o.seed});
  nlohmann::ordered_json j = {{"metric", "r_precision"},
                              {"value", r.value},
                              {"num", n},
                              {"k", r.k},
                              {"chance", 1.0 / static_cast<double>(r.k)},
                              {"split", data::split_name(split)},
                              {"dataset", o.dataset},
                              {"images", o.images_from_dataset ? "dataset" : "generated"},
                              {"encoder", o.encoder},
                              {"model", o.images_from_dataset ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(o.model)},
                              {"seed", o.seed},
                              {"generation", generation},
                              {"mean_rank", 0.0}};
  double rank_sum = 0;
  for (const int64_t rank : r.ranks) rank_sum += static_cast<double>(rank);
  j["mean_rank"] = r.ranks.empty() ? 0.0 : rank_sum / static_cast<double>(r.ranks.size());
  return j;
}

}  // namespace genvis::eval
