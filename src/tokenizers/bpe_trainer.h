// Training a CLIP-style byte-level BPE vocabulary on our own text (the OpenAI vocabulary is not
// ours to ship with a model we train). The result is a diffusers/transformers tokenizer folder
// (vocab.json + merges.txt) that CLIPTokenizer::load reads like any other, with the same text
// cleaning and pre-tokenisation, so every input still encodes (bytes are always in the vocabulary).
//
//   auto vocab = genvis::tokenizers::train_bpe(captions, {.vocab_size = 4096});
//   genvis::tokenizers::save_tokenizer_folder(vocab, "model/tokenizer");
//   auto tok = genvis::tokenizers::CLIPTokenizer::load("model/tokenizer");
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace genvis::tokenizers {

struct BPETrainOptions {
  int64_t vocab_size = 4096;  // total: 512 byte symbols + merges + 2 special tokens (>= 514)
  int64_t min_frequency = 2;  // a pair seen fewer times is not merged
};

struct BPEVocabulary {
  std::vector<std::string> tokens;  // id order: bytes, bytes + "</w>", merges, <|startoftext|>, <|endoftext|>
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
};

// Deterministic: ties between equally frequent pairs go to the lexicographically smaller pair.
BPEVocabulary train_bpe(const std::vector<std::string>& texts, const BPETrainOptions& options = {});

// Writes vocab.json, merges.txt ("#version: 0.2" header), special_tokens_map.json and
// tokenizer_config.json atomically into `folder` (created if needed).
void save_tokenizer_folder(const BPEVocabulary& vocab, const std::string& folder);

}  // namespace genvis::tokenizers
