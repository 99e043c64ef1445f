#include "tokenizers/t5_tokenizer.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "core/text.h"
#include "tokenizers/unicode_text.h"

#include <algorithm>
#include <map>
#include <set>

namespace genvis::tokenizers {
namespace {

using json = nlohmann::json;

constexpr std::string_view kSpieceUnderline = "\xe2\x96\x81";  // U+2581 "▁"
constexpr size_t kMaxJsonBytes = size_t{64} << 20;

// A special or added token as the files describe it: a string, or an AddedToken object.
struct TokenSpec {
  std::string content;
  bool lstrip = false, rstrip = false, single_word = false, special = true;
};

// A token given as a string or as {"content": ..., "lstrip": ..., ...}; nullopt (and a problem)
// for anything else.
std::optional<TokenSpec> read_token(const json& v, const std::string& where, config::Problems& problems) {
  TokenSpec t;
  if (v.is_string()) {
    t.content = v.get<std::string>();
    return t;
  }
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    t.content = v["content"].get<std::string>();
    config::read(v, where, "lstrip", t.lstrip, problems);
    config::read(v, where, "rstrip", t.rstrip, problems);
    config::read(v, where, "single_word", t.single_word, problems);
    config::read(v, where, "special", t.special, problems);
    return t;
  }
  std::string shown = v.dump();
  if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
  problems.push_back(where + " must be a token string or an object with a \"content\" string (got " + shown + ")");
  return std::nullopt;
}

// The special-token settings of tokenizer_config.json (or, without added_tokens_decoder there,
// special_tokens_map.json on top of it), as transformers' from_pretrained assembles them.
struct SpecialTokens {
  TokenSpec eos{"</s>"}, unk{"<unk>"}, pad{"<pad>"};
  std::optional<std::vector<TokenSpec>> additional;
};

// The file's path names the problems (throw_problems).
void read_specials(const json& j, SpecialTokens& s, config::Problems& problems, bool merge_additional) {
  const auto one = [&](const char* key, TokenSpec& out) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (auto t = read_token(j[key], key, problems)) out = *t;
  };
  one("eos_token", s.eos);
  one("unk_token", s.unk);
  one("pad_token", s.pad);
  if (!j.contains("additional_special_tokens") || j["additional_special_tokens"].is_null()) return;
  const json& list = j["additional_special_tokens"];
  if (!list.is_array()) {
    problems.push_back("additional_special_tokens must be a list");
    return;
  }
  std::vector<TokenSpec> out = merge_additional && s.additional ? *s.additional : std::vector<TokenSpec>{};
  for (size_t i = 0; i < list.size(); ++i)
    if (auto t = read_token(list[i], "additional_special_tokens[" + std::to_string(i) + "]", problems)) {
      const bool seen = std::any_of(out.begin(), out.end(), [&](const TokenSpec& o) { return o.content == t->content; });
      if (!seen) out.push_back(*t);
    }
  s.additional = std::move(out);
}

json read_json_object(const std::string& path) {
  json j = config::read_file(path, kMaxJsonBytes);
  if (!j.is_object()) throw LoadError(path, std::string("expected a JSON object, got ") + j.type_name());
  return j;
}

void throw_problems(const std::string& path, const config::Problems& problems) {
  if (!problems.empty()) throw LoadError(path, "invalid tokenizer settings: " + config::describe(problems));
}


std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

// Python's str.lstrip() / str.rstrip() (Unicode whitespace).
std::string py_lstrip(const std::string& s) {
  const unicode::U32 u = unicode::utf8_to_u32(s);
  size_t b = 0;
  while (b < u.size() && unicode::py_isspace(u[b])) ++b;
  return unicode::u32_to_utf8(u.substr(b));
}

std::string py_rstrip(const std::string& s) {
  const unicode::U32 u = unicode::utf8_to_u32(s);
  size_t e = u.size();
  while (e > 0 && unicode::py_isspace(u[e - 1])) --e;
  return unicode::u32_to_utf8(u.substr(0, e));
}

}  // namespace

