#include "eval/evaluation.h"

#include "core/error.h"
#include "data/shapes.h"
#include "eval/frechet_distance.h"
#include "eval/precision_recall.h"
#include "eval/r_precision.h"
#include "eval/reference_features.h"
#include "eval/tensor_shape.h"
#include "io/grid.h"
#include "io/image_tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace genvis::eval {

namespace {

void distribution_metrics(const at::Tensor& images, FeatureExtractor& fx, const data::Dataset& reference,
                          const EvalOptions& o, nlohmann::ordered_json& out, nlohmann::ordered_json& info) {
  const ReferenceFeatures ref = reference_features(
      fx, reference, {.dataset_key = o.dataset_key, .num = o.reference_num, .seed = o.seed, .cache_dir = o.cache_dir});
  std::vector<at::Tensor> parts;
  for (int64_t b = 0; b < images.size(0); b += 256)
    parts.push_back(fx.features(images.narrow(0, b, std::min<int64_t>(256, images.size(0) - b))).to(at::kFloat));
  const at::Tensor fake = at::cat(parts);
  const at::Tensor& real = ref.features;
  out[fx.label("FID")] = frechet_distance(gaussian_stats(real), gaussian_stats(fake));
  KIDOptions kid = o.kid;
  kid.seed = o.seed;
  kid.subset_size = std::min<int64_t>({kid.subset_size, real.size(0), fake.size(0)});
  const KIDResult k = kernel_inception_distance(real, fake, kid);
  out[fx.label("KID")] = {{"mean", k.mean}, {"std", k.std}};
  if (std::min(real.size(0), fake.size(0)) > o.pr_k) {
    const PrecisionRecallResult pr = precision_recall(real, fake, {.k = o.pr_k});
    out[fx.label("precision")] = pr.precision;
    out[fx.label("recall")] = pr.recall;
  }
  info[fx.name()] = {{"reference_num", real.size(0)},
                     {"feature_dim", real.size(1)},
                     {"kid_subsets", k.subsets},
                     {"kid_subset_size", k.subset_size},
                     {"pr_k", o.pr_k},
                     {"cache", ref.cache_file.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(ref.cache_file)},
                     {"cached", ref.cached}};
}

void text_image_metrics(const EvalSet& set, const std::string& name, const TextImageEmbedder& enc,
                        const std::vector<std::string>& pool, const EvalOptions& o, nlohmann::ordered_json& out) {
  const at::Tensor img = enc.embed_images(set.images);
  const at::Tensor cap = enc.embed_texts(set.captions);
  const at::Tensor cos = (img * cap).sum(1);  // [N]
  out["clip_score[" + name + "]"] = 100.0 * cos.clamp_min(0).mean().item<double>();
  // Split order: the draws match `eval r-precision`.
  if (static_cast<int64_t>(std::set<std::string>(pool.begin(), pool.end()).size()) < o.r_precision_k) return;
  const CandidatePool candidates{enc.embed_texts(pool), pool};
  // The same distractor seed as encoder_r_precision, so `eval r-precision` agrees.
  const RPrecisionResult r =
      r_precision(img, cap, set.captions, candidates, {.k = o.r_precision_k, .seed = o.seed ^ 0x9e3779b97f4a7c15ULL});
  out["r_precision[" + name + "]"] = r.value;
}

void add_shapes_metrics(const EvalSet& set, nlohmann::ordered_json& out) {
  int64_t objects = 0, colour = 0, shape_ok = 0, both = 0, position = 0, relations = 0, relations_ok = 0, all = 0;
  int64_t other_objects = 0, other_colour = 0;
  const int64_t n = set.images.size(0);
  for (int64_t i = 0; i < n; ++i) {
    const io::Image image = io::tensor_to_image(set.images[i] * 2.0 - 1.0);
    const data::ShapesScore s = data::score_shapes(image, set.metas[static_cast<size_t>(i)]);
    // The chance level of the colour check on these very images: scored against the next
    // caption's scene (colourful noise finds blobs of any colour).
    for (const auto& obj : data::score_shapes(image, set.metas[static_cast<size_t>((i + 1) % n)]).objects) {
      ++other_objects;
      other_colour += obj.colour;
    }
    for (const auto& obj : s.objects) {
      ++objects;
      colour += obj.colour;
      shape_ok += obj.shape;
      both += obj.colour && obj.shape;
      position += obj.position;
    }
    for (const bool r : s.relations) {
      ++relations;
      relations_ok += r;
    }
    all += s.all_correct();
  }
  const auto frac = [](int64_t a, int64_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; };
  out["shapes_colour_accuracy"] = frac(colour, objects);
  out["shapes_colour_chance"] = frac(other_colour, other_objects);
  out["shapes_shape_accuracy"] = frac(shape_ok, objects);
  out["shapes_colour_shape_accuracy"] = frac(both, objects);
  out["shapes_position_accuracy"] = frac(position, objects);
  if (relations) out["shapes_relation_accuracy"] = frac(relations_ok, relations);
  out["shapes_all_correct"] = frac(all, set.images.size(0));
}

}  // namespace

bool is_shapes_scene(const nlohmann::json& meta) { return meta.is_object() && meta.contains("objects"); }

