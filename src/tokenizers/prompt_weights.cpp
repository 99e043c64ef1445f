#include "tokenizers/prompt_weights.h"

#include "core/error.h"

#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstdlib>

namespace genvis::tokenizers {
namespace {

using U32 = std::u32string;

U32 to_u32(std::string_view s) {
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  U32 out;
  for (int32_t i = 0; i < u.length(); i = u.moveIndex32(i, 1)) out.push_back(static_cast<char32_t>(u.char32At(i)));
  return out;
}

std::string to_utf8(const U32& s) {
  std::string out;
  icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(s.data()), static_cast<int32_t>(s.size()))
      .toUTF8String(out);
  return out;
}

// Python re (str pattern) \s and \w.
bool py_space(char32_t c) {
  if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return true;
  if (c < 0x80) return false;
  if (u_charType(static_cast<UChar32>(c)) == U_SPACE_SEPARATOR) return true;
  const UCharDirection d = u_charDirection(static_cast<UChar32>(c));
  return d == U_WHITE_SPACE_NEUTRAL || d == U_BLOCK_SEPARATOR || d == U_SEGMENT_SEPARATOR;
}
bool py_word(char32_t c) {
  if (c == '_') return true;
  const auto mask = U_GET_GC_MASK(static_cast<UChar32>(c));
  return (mask & (U_GC_L_MASK | U_GC_N_MASK)) != 0 ||
         u_getNumericValue(static_cast<UChar32>(c)) != U_NO_NUMERIC_VALUE;
}
bool py_digit(char32_t c) { return u_charType(static_cast<UChar32>(c)) == U_DECIMAL_DIGIT_NUMBER; }

struct Piece {
  U32 text;
  double weight;
};

// re.split(r"\s*\bBREAK\b\s*", text)
std::vector<U32> split_break(const U32& s) {
  static const U32 kBreak = U"BREAK";
  std::vector<U32> parts;
  size_t pos = 0;
  for (size_t start = 0; start < s.size();) {
    size_t k = start;
    while (k < s.size() && py_space(s[k])) ++k;
    const bool ok = s.compare(k, kBreak.size(), kBreak) == 0 && (k == 0 || !py_word(s[k - 1])) &&
                    (k + kBreak.size() == s.size() || !py_word(s[k + kBreak.size()]));
    if (!ok) {
      ++start;
      continue;
    }
    size_t end = k + kBreak.size();
    while (end < s.size() && py_space(s[end])) ++end;
    parts.push_back(s.substr(pos, start - pos));
    pos = start = end;
  }
  parts.push_back(s.substr(pos));
  return parts;
}

// Python float() of a "[+-]?[.\d]+" match.
double parse_weight(const U32& w) {
  std::string ascii;
  int dots = 0, digits = 0;
  for (char32_t c : w) {
    if (c == '+' || c == '-') ascii.push_back(static_cast<char>(c));
    else if (c == '.') ascii.push_back('.'), ++dots;
    else ascii.push_back(static_cast<char>('0' + u_charDigitValue(static_cast<UChar32>(c)))), ++digits;
  }
  if (dots > 1 || digits == 0)
    throw UsageError("prompt emphasis: could not convert '" + to_utf8(w) + "' to a weight");
  return std::strtod(ascii.c_str(), nullptr);
}

}  // namespace

