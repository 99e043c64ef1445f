#include "eval/reference_features.h"

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "eval/r_precision.h"
#include "io/safetensors.h"

#include <cstdlib>
#include <filesystem>
#include <map>

namespace genvis::eval {

namespace fs = std::filesystem;

std::string default_cache_dir() {
  if (const char* d = std::getenv("GENVIS_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "genvis" / "eval").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "genvis" / "eval").string();
  return (fs::temp_directory_path() / "genvis-eval-cache").string();
}

namespace {

std::map<std::string, std::string> cache_metadata(FeatureExtractor& fx, const ReferenceOptions& o, size_t num) {
  return {{"genvis_kind", "reference_features"},
          {"dataset", o.dataset_key},
          {"num", std::to_string(num)},
          {"seed", std::to_string(o.seed)},
          {"extractor", fx.name()},
          {"fingerprint", fx.fingerprint()}};
}

// The cached features when the file exists and says it holds exactly these; empty otherwise
// (a stale or unreadable cache is recomputed, never trusted).
at::Tensor read_cache(const std::string& file, const std::map<std::string, std::string>& expected, size_t num) {
  if (!fs::exists(file)) return {};
  try {
    const auto reader = io::SafetensorsReader::open(file);
    for (const auto& [k, v] : expected) {
      const auto it = reader->metadata().find(k);
      if (it == reader->metadata().end() || it->second != v) return {};
    }
    at::Tensor f = reader->load("features").to(at::kFloat).clone();
    if (f.dim() != 2 || f.size(0) != static_cast<int64_t>(num)) return {};
    return f;
  } catch (const std::exception& e) {
    log_warn("ignoring unreadable feature cache " + file + ": " + e.what());
    return {};
  }
}

}  // namespace

ReferenceFeatures reference_features(FeatureExtractor& extractor, const data::Dataset& dataset,
                                     const ReferenceOptions& options) {
  if (options.dataset_key.empty()) throw UsageError("reference_features: dataset_key is empty");
  if (options.batch < 1) throw UsageError("reference_features: batch must be >= 1");
  const size_t num = options.num == 0 ? dataset.size() : options.num;
  if (num < 2 || num > dataset.size())
    throw UsageError("reference images: " + std::to_string(num) + " asked for, the split of " + dataset.name() +
                     " has " + std::to_string(dataset.size()) + " (at least 2 are needed)");
  ReferenceFeatures out;
  const auto meta = cache_metadata(extractor, options, num);
  if (!options.cache_dir.empty()) {
    out.cache_file = (fs::path(options.cache_dir) / (options.dataset_key + "-n" + std::to_string(num) + "-s" +
                                                     std::to_string(options.seed) + "-" + extractor.name() + "-" +
                                                     extractor.fingerprint().substr(0, 12) + ".safetensors"))
                         .string();
    out.features = read_cache(out.cache_file, meta, num);
    if (out.features.defined()) {
      out.cached = true;
      return out;
    }
  }

  // Render and embed in batches: memory stays at one batch of images.
  const std::vector<size_t> indices = choose_indices(dataset.size(), num, options.seed);
  std::vector<at::Tensor> parts;
  Progress progress("reference features", static_cast<int64_t>(num));
  for (size_t begin = 0; begin < num; begin += static_cast<size_t>(options.batch)) {
    const size_t end = std::min(num, begin + static_cast<size_t>(options.batch));
    const std::vector<size_t> chunk(indices.begin() + static_cast<std::ptrdiff_t>(begin),
                                    indices.begin() + static_cast<std::ptrdiff_t>(end));
    parts.push_back(extractor.features(dataset_images(dataset, chunk)).to(at::kCPU, at::kFloat));
    progress.update(static_cast<int64_t>(end));
  }
  progress.finish();
  out.features = at::cat(parts);

  if (!out.cache_file.empty()) {
    try {
      fs::create_directories(options.cache_dir);
      io::save_safetensors(out.cache_file, {{"features", out.features}}, meta);
    } catch (const std::exception& e) {
      log_warn("could not cache reference features in " + out.cache_file + ": " + e.what());
    }
  }
  return out;
}

}  // namespace genvis::eval
