// genvis's DALL·E family (genvis.DallePipeline): the caption's BPE tokens, image tokens drawn
// one at a time by the transformer (KV cache), decoded by the dVAE; optionally N candidates per
// image reranked by a contrastive encoder, the best kept (the paper keeps the best 32 of 512).
//
//   auto p = load_pipeline({.model = "models/genvis-dalle-emoji"});
//   Request r;  r.prompt = "grinning face";  r.extras = {{"rerank", 16}, {"top_k", 64}};
//   write_result(p->generate(r), {.path = "face.png"});
//
// Request: prompt(s), seed (sample i: seed + i; its candidates are drawn from that seed alone),
// batch, guidance (classifier-free guidance on logits against the all-padding caption; 1: off,
// the default), init_image with extras keep_rows (image completion: the top keep_rows rows of
// the image's tokens kept, default half), extras temperature (1), top_k (0: all), top_p (1),
// rerank (candidates per image, 1: none; needs a reranker), use_cache (true).
//
// Result::latents holds each image's tokens [B, rows, cols] (int64).
//
// Folder: model_index.json {"_class_name": "genvis.DallePipeline", ...}, tokenizer/ (CLIP BPE),
// dvae/ and transformer/ (models/dalle/dalle_io.h), reranker/ (optional: a
// ContrastiveEncoder folder; a model without one can be given one with extras reranker: FOLDER).
#pragma once
#include "models/contrastive/contrastive_encoder.h"
#include "models/dalle/dalle_transformer.h"
#include "models/dalle/dvae.h"
#include "pipelines/pipeline.h"
#include "tokenizers/clip_tokenizer.h"

#include <memory>
#include <optional>
#include <string>

namespace genvis::pipelines {

inline constexpr const char* kDalleClass = "genvis.DallePipeline";

struct DalleModel {
  std::optional<tokenizers::CLIPTokenizer> tokenizer;
  models::DiscreteVAE dvae{nullptr};
  models::DalleTransformer transformer{nullptr};
  std::optional<models::ContrastiveEncoder> reranker;
  std::string name;
};

// LoadError naming the file for anything missing or inconsistent (the tokenizer's vocabulary
// against text_vocab_size, the dVAE's codebook and grid against the transformer's).
DalleModel load_dalle_model(const ModelSource& source);

// Writes model_index.json, tokenizer/ (copied from tokenizer_dir), dvae/, transformer/ and, when
// reranker_dir is not empty, reranker/ (copied).
void save_dalle_model(const std::string& tokenizer_dir, models::DiscreteVAE& dvae, models::DalleTransformer& transformer,
                      const std::string& reranker_dir, const std::string& folder);

// The caption's text ids [B, text_len]: BPE ids without BOS/EOS, cut to text_len, padded with
// the per-position pad tokens. `cut` (when given) receives how many captions were longer.
at::Tensor dalle_caption_ids(const tokenizers::CLIPTokenizer& tokenizer, const models::DalleConfig& config,
                             const std::vector<std::string>& captions, int64_t* cut = nullptr);

// Each candidate's cosine similarity to its caption under `reranker`: images [B,3,H,W] in [0,1].
at::Tensor rerank_scores(models::ContrastiveEncoder& reranker, const at::Tensor& images,
                         const std::vector<std::string>& captions);

class DallePipeline : public Pipeline {
public:
  explicit DallePipeline(DalleModel model);
  const PipelineInfo& info() const override { return info_; }
  DalleModel& model() { return model_; }

protected:
  Result run(const Request& request, const Callbacks& callbacks) override;

private:
  DalleModel model_;
  PipelineInfo info_;
};

std::unique_ptr<Pipeline> load_dalle_pipeline(const ModelSource& source);

}  // namespace genvis::pipelines
