// genvis' DAMSM as one object: the model, its tokenizer and its preprocessing, saved as a folder.
// It is AttnGAN's training loss, DF-GAN's text encoder and a judge of generated images
// (R-precision in the AttnGAN protocol: global image vector against sentence vectors).
//
//   auto damsm = genvis::models::DamsmEncoder::load("models/genvis-damsm-emoji");
//   auto text = damsm.encode_texts({"grinning face", "cat"});  // words [2,D,T], mask [2,T], sentence [2,D]
//   auto image = damsm.encode_images(images);                  // [B,3,H,W] in [0,1] -> regions, global
//   at::Tensor cosine = damsm::sentence_scores(text.sentence, image.global);  // damsm_loss.h
//
// Folder: config.json (DamsmConfig), model.safetensors (DamsmModel's names), tokenizer/
// (vocab.json + merges.txt from tokenizers::train_bpe, read by CLIPTokenizer).
//
// Texts: CLIP cleaning and BPE without BOS/EOS, cut to text_config.max_length tokens (an empty
// caption becomes the EOS token alone), padded with 0 to the longest row.
// Images: centre-cropped to a square, resized to vision_config.image_size (io::square_resize),
// mapped to [-1,1].
#pragma once
#include "models/damsm/damsm_model.h"
#include "tokenizers/clip_tokenizer.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace genvis::models {

struct DamsmTokens {
  at::Tensor ids;      // int64 [B,T]
  at::Tensor lengths;  // int64 [B], 1..T
  at::Tensor mask() const;  // bool [B,T]: true at real tokens
};

struct DamsmTexts {
  at::Tensor words;     // [B,D,T] f32
  at::Tensor mask;      // bool [B,T]
  at::Tensor sentence;  // [B,D] f32
};

class DamsmEncoder {
public:
  // A freshly initialised model (torch's global seed) with the tokenizer in `tokenizer_dir`;
  // text_config.vocab_size is set from the tokenizer.
  DamsmEncoder(DamsmConfig config, const std::string& tokenizer_dir);

  // LoadError naming the folder or file for a missing folder, config, weights or tokenizer, or
  // weights that do not fit the config (every missing and mis-shaped tensor at once).
  static DamsmEncoder load(const std::string& folder);
  // config.json, model.safetensors and tokenizer/ into `folder` (created if needed), atomically.
  void save(const std::string& folder) const;

  DamsmTokens tokenize(const std::vector<std::string>& texts) const;
  // [B,3,H,W] in [0,1] -> [B,3,S,S] in [-1,1], the image encoder's input.
  at::Tensor preprocess_images(const at::Tensor& images) const;

  // No gradients, eval mode, batches of 256.
  DamsmTexts encode_texts(const std::vector<std::string>& texts);
  DamsmImageFeatures encode_images(const at::Tensor& images);  // [B,3,H,W] in [0,1]

  DamsmModel& model() { return model_; }
  const DamsmConfig& config() const { return model_->config; }
  const tokenizers::CLIPTokenizer& tokenizer() const { return *tokenizer_; }

private:
  DamsmEncoder(DamsmModel model, std::shared_ptr<const tokenizers::CLIPTokenizer> tokenizer,
               std::map<std::string, std::string> tokenizer_files);

  DamsmModel model_{nullptr};
  std::shared_ptr<const tokenizers::CLIPTokenizer> tokenizer_;
  std::map<std::string, std::string> tokenizer_files_;
};

}  // namespace genvis::models
