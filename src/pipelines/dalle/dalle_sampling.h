// DALL·E's image-token generation: the transformer continues [text; known image tokens] one
// image token at a time, with the KV cache (or by recomputing the whole stream at every token,
// the reference the cache is tested and benchmarked against), temperature / top-k / top-p, and
// optional classifier-free guidance on logits against the all-padding caption.
//
//   DalleSampleOptions o{.sampling = {.top_k = 64}, .guidance = 1.0};
//   at::Tensor codes = dalle_sample(model, text_ids /*[B,T]*/, o, rng);   // [B, rows*cols]
//   at::Tensor images = dvae->decode(codes.view({B, rows, cols}));
#pragma once
#include "core/rng.h"
#include "models/dalle/dalle_transformer.h"
#include "schedulers/token_sampling.h"

#include <functional>
#include <vector>

namespace genvis::pipelines {

struct DalleSampleOptions {
  schedulers::TokenSampling sampling;
  double guidance = 1.0;     // > 1: classifier-free guidance on logits (off at 1)
  at::Tensor known;          // [B, k] image tokens to complete from (the top k/cols rows); empty: none
  bool use_cache = true;     // false: recompute the stream for every token
};

// text_ids [B, T] (dalle_text_ids) -> image tokens [B, image_len] (int64), row b drawn with
// rngs[b] (so a sample does not depend on its batch). progress(done, total) after each token;
// cancelled() polled before each (true: Cancelled). UsageError for mismatched shapes or
// out-of-range known tokens.
at::Tensor dalle_sample(models::DalleTransformer& model, const at::Tensor& text_ids, const DalleSampleOptions& options,
                        std::vector<Rng>& rngs, const std::function<void(int64_t, int64_t)>& progress = {},
                        const std::function<bool()>& cancelled = {});
// The same with one generator for the whole batch.
at::Tensor dalle_sample(models::DalleTransformer& model, const at::Tensor& text_ids, const DalleSampleOptions& options,
                        Rng& rng, const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace genvis::pipelines
