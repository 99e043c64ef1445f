#include "tokenizers/clip_tokenizer.h"

#include "core/error.h"
#include "core/file.h"
#include "tokenizers/unicode_text.h"

#include <nlohmann/json.hpp>
#include <unicode/uchar.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

namespace genvis::tokenizers {
namespace {

using namespace unicode;

// simple_tokenizer's basic_clean + whitespace_clean, then lower().
U32 clean(std::string_view text) { return py_lower(prompt_clean_u32(text)); }

// ---------------------------------------------------------------- pre-tokenizer

bool fold_equal(char32_t a, char32_t b) {
  return a == b || u_foldCase(static_cast<UChar32>(a), U_FOLD_CASE_DEFAULT) ==
                       u_foldCase(static_cast<UChar32>(b), U_FOLD_CASE_DEFAULT);
}

bool matches_at(const U32& s, size_t i, std::u32string_view lit) {
  if (i + lit.size() > s.size()) return false;
  for (size_t k = 0; k < lit.size(); ++k)
    if (!fold_equal(s[i + k], lit[k])) return false;
  return true;
}

// <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ (IGNORECASE)
std::vector<U32> pre_tokenize(const U32& s) {
  static constexpr std::u32string_view kLiterals[] = {U"<|startoftext|>", U"<|endoftext|>", U"'s", U"'t", U"'re",
                                                      U"'ve",             U"'m",            U"'ll", U"'d"};
  std::vector<U32> out;
  size_t i = 0;
  while (i < s.size()) {
    bool matched = false;
    for (auto lit : kLiterals) {
      if (matches_at(s, i, lit)) {
        out.push_back(s.substr(i, lit.size()));
        i += lit.size();
        matched = true;
        break;
      }
    }
    if (matched) continue;
    const char32_t c = s[i];
    if (is_letter(c)) {
      size_t k = i;
      while (k < s.size() && is_letter(s[k])) ++k;
      out.push_back(s.substr(i, k - i));
      i = k;
    } else if (is_number(c)) {
      out.push_back(s.substr(i, 1));
      ++i;
    } else if (!py_isspace(c)) {
      size_t k = i;
      while (k < s.size() && !py_isspace(s[k]) && !is_letter(s[k]) && !is_number(s[k])) ++k;
      out.push_back(s.substr(i, k - i));
      i = k;
    } else {
      ++i;
    }
  }
  return out;
}

// ---------------------------------------------------------------- byte-level BPE tables

// GPT-2 bytes_to_unicode, in the dict's insertion order (printable bytes first).
std::vector<std::pair<uint8_t, char32_t>> bytes_to_unicode() {
  std::vector<std::pair<uint8_t, char32_t>> out;
  std::array<bool, 256> printable{};
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  for (int b = 0; b < 256; ++b)
    if (printable[b]) out.emplace_back(static_cast<uint8_t>(b), static_cast<char32_t>(b));
  int n = 0;
  for (int b = 0; b < 256; ++b)
    if (!printable[b]) out.emplace_back(static_cast<uint8_t>(b), static_cast<char32_t>(256 + n++));
  return out;
}

struct ByteTables {
  std::array<std::string, 256> encoder;               // byte -> UTF-8 of its stand-in character
  std::unordered_map<char32_t, uint8_t> decoder;
  std::vector<std::string> ordered;                   // stand-ins in vocabulary order
  ByteTables() {
    for (auto [b, cp] : bytes_to_unicode()) {
      std::string u;
      append_utf8(u, cp);
      encoder[b] = u;
      decoder[cp] = b;
      ordered.push_back(u);
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}

constexpr size_t kNumMerges = 49152 - 256 - 2;  // lines[1 : 49152-256-2+1]
const std::string kEndOfWord = "</w>";
const std::string kStartOfText = "<|startoftext|>";
const std::string kEndOfText = "<|endoftext|>";

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (true) {
    const size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return lines;
}

std::string gunzip(const std::string& path) {
  const std::vector<uint8_t> data = read_file(path, size_t(256) << 20);
  if (data.size() < 2 || data[0] != 0x1F || data[1] != 0x8B) throw LoadError(path, "not a gzip file (expected the OpenAI bpe_simple_vocab_16e6.txt.gz)");
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw LoadError(path, "zlib initialisation failed");
  zs.next_in = const_cast<Bytef*>(data.data());
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  std::array<char, 1 << 16> buf;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      throw LoadError(path, std::string("corrupt gzip data: ") + (zs.msg ? zs.msg : "inflate failed"));
    }
    out.append(buf.data(), buf.size() - zs.avail_out);
    if (out.size() > (size_t(64) << 20)) {
      inflateEnd(&zs);
      throw LoadError(path, "decompressed vocabulary larger than 64 MiB");
    }
    if (rc != Z_STREAM_END && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      throw LoadError(path, "truncated gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

// merges.txt / the vocab file: lines[1 : 1 + kNumMerges], each "first second". OpenAI's file
// must hold all of them; a tokenizer folder may hold fewer (a vocabulary trained by genvis).
std::vector<std::pair<std::string, std::string>> parse_merges(const std::string& path, const std::string& text,
                                                              bool strip) {
  const bool require_all = !strip;
  std::string body = text;
  if (strip) {  // HF reads merges with .strip() before splitting
    const size_t b = body.find_first_not_of(" \t\r\n");
    const size_t e = body.find_last_not_of(" \t\r\n");
    body = b == std::string::npos ? std::string() : body.substr(b, e - b + 1);
  }
  std::vector<std::string> lines = split_lines(body);
  if (!require_all && lines.size() < kNumMerges + 1) lines.resize(kNumMerges + 1, std::string());
  if (require_all && lines.size() < kNumMerges + 1)
    throw LoadError(path, "not a CLIP BPE vocabulary: " + std::to_string(lines.size()) + " lines, expected at least " +
                              std::to_string(kNumMerges + 1) + " (a header and " + std::to_string(kNumMerges) +
                              " merges)");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(kNumMerges);
  for (size_t i = 1; i <= kNumMerges; ++i) {
    const std::string& line = lines[i];
    if (!require_all && line.empty()) {
      // A shorter merges list ends here; nothing but blank lines may follow.
      for (size_t j = i; j < lines.size(); ++j)
        if (!lines[j].empty()) throw LoadError(path, "blank line " + std::to_string(i + 1) + " inside the merges");
      break;
    }
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
      throw LoadError(path, "not a CLIP BPE vocabulary: line " + std::to_string(i + 1) + " is not a merge \"a b\": '" +
                                line.substr(0, 80) + "'");
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  return merges;
}

}  // namespace

// ---------------------------------------------------------------- CLIPTokenizer

CLIPTokenizer::CLIPTokenizer(CLIPTokenizer&&) noexcept = default;
CLIPTokenizer& CLIPTokenizer::operator=(CLIPTokenizer&&) noexcept = default;
CLIPTokenizer::~CLIPTokenizer() = default;

CLIPTokenizer CLIPTokenizer::load(const std::string& path) {
  if (is_directory(path)) return from_folder(path);
  if (!file_exists(path)) throw LoadError(path, "CLIP vocabulary not found");
  return from_openai_vocab(path);
}

CLIPTokenizer CLIPTokenizer::from_openai_vocab(const std::string& gz_path) {
  const auto merges = parse_merges(gz_path, gunzip(gz_path), /*strip=*/false);
  CLIPTokenizer tok;
  std::vector<std::string> vocab = byte_tables().ordered;
  const size_t n = vocab.size();
  for (size_t i = 0; i < n; ++i) vocab.push_back(vocab[i] + kEndOfWord);
  for (const auto& [a, b] : merges) vocab.push_back(a + b);
  vocab.push_back(kStartOfText);
  vocab.push_back(kEndOfText);
  // dict(zip(...)): a repeated key keeps its last index.
  for (size_t i = 0; i < vocab.size(); ++i) tok.encoder_[vocab[i]] = static_cast<int64_t>(i);
  for (size_t i = 0; i < merges.size(); ++i) tok.bpe_ranks_[merges[i].first + " " + merges[i].second] = static_cast<int>(i);
  tok.finish(gz_path);
  return tok;
}

CLIPTokenizer CLIPTokenizer::from_folder(const std::string& dir) {
  const std::string vocab_path = dir + "/vocab.json", merges_path = dir + "/merges.txt";
  if (!file_exists(vocab_path)) throw LoadError(vocab_path, "tokenizer folder has no vocab.json");
  if (!file_exists(merges_path)) throw LoadError(merges_path, "tokenizer folder has no merges.txt");
  CLIPTokenizer tok;
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_text_file(vocab_path, size_t(64) << 20));
  } catch (const nlohmann::json::exception& e) {
    throw LoadError(vocab_path, std::string("invalid JSON: ") + e.what());
  }
  if (!vocab.is_object() || vocab.empty()) throw LoadError(vocab_path, "expected an object {token: id}");
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer()) throw LoadError(vocab_path, token, "id is not an integer");
    tok.encoder_[token] = id.get<int64_t>();
  }
  const auto merges = parse_merges(merges_path, read_text_file(merges_path, size_t(64) << 20), /*strip=*/true);
  for (size_t i = 0; i < merges.size(); ++i) tok.bpe_ranks_[merges[i].first + " " + merges[i].second] = static_cast<int>(i);
  tok.finish(vocab_path);
  return tok;
}

void CLIPTokenizer::finish(const std::string& source) {
  const auto need = [&](const std::string& token) {
    auto it = encoder_.find(token);
    if (it == encoder_.end()) throw LoadError(source, "not a CLIP BPE vocabulary: no token '" + token + "'");
    return it->second;
  };
  bos_id_ = need(kStartOfText);
  eos_id_ = need(kEndOfText);
  comma_id_ = need(",</w>");
  for (const auto& b : byte_tables().ordered) need(b);
  for (const auto& [token, id] : encoder_) decoder_[id] = token;
  cache_[kStartOfText] = {kStartOfText};
  cache_[kEndOfText] = {kEndOfText};
}

std::optional<int64_t> CLIPTokenizer::token_to_id(const std::string& token) const {
  auto it = encoder_.find(token);
  if (it == encoder_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> CLIPTokenizer::id_to_token(int64_t id) const {
  auto it = decoder_.find(id);
  if (it == decoder_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> CLIPTokenizer::bpe(const std::string& token) const {
  {
    std::lock_guard<std::mutex> lock(*cache_mutex_);
    if (auto it = cache_.find(token); it != cache_.end()) return it->second;
  }
  // Split into characters (UTF-8 sequences); the last one carries "</w>".
  std::vector<std::string> word;
  for (size_t i = 0; i < token.size();) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    word.push_back(token.substr(i, len));
    i += len;
  }
  if (word.empty()) return {};
  word.back() += kEndOfWord;
  while (word.size() > 1) {
    int best = INT_MAX;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = bpe_ranks_.find(word[i] + " " + word[i + 1]);
      if (it != bpe_ranks_.end() && it->second < best) best = it->second, best_i = i;
    }
    if (best == INT_MAX) break;
    const std::string first = word[best_i], second = word[best_i + 1];
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i++]);
      }
    }
    word = std::move(merged);
  }
  std::lock_guard<std::mutex> lock(*cache_mutex_);
  if (cache_.size() > 100000) cache_.clear();
  cache_[token] = word;
  return word;
}