std::vector<std::pair<std::string, float>> parse_prompt_attention(std::string_view prompt) {
  const U32 s = to_u32(prompt);
  std::vector<Piece> res;
  std::vector<size_t> round, square;
  const auto multiply_range = [&](size_t start, double m) {
    for (size_t p = start; p < res.size(); ++p) res[p].weight *= m;
  };
  const auto add_text = [&](const U32& text) {
    const auto parts = split_break(text);
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) res.push_back({U"BREAK", -1.0});
      res.push_back({parts[i], 1.0});
    }
  };
  const auto is_special = [](char32_t c) { return c == '\\' || c == '(' || c == ')' || c == '[' || c == ']' || c == ':'; };

  size_t i = 0;
  while (i < s.size()) {
    const char32_t c = s[i];
    if (c == '\\') {
      const bool escape = i + 1 < s.size() && (s[i + 1] == '(' || s[i + 1] == ')' || s[i + 1] == '[' ||
                                               s[i + 1] == ']' || s[i + 1] == '\\');
      res.push_back({escape ? U32(1, s[i + 1]) : U32(), 1.0});  // a lone '\' is dropped
      i += escape ? 2 : 1;
    } else if (c == '(') {
      round.push_back(res.size());
      ++i;
    } else if (c == '[') {
      square.push_back(res.size());
      ++i;
    } else if (c == ':') {
      // :\s*([+-]?[.\d]+)\s*\)
      size_t k = i + 1;
      while (k < s.size() && py_space(s[k])) ++k;
      const size_t w0 = k;
      if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
      const size_t d0 = k;
      while (k < s.size() && (s[k] == '.' || py_digit(s[k]))) ++k;
      const size_t w1 = k;
      while (k < s.size() && py_space(s[k])) ++k;
      if (w1 > d0 && k < s.size() && s[k] == ')') {
        if (!round.empty()) {
          const double weight = parse_weight(s.substr(w0, w1 - w0));
          multiply_range(round.back(), weight);
          round.pop_back();
        } else {
          add_text(s.substr(i, k + 1 - i));
        }
        i = k + 1;
      } else {
        add_text(U":");
        ++i;
      }
    } else if (c == ')' && !round.empty()) {
      multiply_range(round.back(), 1.1);
      round.pop_back();
      ++i;
    } else if (c == ']' && !square.empty()) {
      multiply_range(square.back(), 1 / 1.1);
      square.pop_back();
      ++i;
    } else if (c == ')' || c == ']') {
      add_text(U32(1, c));
      ++i;
    } else {
      size_t k = i;
      while (k < s.size() && !is_special(s[k])) ++k;
      add_text(s.substr(i, k - i));
      i = k;
    }
  }
  for (size_t pos : round) multiply_range(pos, 1.1);
  for (size_t pos : square) multiply_range(pos, 1 / 1.1);
  if (res.empty()) res.push_back({U32(), 1.0});

  std::vector<Piece> merged;
  for (auto& piece : res) {
    if (!merged.empty() && merged.back().weight == piece.weight) merged.back().text += piece.text;
    else merged.push_back(std::move(piece));
  }
  std::vector<std::pair<std::string, float>> out;
  out.reserve(merged.size());
  for (const auto& piece : merged) out.emplace_back(to_utf8(piece.text), static_cast<float>(piece.weight));
  return out;
}

