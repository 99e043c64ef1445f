#include "pipelines/dalle/dalle_sampling.h"

#include "core/error.h"
#include "pipelines/pipeline.h"
#include "nn/attention.h"

#include <torch/torch.h>

namespace genvis::pipelines {

namespace {

using Draw = std::function<at::Tensor(const at::Tensor& logits)>;

at::Tensor sample(models::DalleTransformer& model, const at::Tensor& text_ids, const DalleSampleOptions& o,
                  const Draw& draw, const std::function<void(int64_t, int64_t)>& progress,
                  const std::function<bool()>& cancelled) {
  const models::DalleConfig& c = model->config;
  const int64_t B = text_ids.size(0), N = c.image_len();
  schedulers::validate(o.sampling);
  if (!(o.guidance >= 1)) throw UsageError("DALL·E guidance must be >= 1 (1: off), got " + std::to_string(o.guidance));
  const int64_t known = o.known.defined() ? o.known.size(1) : 0;
  if (o.known.defined() && (o.known.dim() != 2 || o.known.size(0) != B || known >= N))
    throw UsageError("DALL·E: known image tokens must be [" + std::to_string(B) + ", k < " + std::to_string(N) +
                     "], got " + c10::str(o.known.sizes()));
  if (known > 0 && (o.known.min().item<int64_t>() < 0 || o.known.max().item<int64_t>() >= c.image_vocab_size))
    throw UsageError("DALL·E: known image tokens must be in 0.." + std::to_string(c.image_vocab_size - 1));
  torch::NoGradGuard no_grad;
  const bool cfg = o.guidance > 1;
  // Rows: the captions, then (with guidance) the same number of all-padding captions.
  at::Tensor text = text_ids.to(at::kLong);
  if (cfg) text = at::cat({text, models::dalle_text_ids(std::vector<std::vector<int64_t>>(B), c)});
  const int64_t rows = text.size(0);
  at::Tensor image = at::zeros({rows, N}, at::kLong);
  if (known > 0) image.narrow(1, 0, known).copy_(o.known.to(at::kLong).repeat({rows / B, 1}));

  auto next_token = [&](const at::Tensor& logits) {  // logits [rows, V] -> [B]
    const at::Tensor l = cfg ? schedulers::guide_logits(logits.narrow(0, 0, B), logits.narrow(0, B, B), o.guidance)
                             : logits;
    return draw(l).cpu();
  };
  auto place = [&](int64_t n, const at::Tensor& token) { image.select(1, n).copy_(token.repeat({rows / B})); };

  if (o.use_cache) {
    auto [cache, logits] = model->prefill(text, image, known);
    for (int64_t n = known; n < N; ++n) {
      if (cancelled && cancelled()) throw Cancelled();
      place(n, next_token(logits));
      if (progress) progress(n - known + 1, N - known);
      if (n + 1 < N) logits = model->step(cache, image.select(1, n), n);
    }
  } else {
    for (int64_t n = known; n < N; ++n) {
      if (cancelled && cancelled()) throw Cancelled();
      const at::Tensor h = model->forward(text, image);
      place(n, next_token(nn::linear(h.select(1, c.text_len - 1 + n), model->image_head)));
      if (progress) progress(n - known + 1, N - known);
    }
  }
  return image.narrow(0, 0, B).clone();
}

}  // namespace

at::Tensor dalle_sample(models::DalleTransformer& model, const at::Tensor& text_ids, const DalleSampleOptions& o,
                        std::vector<Rng>& rngs, const std::function<void(int64_t, int64_t)>& progress,
                        const std::function<bool()>& cancelled) {
  if (static_cast<int64_t>(rngs.size()) != text_ids.size(0))
    throw UsageError("DALL·E: " + std::to_string(rngs.size()) + " generators for " + std::to_string(text_ids.size(0)) +
                     " captions");
  return sample(
      model, text_ids, o, [&](const at::Tensor& l) { return schedulers::sample_tokens(l, o.sampling, rngs); }, progress,
      cancelled);
}

at::Tensor dalle_sample(models::DalleTransformer& model, const at::Tensor& text_ids, const DalleSampleOptions& o,
                        Rng& rng, const std::function<void(int64_t, int64_t)>& progress) {
  return sample(
      model, text_ids, o, [&](const at::Tensor& l) { return schedulers::sample_tokens(l, o.sampling, rng); }, progress,
      {});
}

}  // namespace genvis::pipelines