T5Tokenizer T5Tokenizer::load(const std::string& folder, const T5TokenizerOptions& options) {
  if (!is_directory(folder))
    throw LoadError(folder, "not a tokenizer folder (expected a directory with spiece.model and tokenizer_config.json)");
  const std::string spiece = folder + "/spiece.model";
  const std::string config_path = folder + "/tokenizer_config.json";
  const std::string map_path = folder + "/special_tokens_map.json";
  const std::string added_path = folder + "/added_tokens.json";
  if (!file_exists(spiece))
    throw LoadError(spiece, "tokenizer folder has no spiece.model (a T5/UMT5 SentencePiece model)");

  // 1. tokenizer_config.json: legacy, add_prefix_space, extra_ids, the special tokens.
  const json config = file_exists(config_path) ? read_json_object(config_path) : json::object();
  config::Problems problems;
  std::optional<bool> legacy;
  bool add_prefix_space = true;
  int64_t extra_ids = 100;
  std::string tokenizer_class;
  config::read(config, "", "legacy", legacy, problems);
  config::read(config, "", "add_prefix_space", add_prefix_space, problems);
  config::read(config, "", "extra_ids", extra_ids, problems);
  config::read(config, "", "tokenizer_class", tokenizer_class, problems);
  if (extra_ids < 0) problems.push_back("extra_ids must not be negative (got " + std::to_string(extra_ids) + ")");
  if (!tokenizer_class.empty() && tokenizer_class.find("T5") == std::string::npos)
    problems.push_back("tokenizer_class \"" + tokenizer_class + "\" is not a T5 tokenizer");
  std::optional<int64_t> model_max_length;
  if (config.contains("model_max_length") && config["model_max_length"].is_number()) {
    const double v = config["model_max_length"].get<double>();
    if (v >= 1 && v <= double(int64_t{1} << 31)) model_max_length = static_cast<int64_t>(v);
  }
  SpecialTokens specials;
  read_specials(config, specials, problems, false);
  // added_tokens_decoder: {"id": AddedToken} (transformers >= 4.34 writes it).
  std::map<int64_t, TokenSpec> decoder_from_files;
  const bool has_decoder = config.contains("added_tokens_decoder") && !config["added_tokens_decoder"].is_null();
  if (has_decoder) {
    const json& d = config["added_tokens_decoder"];
    if (!d.is_object()) problems.push_back("added_tokens_decoder must be an object {\"id\": token}");
    else
      for (const auto& [key, value] : d.items()) {
        int64_t id = -1;
        try {
          size_t used = 0;
          id = std::stoll(key, &used);
          if (used != key.size()) id = -1;
        } catch (const std::exception&) {
        }
        if (id < 0) {
          problems.push_back("added_tokens_decoder: key \"" + key + "\" is not a token id");
          continue;
        }
        if (auto t = read_token(value, "added_tokens_decoder." + key, problems)) decoder_from_files[id] = *t;
      }
  }
  throw_problems(config_path, problems);

  // 2. Without added_tokens_decoder, transformers' older files: special_tokens_map.json
  //    overrides the special tokens and added_tokens.json gives {token: id} (no stripping).
  if (!has_decoder) {
    if (file_exists(map_path)) {
      read_specials(read_json_object(map_path), specials, problems, true);
      throw_problems(map_path, problems);
    }
    if (file_exists(added_path)) {
      const json added = read_json_object(added_path);
      std::set<std::string> special_strings = {specials.eos.content, specials.unk.content, specials.pad.content};
      if (specials.additional)
        for (const auto& t : *specials.additional) special_strings.insert(t.content);
      for (const auto& [token, id] : added.items()) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0) {
          problems.push_back("\"" + token + "\" has no token id");
          continue;
        }
        decoder_from_files[id.get<int64_t>()] = TokenSpec{token, false, false, false, special_strings.count(token) > 0};
      }
      throw_problems(added_path, problems);
    }
  }

  // 3. The model (legacy=False: without its dummy prefix, as transformers' get_spm_processor).
  T5Tokenizer tok(SentencePieceModel::load(spiece, {.disable_dummy_prefix = !options.legacy.value_or(legacy.value_or(true))}));
  tok.legacy_ = options.legacy.value_or(legacy.value_or(true));
  tok.add_prefix_space_ = add_prefix_space;
  tok.model_max_length_ = model_max_length;
  const int64_t spm_size = tok.sp_.size();

  // 4. T5Tokenizer.__init__: the sentinels <extra_id_i> = spm_size - 1 + extra_ids - i (lstrip and
  //    rstrip), then the files' added tokens over them.
  std::vector<TokenSpec> additional;
  size_t extra_tokens = 0;
  if (specials.additional) {
    additional = *specials.additional;
    for (const auto& t : additional) extra_tokens += t.content.find("<extra_id_") != std::string::npos ? 1 : 0;
    if (extra_tokens == 0) {
      for (int64_t i = 0; i < extra_ids; ++i) additional.push_back({"<extra_id_" + std::to_string(i) + ">"});
    } else if (extra_ids > 0 && static_cast<int64_t>(extra_tokens) != extra_ids) {
      throw LoadError(config_path, "extra_ids is " + std::to_string(extra_ids) + " but additional_special_tokens holds " +
                                       std::to_string(extra_tokens) + " <extra_id_N> tokens");
    }
  } else {
    for (int64_t i = 0; i < extra_ids; ++i) additional.push_back({"<extra_id_" + std::to_string(i) + ">"});
    extra_tokens = static_cast<size_t>(extra_ids);
  }
  std::map<int64_t, TokenSpec> decoder;
  for (size_t i = 0; i < extra_tokens; ++i)
    decoder[spm_size - 1 + extra_ids - static_cast<int64_t>(i)] =
        TokenSpec{"<extra_id_" + std::to_string(i) + ">", /*lstrip=*/true, /*rstrip=*/true, false, true};
  for (const auto& [id, t] : decoder_from_files) decoder[id] = t;
  std::map<std::string, int64_t> encoder;
  for (const auto& [id, t] : decoder) encoder[t.content] = id;

  // 5. Special tokens that are not added tokens yet become ones: a piece keeps its id, other text
  //    gets the next id after the vocabulary (PreTrainedTokenizer._add_tokens).
  const auto not_a_piece = [&](const std::string& s) { return !tok.sp_.has_piece(s); };
  int64_t vocab_len = spm_size;  // len(get_vocab()): pieces plus added tokens that are no piece
  for (const auto& [content, id] : encoder) vocab_len += not_a_piece(content) ? 1 : 0;
  const int64_t next_id = vocab_len;
  int64_t appended = 0;
  std::vector<TokenSpec> wanted = {specials.eos, specials.unk, specials.pad};
  wanted.insert(wanted.end(), additional.begin(), additional.end());
  for (const auto& t : wanted) {
    if (t.content.empty() || encoder.count(t.content)) continue;
    int64_t id = 0;
    if (not_a_piece(t.content)) {
      id = next_id + appended++;
      ++vocab_len;
    } else {
      id = tok.sp_.piece_to_id(t.content);
    }
    decoder[id] = t;
    encoder[t.content] = id;
  }
  for (const auto& [id, t] : decoder) {
    if (encoder.at(t.content) != id) continue;  // a later id took over this text
    tok.added_index_[t.content] = tok.added_.size();
    if (!t.content.empty()) tok.added_first_bytes_[static_cast<unsigned char>(t.content[0])] = true;
    tok.added_.push_back({t.content, id, t.lstrip, t.rstrip, t.single_word, t.special});
  }
  tok.size_ = vocab_len;
  tok.eos_id_ = encoder.at(specials.eos.content);
  tok.unk_id_ = encoder.at(specials.unk.content);
  tok.pad_id_ = encoder.at(specials.pad.content);
  tok.unk_token_ = specials.unk.content;
  tok.special_strings_ = {specials.eos.content, specials.unk.content, specials.pad.content};
  for (const auto& t : additional) tok.special_strings_.insert(t.content);
  if (!tok.legacy_) tok.unk_token_length_ = tok.sp_.encode(tok.unk_token_).size();
  return tok;
}

