// T5 / UMT5 SentencePiece tokenizer, id-exact to transformers' slow T5Tokenizer (4.40), as Wan 2.1
// uses it for its UMT5 text encoder.
//
//   auto tok = genvis::tokenizers::T5Tokenizer::load("Wan2.1-T2V-1.3B-Diffusers/tokenizer");
//   T5Encoding e = tok.encode_padded(genvis::tokenizers::prompt_clean(prompt), 512);
//   // e.input_ids: ids[:511] + </s> + <pad>..., e.attention_mask: 1 for ids and </s>, 0 after
//   std::vector<int64_t> ids = tok.encode("a photo of a cat");   // no </s>, untruncated
//
// A diffusers/transformers `tokenizer/` folder: spiece.model, and optionally tokenizer_config.json,
// special_tokens_map.json and added_tokens.json (tokenizer.json, the fast tokenizer, is not read).
// Encoding, as transformers does it:
//   1. The text is split on the added tokens' text (</s>, <pad>, <unk>, <extra_id_N>, ...), the
//      leftmost (then longest) match first; a token marked lstrip/rstrip (the <extra_id_N>) eats
//      the whitespace before/after it.
//   2. Each remaining chunk is encoded by sentencepiece on its own: with legacy=True (the default
//      unless tokenizer_config.json says "legacy": false) every chunk gets the model's dummy
//      prefix "▁". With legacy=False the model loses its dummy prefix, "▁" in the text becomes a
//      space, the text gets one leading "▁" (add_prefix_space), and a chunk that starts with a
//      space is encoded after the unknown token's text, whose pieces are then dropped; a leading
//      lone "▁" before an added token is dropped.
//   3. Added tokens keep their ids: <extra_id_i> = spm_size - 1 + extra_ids - i unless
//      tokenizer_config.json's added_tokens_decoder (or added_tokens.json) says otherwise.
// encode_padded then truncates to max_length - 1 ids, appends </s> (not when the ids already end
// with it), and pads with <pad> (id 0 in T5's models).
#pragma once
#include "tokenizers/prompt_clean.h"  // prompt_clean: Wan's cleaning before tokenizing
#include "tokenizers/sentencepiece_model.h"

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace genvis::tokenizers {

struct T5Encoding {
  std::vector<int64_t> input_ids;       // exactly max_length ids
  std::vector<int64_t> attention_mask;  // 1 for the ids and </s>, 0 for the padding
};

struct T5TokenizerOptions {
  std::optional<bool> legacy;  // overrides tokenizer_config.json's "legacy" (default true)
};

// An added token (transformers' AddedToken) of the tokenizer.
struct T5AddedToken {
  std::string content;
  int64_t id = 0;
  bool lstrip = false, rstrip = false, single_word = false, special = true;
};

class T5Tokenizer {
public:
  // LoadError naming the file for a missing or corrupt spiece.model and for invalid JSON or
  // wrongly-typed keys in the other files (every problem of a file at once).
  static T5Tokenizer load(const std::string& folder, const T5TokenizerOptions& options = {});

  // tokenizer.tokenize(text): pieces and added tokens, no </s>.
  std::vector<std::string> tokenize(std::string_view text) const;
  // tokenizer(text, add_special_tokens=False).input_ids: no </s>, untruncated.
  std::vector<int64_t> encode(std::string_view text) const;
  // tokenizer(text, padding="max_length", max_length=max_length, truncation=True).
  T5Encoding encode_padded(std::string_view text, int64_t max_length) const;
  // convert_tokens_to_ids for one token: an added token's id, else the piece's (unk if none).
  int64_t token_to_id(std::string_view token) const;

  int64_t pad_id() const { return pad_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t unk_id() const { return unk_id_; }
  bool legacy() const { return legacy_; }
  // len(tokenizer): the sentencepiece pieces plus the added tokens that are not pieces.
  int64_t size() const { return size_; }
  // tokenizer_config.json's model_max_length, when it is a usable length.
  std::optional<int64_t> model_max_length() const { return model_max_length_; }
  const std::vector<T5AddedToken>& added_tokens() const { return added_; }
  const SentencePieceModel& sentencepiece() const { return sp_; }

private:
  T5Tokenizer(SentencePieceModel sp) : sp_(std::move(sp)) {}
  // (piece, id) of one chunk of text that holds no added token.
  std::vector<SentencePiece> tokenize_chunk(const std::string& chunk) const;
  std::vector<SentencePiece> tokenize_with_ids(std::string_view text) const;

  SentencePieceModel sp_;
  bool legacy_ = true, add_prefix_space_ = true;
  std::vector<T5AddedToken> added_;                      // by id
  std::unordered_map<std::string, size_t> added_index_;  // content -> index in added_
  std::set<std::string> special_strings_;                 // all_special_tokens: eos, unk, pad, additional
  std::array<bool, 256> added_first_bytes_{};             // bytes an added token starts with
  std::string unk_token_ = "<unk>";
  size_t unk_token_length_ = 0;  // pieces of unk_token_ (legacy=False only)
  int64_t pad_id_ = 0, eos_id_ = 1, unk_id_ = 2, size_ = 0;
  std::optional<int64_t> model_max_length_;
};

}  // namespace genvis::tokenizers
