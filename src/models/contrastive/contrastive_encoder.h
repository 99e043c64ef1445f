// genvis' contrastive text-image encoder as one object: the model, its tokenizer and its
// preprocessing, saved as a folder. Used to score generated images against captions
// (R-precision, CLIP-score analogues) independently of any generator's own text encoder.
//
//   auto enc = genvis::models::ContrastiveEncoder::load("models/genvis-contrastive-emoji");
//   at::Tensor img = enc.embed_images(images);                  // [B,3,H,W] in [0,1] -> [B,P]
//   at::Tensor txt = enc.embed_texts({"grinning face", "cat"});  // -> [2,P]
//   at::Tensor cosine = img.matmul(txt.t());                     // embeddings are L2-normalised f32
//
// Folder: config.json (ContrastiveConfig), model.safetensors (ContrastiveModel's names),
// tokenizer/ (vocab.json + merges.txt from tokenizers::train_bpe, read by CLIPTokenizer).
//
// Images: any size; a non-square image is centre-cropped to a square, then resized to
// vision_config.image_size (area averaging down, bilinear up) and mapped to [-1,1].
// Texts: CLIP cleaning and BPE, BOS + ids + EOS truncated to max_position_embeddings, padded
// with EOS to the longest row of the batch (the causal mask makes the pooled token independent
// of the padding length).
#pragma once
#include "models/contrastive/contrastive_model.h"
#include "tokenizers/clip_tokenizer.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace genvis::models {

class ContrastiveEncoder {
public:
  // A freshly initialised model (torch's global seed) with the tokenizer in `tokenizer_dir`.
  // The config's text vocab_size and bos/eos/pad ids are set from the tokenizer.
  ContrastiveEncoder(ContrastiveConfig config, const std::string& tokenizer_dir);

  // LoadError naming the folder or file for a missing folder, config, weights or tokenizer, or
  // for weights that do not fit the config (every missing and mis-shaped tensor at once).
  static ContrastiveEncoder load(const std::string& folder);
  // Writes config.json, model.safetensors and tokenizer/ into `folder` (created if needed), each
  // file atomically.
  void save(const std::string& folder) const;

  // [B,3,H,W] float in [0,1] -> [B,P] f32, unit L2 norm. No gradients; batches of 256.
  at::Tensor embed_images(const at::Tensor& images);
  // B strings -> [B,P] f32, unit L2 norm. No gradients; batches of 256.
  at::Tensor embed_texts(const std::vector<std::string>& texts);

  // [B,3,H,W] in [0,1] -> [B,3,S,S] in [-1,1], the model's input.
  at::Tensor preprocess_images(const at::Tensor& images) const;
  // int64 [B,L]: BOS ids EOS, EOS-padded to the longest row (L <= max_position_embeddings).
  at::Tensor tokenize(const std::vector<std::string>& texts) const;

  ContrastiveModel& model() { return model_; }
  const ContrastiveConfig& config() const { return model_->config; }
  const tokenizers::CLIPTokenizer& tokenizer() const { return *tokenizer_; }

private:
  ContrastiveEncoder(ContrastiveModel model, std::shared_ptr<const tokenizers::CLIPTokenizer> tokenizer,
                     std::map<std::string, std::string> tokenizer_files);

  ContrastiveModel model_{nullptr};
  std::shared_ptr<const tokenizers::CLIPTokenizer> tokenizer_;
  std::map<std::string, std::string> tokenizer_files_;  // file name -> contents, written by save()
};

// Trims int64 [B,L] EOS-padded rows to the longest row's first EOS (inclusive).
at::Tensor trim_eos_padding(const at::Tensor& input_ids, int64_t eos_id);

}  // namespace genvis::models