std::vector<SentencePiece> T5Tokenizer::tokenize_chunk(const std::string& chunk) const {
  // legacy=False: a chunk that starts with a space is encoded after the unknown token's text
  // (the model has no dummy prefix, so "▁" would otherwise be lost), whose pieces are dropped.
  if (legacy_ || !(starts_with(chunk, kSpieceUnderline) || starts_with(chunk, " "))) return sp_.encode(chunk);
  std::vector<SentencePiece> pieces = sp_.encode(unk_token_ + chunk);
  if (pieces.size() >= unk_token_length_)
    pieces.erase(pieces.begin(), pieces.begin() + static_cast<std::ptrdiff_t>(unk_token_length_));
  return pieces;
}

std::vector<SentencePiece> T5Tokenizer::tokenize_with_ids(std::string_view input) const {
  std::string text(input);
  if (!legacy_ && !text.empty()) {
    text = replace_all(std::move(text), kSpieceUnderline, " ");
    if (add_prefix_space_) text = std::string(kSpieceUnderline) + text;
  }
  // 1. Split on the added tokens' text: at each position the longest token that matches there.
  std::vector<std::string> chunks;
  size_t start = 0;
  for (size_t p = 0; p < text.size();) {
    size_t best = 0;
    if (added_first_bytes_[static_cast<unsigned char>(text[p])])
      for (const auto& t : added_)
        if (t.content.size() > best && text.compare(p, t.content.size(), t.content) == 0) best = t.content.size();
    if (best == 0) {
      ++p;
      continue;
    }
    if (p > start) chunks.push_back(text.substr(start, p - start));
    chunks.push_back(text.substr(p, best));
    p += best;
    start = p;
  }
  if (start < text.size()) chunks.push_back(text.substr(start));

  // 2. Whitespace eaten by the tokens' lstrip/rstrip, words glued by single_word (transformers'
  //    PreTrainedTokenizer.tokenize, including its use of the neighbours' values from before).
  for (size_t i = 0; i < chunks.size(); ++i) {
    const auto it = added_index_.find(chunks[i]);
    if (it == added_index_.end()) continue;
    const T5AddedToken& t = added_[it->second];
    const std::string left = i > 0 ? chunks[i - 1] : std::string();
    const std::string right = i + 1 < chunks.size() ? chunks[i + 1] : std::string();
    if (t.rstrip && !right.empty()) chunks[i + 1] = py_lstrip(right);
    if (t.lstrip && !left.empty()) chunks[i - 1] = py_rstrip(left);
    if (t.single_word && !left.empty() && left.back() != ' ') {
      chunks[i - 1] += chunks[i];
      chunks[i].clear();
    } else if (t.single_word && !right.empty() && right.front() != ' ') {
      chunks[i] += right;
      chunks[i + 1].clear();
    }
  }

  // 3. Added tokens as they are, the rest through sentencepiece.
  std::vector<SentencePiece> out;
  for (const auto& chunk : chunks) {
    if (chunk.empty()) continue;
    if (const auto it = added_index_.find(chunk); it != added_index_.end()) {
      out.push_back({chunk, added_[it->second].id});
      continue;
    }
    for (auto& p : tokenize_chunk(chunk)) out.push_back(std::move(p));
  }
  if (!legacy_ && out.size() > 1 && out[0].piece == kSpieceUnderline && special_strings_.count(out[1].piece))
    out.erase(out.begin());
  // convert_tokens_to_ids: an added token's id first, else the piece's.
  for (auto& p : out) p.id = token_to_id(p.piece);
  return out;
}

