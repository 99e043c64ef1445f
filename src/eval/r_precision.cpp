#include "eval/r_precision.h"

#include "core/error.h"
#include "core/progress.h"
#include "core/rng.h"
#include "eval/tensor_shape.h"
#include "io/image_tensor.h"

#include <torch/torch.h>
#include <unordered_map>

namespace genvis::eval {

RPrecisionResult r_precision(const at::Tensor& image_embeds, const at::Tensor& caption_embeds,
                             const std::vector<std::string>& true_captions, const CandidatePool& pool,
                             const RPrecisionOptions& options) {
  // 1 check shapes
  if (options.k < 2) throw UsageError("r_precision: k must be >= 2");
  if (!image_embeds.defined() || image_embeds.dim() != 2 || !caption_embeds.defined() ||
      caption_embeds.sizes() != image_embeds.sizes() ||
      static_cast<int64_t>(true_captions.size()) != image_embeds.size(0))
    throw UsageError("r_precision: expected image and caption embeddings [N,D] and N captions, got " +
                     shape(image_embeds) + ", " + shape(caption_embeds) + " and " +
                     std::to_string(true_captions.size()) + " captions");
  if (!pool.embeddings.defined() || pool.embeddings.dim() != 2 || pool.embeddings.size(1) != image_embeds.size(1) ||
      static_cast<int64_t>(pool.captions.size()) != pool.embeddings.size(0))
    throw UsageError("r_precision: candidate pool must be [M," + std::to_string(image_embeds.size(1)) +
                     "] embeddings with M captions, got " + shape(pool.embeddings) + " and " +
                     std::to_string(pool.captions.size()) + " captions");

  // 2 the pool's distinct texts (first occurrence), in pool order
  std::vector<int64_t> unique;
  std::unordered_map<std::string, int64_t> first;
  for (size_t j = 0; j < pool.captions.size(); ++j)
    if (first.emplace(pool.captions[j], static_cast<int64_t>(j)).second) unique.push_back(static_cast<int64_t>(j));

  // 3 rank each true caption among itself + k-1 seeded distractors; similarities in f64,
  // elementwise product + row sum, so equal embeddings give exactly equal scores
  const at::Tensor images = image_embeds.to(at::kDouble).cpu(), captions = caption_embeds.to(at::kDouble).cpu();
  const at::Tensor candidates = pool.embeddings.to(at::kDouble).cpu();
  const int64_t n = image_embeds.size(0), k = options.k;
  Rng rng(options.seed);
  RPrecisionResult result;
  result.k = k;
  result.ranks.reserve(static_cast<size_t>(n));
  int64_t hits = 0;
  std::vector<int64_t> others;
  for (int64_t i = 0; i < n; ++i) {
    const std::string& truth = true_captions[static_cast<size_t>(i)];
    others.clear();
    for (const int64_t j : unique)
      if (pool.captions[static_cast<size_t>(j)] != truth) others.push_back(j);
    if (static_cast<int64_t>(others.size()) < k - 1)
      throw UsageError("r_precision: the candidate pool has " + std::to_string(others.size()) +
                       " captions other than \"" + truth + "\"; k = " + std::to_string(k) + " needs " +
                       std::to_string(k - 1));
    // Partial Fisher-Yates: the first k-1 entries become a uniform draw without replacement.
    const auto m = static_cast<int64_t>(others.size());
    for (int64_t d = 0; d < k - 1; ++d) std::swap(others[static_cast<size_t>(d)], others[static_cast<size_t>(rng.randint(d, m))]);
    const at::Tensor picked = candidates.index_select(0, at::tensor(std::vector<int64_t>(others.begin(), others.begin() + (k - 1)), at::kLong));
    const at::Tensor rows = at::cat({captions.narrow(0, i, 1), picked});  // [k, D], row 0 the truth
    const at::Tensor sims = (rows * images.narrow(0, i, 1)).sum(1);        // [k]
    const int64_t above = sims.narrow(0, 1, k - 1).ge(sims[0]).sum().item<int64_t>();
    result.ranks.push_back(1 + above);
    hits += above == 0;
  }
  result.value = n > 0 ? static_cast<double>(hits) / static_cast<double>(n) : 0.0;
  return result;
}

std::vector<size_t> choose_indices(size_t size, size_t n, uint64_t seed) {
  if (n > size)
    throw UsageError("cannot choose " + std::to_string(n) + " samples from " + std::to_string(size));
  std::vector<size_t> all(size);
  for (size_t i = 0; i < size; ++i) all[i] = i;
  Rng rng(seed);
  for (size_t d = 0; d < n; ++d)
    std::swap(all[d], all[static_cast<size_t>(rng.randint(static_cast<int64_t>(d), static_cast<int64_t>(size)))]);
  all.resize(n);
  return all;
}

at::Tensor dataset_images(const data::Dataset& dataset, const std::vector<size_t>& indices) {
  std::vector<at::Tensor> images;
  images.reserve(indices.size());
  for (const size_t i : indices) {
    const data::Sample s = dataset.get(i);
    images.push_back((io::image_to_tensor(s.image.to_8bit().with_channels(3)) + 1.0) * 0.5);
  }
  if (images.empty()) return torch::empty({0, 3, 1, 1});
  return at::cat(images);
}

RPrecisionSamples choose_r_precision_samples(const data::Dataset& split, size_t n, uint64_t seed) {
  RPrecisionSamples out;
  out.pool.reserve(split.size());
  Progress progress("captions", static_cast<int64_t>(split.size()));
  for (size_t i = 0; i < split.size(); ++i) {
    out.pool.push_back(split.get(i).caption);
    progress.update(static_cast<int64_t>(i + 1));
  }
  progress.finish();
  out.indices = choose_indices(split.size(), n, seed);
  for (const size_t i : out.indices) out.captions.push_back(out.pool[i]);
  return out;
}

RPrecisionResult encoder_r_precision(const TextImageEmbedder& encoder, const at::Tensor& images,
                                     const RPrecisionSamples& samples, const RPrecisionOptions& options) {
  const auto n = static_cast<int64_t>(samples.indices.size());
  if (!images.defined() || images.dim() != 4 || images.size(0) != n)
    throw UsageError("r_precision: expected " + std::to_string(n) + " images [n,3,H,W], got " + shape(images));
  const CandidatePool pool{encoder.embed_texts(samples.pool), samples.pool};
  RPrecisionOptions o = options;
  o.seed = options.seed ^ 0x9e3779b97f4a7c15ULL;
  return r_precision(encoder.embed_images(images), encoder.embed_texts(samples.captions), samples.captions, pool, o);
}

RPrecisionResult encoder_r_precision(models::ContrastiveEncoder& encoder, const at::Tensor& images,
                                     const RPrecisionSamples& samples, const RPrecisionOptions& options) {
  const TextImageEmbedder e{[&](const at::Tensor& x) { return encoder.embed_images(x); },
                            [&](const std::vector<std::string>& t) { return encoder.embed_texts(t); }};
  return encoder_r_precision(e, images, samples, options);
}

TextImageEmbedder damsm_embedder(models::DamsmEncoder& encoder) {
  namespace F = torch::nn::functional;
  return {[&encoder](const at::Tensor& x) {
            return F::normalize(encoder.encode_images(x).global, F::NormalizeFuncOptions().dim(1));
          },
          [&encoder](const std::vector<std::string>& t) {
            return F::normalize(encoder.encode_texts(t).sentence, F::NormalizeFuncOptions().dim(1));
          }};
}

}  // namespace genvis::eval