std::vector<int64_t> CLIPTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  const auto& bytes = byte_tables().encoder;
  for (const U32& piece : pre_tokenize(clean(text))) {
    const std::string utf8 = u32_to_utf8(piece);
    std::string mapped;
    if (utf8 == kStartOfText || utf8 == kEndOfText) {
      mapped = utf8;
    } else {
      for (unsigned char b : utf8) mapped += bytes[b];
    }
    for (const std::string& symbol : bpe(mapped)) {
      auto it = encoder_.find(symbol);
      if (it == encoder_.end()) throw RuntimeError("CLIP tokenizer: BPE symbol '" + symbol + "' is not in the vocabulary");
      ids.push_back(it->second);
    }
  }
  return ids;
}

std::vector<int64_t> CLIPTokenizer::encode_padded(std::string_view text, int64_t pad_id, int max_len) const {
  if (max_len < 2) throw UsageError("encode_padded: max_len must be at least 2, got " + std::to_string(max_len));
  const std::vector<int64_t> ids = encode(text);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(max_len));
  out.push_back(bos_id_);
  const size_t keep = std::min(ids.size(), static_cast<size_t>(max_len - 2));
  out.insert(out.end(), ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep));
  out.push_back(eos_id_);
  out.resize(static_cast<size_t>(max_len), pad_id);
  return out;
}

std::string CLIPTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string joined;
  for (int64_t id : ids)
    if (auto it = decoder_.find(id); it != decoder_.end()) joined += it->second;
  const auto& dec = byte_tables().decoder;
  std::string bytes;
  for (char32_t c : utf8_to_u32(joined)) {
    auto it = dec.find(c);
    if (it != dec.end()) bytes.push_back(static_cast<char>(it->second));
  }
  std::string text = u32_to_utf8(utf8_to_u32(bytes));  // errors="replace"
  std::string out;
  for (size_t pos = 0;;) {
    const size_t at = text.find(kEndOfWord, pos);
    out += text.substr(pos, at == std::string::npos ? std::string::npos : at - pos);
    if (at == std::string::npos) break;
    out += ' ';
    pos = at + kEndOfWord.size();
  }
  return out;
}

std::string clip_clean_text(std::string_view text) { return u32_to_utf8(clean(text)); }

std::vector<std::string> clip_pre_tokenize(std::string_view cleaned) {
  std::vector<std::string> out;
  for (const U32& piece : pre_tokenize(utf8_to_u32(cleaned))) out.push_back(u32_to_utf8(piece));
  return out;
}

}  // namespace genvis::tokenizers