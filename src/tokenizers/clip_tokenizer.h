// OpenAI CLIP byte-level BPE tokenizer, id-exact to clip/simple_tokenizer.py (ftfy 6.3, regex).
//
//   auto tok = genvis::tokenizers::CLIPTokenizer::load("bpe_simple_vocab_16e6.txt.gz");  // or tokenizer/ dir
//   std::vector<int64_t> ids = tok.encode("a photo of a cat");           // {320, 1125, 539, 320, 2368}
//   std::vector<int64_t> row = tok.encode_padded("a photo of a cat", tok.eos_id());  // 77 ids
//
// Pipeline: text -> ftfy.fix_text -> html.unescape x2 -> strip -> collapse \s+ -> lower() ->
// regex split -> byte-level BPE. Input is UTF-8; invalid bytes become U+FFFD.
#pragma once
#include "tokenizers/prompt_clean.h"  // ftfy_fix_text, html_unescape, prompt_clean

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace genvis::tokenizers {

class CLIPTokenizer {
public:
  static constexpr int kMaxLength = 77;
  static constexpr int64_t kBosId = 49406;  // <|startoftext|> in the OpenAI vocabulary
  static constexpr int64_t kEosId = 49407;  // <|endoftext|>

  // A path ending in a file: OpenAI's gzip vocabulary (bpe_simple_vocab_16e6.txt.gz).
  // A directory: a diffusers/transformers tokenizer folder with vocab.json and merges.txt.
  // Throws LoadError naming the file for anything that is not a CLIP BPE vocabulary.
  static CLIPTokenizer load(const std::string& path);
  static CLIPTokenizer from_openai_vocab(const std::string& gz_path);
  static CLIPTokenizer from_folder(const std::string& dir);

  // BPE ids without BOS/EOS, untruncated.
  std::vector<int64_t> encode(std::string_view text) const;
  // [BOS] + ids[:max_len-2] + [EOS] + pad_id... (exactly max_len ids).
  std::vector<int64_t> encode_padded(std::string_view text, int64_t pad_id, int max_len = kMaxLength) const;
  // Ids back to text ("</w>" becomes a space; unknown ids are skipped).
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  // The id of ",</w>" (A1111 breaks long prompts after commas).
  int64_t comma_id() const { return comma_id_; }
  int64_t vocab_size() const { return static_cast<int64_t>(decoder_.size()); }
  std::optional<int64_t> token_to_id(const std::string& token) const;
  std::optional<std::string> id_to_token(int64_t id) const;

  CLIPTokenizer(CLIPTokenizer&&) noexcept;
  CLIPTokenizer& operator=(CLIPTokenizer&&) noexcept;
  ~CLIPTokenizer();

private:
  CLIPTokenizer() = default;
  void finish(const std::string& source);
  // Space-separated BPE symbols of one pre-token (already mapped through bytes_to_unicode).
  std::vector<std::string> bpe(const std::string& token) const;

  std::unordered_map<std::string, int64_t> encoder_;     // symbol (byte-unicode UTF-8) -> id
  std::unordered_map<int64_t, std::string> decoder_;
  std::unordered_map<std::string, int> bpe_ranks_;       // "first second" -> rank
  int64_t bos_id_ = kBosId, eos_id_ = kEosId, comma_id_ = -1;
  mutable std::unique_ptr<std::mutex> cache_mutex_ = std::make_unique<std::mutex>();
  mutable std::unordered_map<std::string, std::vector<std::string>> cache_;
};

// The cleaning half of the pipeline: lower(prompt_clean(text)) (ftfy, html.unescape x2,
// whitespace), UTF-8 in and out; equals the fixture's `cleaned_text`.
std::string clip_clean_text(std::string_view text);
// The regex pre-tokenizer over cleaned text.
std::vector<std::string> clip_pre_tokenize(std::string_view cleaned);

}  // namespace genvis::tokenizers