nlohmann::ordered_json evaluate(const EvalSet& set, Judges& judges, const data::Dataset& reference,
                                const EvalOptions& options) {
  const at::Tensor& x = set.images;
  if (!x.defined() || x.dim() != 4 || x.size(1) != 3 || x.size(0) < 2)
    throw UsageError("evaluate: expected at least 2 images [N,3,H,W], got " + shape(x));
  const auto n = static_cast<size_t>(x.size(0));
  if (set.captions.size() != n) throw UsageError("evaluate: " + std::to_string(set.captions.size()) +
                                                 " captions for " + std::to_string(n) + " images");
  if (!set.metas.empty() && set.metas.size() != n)
    throw UsageError("evaluate: " + std::to_string(set.metas.size()) + " sample facts for " + std::to_string(n) +
                     " images");

  nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
  nlohmann::ordered_json extractors = nlohmann::ordered_json::object();
  for (auto& fx : judges.extractors) distribution_metrics(x, *fx, reference, options, metrics, extractors);

  const bool captioned = std::all_of(set.captions.begin(), set.captions.end(), [](const auto& c) { return !c.empty(); });
  if (captioned) {
    if (judges.text_image) {
      auto* enc = judges.text_image;
      const TextImageEmbedder contrastive{[enc](const at::Tensor& x) { return enc->embed_images(x); },
                                          [enc](const std::vector<std::string>& t) { return enc->embed_texts(t); }};
      text_image_metrics(set, judges.text_image_name, contrastive, judges.caption_pool, options, metrics);
    }
    for (const auto& j : judges.more_text_image)
      text_image_metrics(set, j.name, j.embedder, judges.caption_pool, options, metrics);
  }

  const bool labelled = !set.metas.empty() && std::all_of(set.metas.begin(), set.metas.end(), [](const auto& m) {
    return m.is_object() && m.contains("label") && m["label"].is_number_integer();
  });
  if (judges.classifier && labelled) {
    const std::vector<int64_t> predicted = judges.classifier->predict(x);
    int64_t hits = 0;
    for (size_t i = 0; i < n; ++i) hits += predicted[i] == set.metas[i]["label"].get<int64_t>();
    metrics["accuracy[" + judges.classifier->name() + "]"] = static_cast<double>(hits) / static_cast<double>(n);
  }

  if (!set.metas.empty() && std::all_of(set.metas.begin(), set.metas.end(), is_shapes_scene)) add_shapes_metrics(set, metrics);

  return {{"metrics", metrics}, {"extractors", extractors}};
}

nlohmann::ordered_json shapes_metrics(const EvalSet& set) {
  if (!set.images.defined() || set.images.dim() != 4 || set.metas.size() != static_cast<size_t>(set.images.size(0)) ||
      !std::all_of(set.metas.begin(), set.metas.end(), is_shapes_scene))
    throw UsageError("shapes_metrics: one shapes scene (meta with \"objects\") per image is needed");
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  add_shapes_metrics(set, out);
  return out;
}

namespace {

std::string cell(const nlohmann::ordered_json& v) {
  char buf[64];
  if (v.is_object() && v.contains("mean")) {
    std::snprintf(buf, sizeof buf, "%.4f ± %.4f", v["mean"].get<double>(), v["std"].get<double>());
    return buf;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    std::snprintf(buf, sizeof buf, std::fabs(d) >= 100 ? "%.1f" : std::fabs(d) >= 1 ? "%.2f" : "%.3f", d);
    return buf;
  }
  if (v.is_null()) return "-";
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

std::string markdown_table(const std::vector<nlohmann::ordered_json>& rows, const std::vector<std::string>& columns) {
  std::string md = "|";
  for (const auto& c : columns) md += " " + c + " |";
  md += "\n|";
  for (size_t i = 0; i < columns.size(); ++i) md += " --- |";
  md += "\n";
  for (const auto& r : rows) {
    md += "|";
    for (const auto& c : columns) {
      const nlohmann::ordered_json* v = nullptr;
      if (r.contains(c)) v = &r[c];
      else if (r.contains("metrics") && r["metrics"].contains(c)) v = &r["metrics"][c];
      md += " " + (v ? cell(*v) : std::string("-")) + " |";
    }
    md += "\n";
  }
  return md;
}

io::Image sample_grid(const EvalSet& set, size_t count) {
  const size_t n = std::min<size_t>(count, static_cast<size_t>(set.images.size(0)));
  std::vector<io::Image> images;
  std::vector<std::string> captions;
  for (size_t i = 0; i < n; ++i) {
    at::Tensor img = set.images[static_cast<int64_t>(i)];
    // Small images get a nearest-neighbour upscale so the sheet is readable.
    const int64_t side = std::max(img.size(1), img.size(2));
    if (side < 96) {
      const int64_t f = (96 + side - 1) / side;
      img = at::upsample_nearest2d(img.unsqueeze(0), {img.size(1) * f, img.size(2) * f}).squeeze(0);
    }
    images.push_back(io::tensor_to_image(img * 2.0 - 1.0));
    captions.push_back(set.captions.empty() ? "" : set.captions[i]);
  }
  io::GridOptions g;
  g.font_size = 11;
  g.max_caption_lines = 3;
  return io::make_grid(images, 0, captions, g);
}

}  // namespace genvis::eval