std::vector<std::string> T5Tokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (auto& p : tokenize_with_ids(text)) out.push_back(std::move(p.piece));
  return out;
}

std::vector<int64_t> T5Tokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  for (const auto& p : tokenize_with_ids(text)) out.push_back(p.id);
  return out;
}

T5Encoding T5Tokenizer::encode_padded(std::string_view text, int64_t max_length) const {
  if (max_length < 1) throw UsageError("T5 tokenizer: max_length must be at least 1 (got " + std::to_string(max_length) + ")");
  T5Encoding e;
  e.input_ids = encode(text);
  // Truncation leaves room for </s>; </s> is not repeated when the ids already end with it.
  if (static_cast<int64_t>(e.input_ids.size()) > max_length - 1) e.input_ids.resize(static_cast<size_t>(max_length - 1));
  if (e.input_ids.empty() || e.input_ids.back() != eos_id_) e.input_ids.push_back(eos_id_);
  e.attention_mask.assign(e.input_ids.size(), 1);
  e.input_ids.resize(static_cast<size_t>(max_length), pad_id_);
  e.attention_mask.resize(static_cast<size_t>(max_length), 0);
  return e;
}

int64_t T5Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = added_index_.find(std::string(token)); it != added_index_.end()) return added_[it->second].id;
  return sp_.piece_to_id(token);
}

}  // namespace genvis::tokenizers
