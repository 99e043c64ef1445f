// Drawing the next token from a language model's logits: temperature, top-k and nucleus (top-p)
// filtering, and classifier-free guidance on logits, all seeded through an Rng.
//
//   TokenSampling s{.temperature = 1.0, .top_k = 64, .top_p = 0.95};
//   at::Tensor next = sample_tokens(logits /*[B,V]*/, s, rng);   // [B] int64
//
// Filtering keeps, per row, the top_k most likely tokens (0: all), then the smallest set of the
// most likely ones whose probability reaches top_p (1: all; the most likely token always stays),
// as Holtzman et al. 2020 describe; the rest get probability 0. temperature 0 is greedy (argmax).
#pragma once
#include "core/rng.h"

#include <string>
#include <torch/types.h>
#include <vector>

namespace genvis::schedulers {

struct TokenSampling {
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
};

// UsageError for a negative temperature or top_k, or top_p outside (0, 1]; the message quotes the field
// as 'PREFIXtemperature' (a pipeline passes "extras." so the CLI can name its flag).
void validate(const TokenSampling& s, const std::string& field_prefix = "");

// logits [B, V] -> the filtered logits (float32; removed tokens -inf), before the temperature.
at::Tensor filter_logits(const at::Tensor& logits, int64_t top_k, double top_p);

// logits [B, V] -> sampled ids [B] (int64, on logits' device): one uniform per row from rng, or
// from rngs[b] for row b (each sample its own seeded stream; rngs.size() == B).
at::Tensor sample_tokens(const at::Tensor& logits, const TokenSampling& s, Rng& rng);
at::Tensor sample_tokens(const at::Tensor& logits, const TokenSampling& s, std::vector<Rng>& rngs);

// Classifier-free guidance on logits (as Gafni et al. 2022 and later autoregressive models do):
// uncond + scale * (cond - uncond), computed on log-probabilities.
at::Tensor guide_logits(const at::Tensor& cond, const at::Tensor& uncond, double scale);

}  // namespace genvis::schedulers
