// R-precision, the text-to-image GAN literature's retrieval metric (AttnGAN, Xu et al. 2018;
// DM-GAN; XMC-GAN): for each image, its true caption and k-1 other captions are ranked by cosine
// similarity to the image in a separately trained encoder's space; the metric is the fraction of
// images whose true caption ranks first. Chance is 1/k.
//
//   CandidatePool pool{.embeddings = enc.embed_texts(split_captions), .captions = split_captions};
//   RPrecisionResult r = r_precision(image_embeds, enc.embed_texts(true_captions), true_captions,
//                                    pool, {.k = 100, .seed = 0});
//   r.value;   // mean of (rank == 1);  r.ranks[i] in 1..k
//
// Distractors for image i: k-1 distinct caption texts of the pool, each different from caption
// i's text, drawn without replacement by a seeded Rng (the same seed gives the same draws).
// Ties: a distractor whose similarity EQUALS the true caption's ranks above it (rank = 1 +
// number of distractors with similarity >= the true caption's), so an encoder that cannot tell
// captions apart scores 0, never 1.
#pragma once
#include "models/contrastive/contrastive_encoder.h"
#include "models/damsm/damsm_encoder.h"
#include "data/dataset.h"

#include <ATen/ATen.h>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::eval {

struct CandidatePool {
  at::Tensor embeddings;              // [M, D], L2-normalised
  std::vector<std::string> captions;  // M texts (duplicates count once)
};

struct RPrecisionOptions {
  int64_t k = 100;  // candidates per image: the true caption + k-1 distractors
  uint64_t seed = 0;
};

struct RPrecisionResult {
  double value = 0;            // mean of (ranks[i] == 1)
  std::vector<int64_t> ranks;  // 1-based rank of the true caption among k
  int64_t k = 0;
};

// image_embeds [N,D], caption_embeds [N,D] (the true captions'), true_captions N texts.
// UsageError when shapes disagree or the pool has fewer than k-1 texts other than a true caption.
RPrecisionResult r_precision(const at::Tensor& image_embeds, const at::Tensor& caption_embeds,
                             const std::vector<std::string>& true_captions, const CandidatePool& pool,
                             const RPrecisionOptions& options = {});

// n distinct indices of [0, size), drawn by a seeded Rng, in draw order. UsageError when n > size.
std::vector<size_t> choose_indices(size_t size, size_t n, uint64_t seed);

// The samples of a dataset split that an R-precision run evaluates, and the split's captions
// (the candidate pool). Choosing renders every sample of the split once (for its caption).
struct RPrecisionSamples {
  std::vector<size_t> indices;        // n distinct dataset indices (seeded)
  std::vector<std::string> captions;  // their captions
  std::vector<std::string> pool;      // every caption of the split
};
RPrecisionSamples choose_r_precision_samples(const data::Dataset& split, size_t n, uint64_t seed);

// R-precision of `images` ([n,3,H,W] in [0,1]: the samples' own images, or images generated from
// their captions) in the encoder's space. The distractor draws use a seed derived from
// options.seed (independent of the sample choice), so dataset and generated images of one run
// meet the same distractors.
RPrecisionResult encoder_r_precision(models::ContrastiveEncoder& encoder, const at::Tensor& images,
                                     const RPrecisionSamples& samples, const RPrecisionOptions& options = {});

// The same for any text-image encoder, given as its two embedding functions (each returning
// L2-normalised rows: images [n,3,H,W] in [0,1] -> [n,D], texts -> [m,D]), e.g. DAMSM's global
// image and sentence vectors.
struct TextImageEmbedder {
  std::function<at::Tensor(const at::Tensor&)> embed_images;
  std::function<at::Tensor(const std::vector<std::string>&)> embed_texts;
};
RPrecisionResult encoder_r_precision(const TextImageEmbedder& encoder, const at::Tensor& images,
                                     const RPrecisionSamples& samples, const RPrecisionOptions& options = {});

// A DAMSM as a text-image embedder in the AttnGAN protocol: L2-normalised global image vectors
// against sentence vectors. `encoder` must outlive the embedder.
TextImageEmbedder damsm_embedder(models::DamsmEncoder& encoder);

// The dataset's own images for `indices`: [n,3,H,W] float in [0,1].
at::Tensor dataset_images(const data::Dataset& dataset, const std::vector<size_t>& indices);

}  // namespace genvis::eval