WeightedTokens tokenize_weighted(const CLIPTokenizer& tokenizer, std::string_view prompt, const ChunkOptions& options) {
  constexpr size_t kChunk = CLIPTokenizer::kMaxLength - 2;  // 75 prompt tokens per chunk
  const auto parsed = options.emphasis ? parse_prompt_attention(prompt)
                                       : std::vector<std::pair<std::string, float>>{{std::string(prompt), 1.0f}};
  const int64_t bos = tokenizer.bos_id(), eos = tokenizer.eos_id(), comma = tokenizer.comma_id();

  WeightedTokens out;
  std::vector<int64_t> tokens;
  std::vector<float> mults;
  int64_t last_comma = -1;

  const auto next_chunk = [&](bool is_last) {
    out.token_count += is_last ? static_cast<int64_t>(tokens.size()) : static_cast<int64_t>(kChunk);
    if (tokens.size() < kChunk) {
      mults.resize(kChunk, 1.0f);
      tokens.resize(kChunk, eos);
    }
    tokens.insert(tokens.begin(), bos);
    tokens.push_back(eos);
    mults.insert(mults.begin(), 1.0f);
    mults.push_back(1.0f);
    last_comma = -1;
    out.chunks.push_back(std::move(tokens));
    out.weights.push_back(std::move(mults));
    tokens.clear();
    mults.clear();
  };

  for (const auto& [text, weight] : parsed) {
    if (text == "BREAK" && weight == -1.0f) {
      next_chunk(false);
      continue;
    }
    // BPE ids of the text; whole-text embedding names are cut out first and stand as -1 - k
    // (never a BPE id) for the k-th of them.
    std::vector<int64_t> piece;
    std::vector<const EmbeddingTokens::Entry*> cut;
    if (options.embeddings) {
      for (const auto& part : options.embeddings->split_text(text)) {
        if (part.entry) {
          piece.push_back(-1 - static_cast<int64_t>(cut.size()));
          cut.push_back(part.entry);
        } else {
          const auto ids = tokenizer.encode(part.text);
          piece.insert(piece.end(), ids.begin(), ids.end());
        }
      }
    } else {
      piece = tokenizer.encode(text);
    }
    for (size_t pos = 0; pos < piece.size(); ++pos) {
      if (options.embeddings) {
        std::optional<EmbeddingTokens::Match> m;
        if (piece[pos] < 0) m = EmbeddingTokens::Match{cut[static_cast<size_t>(-1 - piece[pos])], 1};
        else m = options.embeddings->match(piece, pos);
        if (m) {
          const auto ids = m->entry->ids();
          if (tokens.size() + ids.size() > kChunk) next_chunk(false);
          tokens.insert(tokens.end(), ids.begin(), ids.end());
          mults.insert(mults.end(), ids.size(), weight);
          pos += m->length - 1;
          continue;
        }
      }
      const int64_t token = piece[pos];
      if (token == comma) {
        last_comma = static_cast<int64_t>(tokens.size());
      } else if (options.comma_padding_backtrack != 0 && tokens.size() == kChunk && last_comma != -1 &&
                 static_cast<int64_t>(tokens.size()) - last_comma <= options.comma_padding_backtrack) {
        // Move the words after the last comma into the next chunk.
        const auto at = static_cast<std::ptrdiff_t>(last_comma + 1);
        std::vector<int64_t> reloc_tokens(tokens.begin() + at, tokens.end());
        std::vector<float> reloc_mults(mults.begin() + at, mults.end());
        tokens.resize(static_cast<size_t>(at));
        mults.resize(static_cast<size_t>(at));
        next_chunk(false);
        tokens = std::move(reloc_tokens);
        mults = std::move(reloc_mults);
      }
      if (tokens.size() == kChunk) next_chunk(false);
      tokens.push_back(token);
      mults.push_back(weight);
    }
  }
  if (!tokens.empty() || out.chunks.empty()) next_chunk(true);

  // A1111 process_tokens: everything after the first EOS becomes the pad id.
  if (options.pad_id != eos) {
    for (auto& chunk : out.chunks) {
      auto it = std::find(chunk.begin(), chunk.end(), eos);
      if (it != chunk.end()) std::fill(it + 1, chunk.end(), options.pad_id);
    }
  }
  return out;
}

at::Tensor apply_emphasis(const at::Tensor& embeddings, const at::Tensor& weights, int64_t chunk_length) {
  if (embeddings.dim() != 3 || weights.dim() != 2 || embeddings.size(0) != weights.size(0) ||
      embeddings.size(1) != weights.size(1))
    throw UsageError("apply_emphasis: expected embeddings [B,T,C] and weights [B,T], got " +
                     std::string(c10::str(embeddings.sizes())) + " and " + std::string(c10::str(weights.sizes())));
  if (chunk_length <= 0 || embeddings.size(1) % chunk_length != 0)
    throw UsageError("apply_emphasis: sequence length " + std::to_string(embeddings.size(1)) +
                     " is not a multiple of the chunk length " + std::to_string(chunk_length));
  const at::Tensor w = weights.to(embeddings.device());
  std::vector<at::Tensor> out;
  for (int64_t start = 0; start < embeddings.size(1); start += chunk_length) {
    const at::Tensor z = embeddings.narrow(1, start, chunk_length);  // [B,77,C]
    const at::Tensor original_mean = z.mean();
    at::Tensor weighted = z * w.narrow(1, start, chunk_length).unsqueeze(-1);
    const at::Tensor new_mean = weighted.mean();
    out.push_back(weighted * (original_mean / new_mean));
  }
  return out.size() == 1 ? out[0] : at::cat(out, 1);
}

std::pair<at::Tensor, at::Tensor> to_tensors(const WeightedTokens& tokens) {
  const auto n = static_cast<int64_t>(tokens.chunks.size());
  const int64_t len = n > 0 ? static_cast<int64_t>(tokens.chunks[0].size()) : 0;
  at::Tensor ids = at::empty({n, len}, at::kLong);
  at::Tensor w = at::empty({n, len}, at::kFloat);
  for (int64_t i = 0; i < n; ++i) {
    std::copy(tokens.chunks[i].begin(), tokens.chunks[i].end(), ids[i].data_ptr<int64_t>());
    std::copy(tokens.weights[i].begin(), tokens.weights[i].end(), w[i].data_ptr<float>());
  }
  return {ids, w};
}

}  // namespace genvis::tokenizers
