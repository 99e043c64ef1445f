#include "io/infotext.h"

#include "io/utf8.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace genvis::io {
namespace {

// Python's str.isspace (and so re's \s for str patterns).
bool py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Python's re \w (str.isalnum() or '_'): exact for Latin-1, approximated beyond it by excluding
// the punctuation, symbol, mark, emoji and private-use blocks.
bool py_word(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  if (c <= 0xFF)
    return c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA || (c >= 0xBC && c <= 0xBE) ||
           (c >= 0xC0 && c != 0xD7 && c != 0xF7);
  if (py_space(c)) return false;
  if (c >= 0x0300 && c <= 0x036F) return false;  // combining marks
  if (c >= 0x2000 && c <= 0x2BFF) return false;  // punctuation, symbols, arrows, math, boxes
  if (c >= 0x2E00 && c <= 0x2E7F) return false;  // supplemental punctuation
  if (c >= 0x3000 && c <= 0x3003) return false;  // CJK punctuation
  if (c >= 0x3008 && c <= 0x3020) return false;
  if (c >= 0xD800 && c <= 0xF8FF) return false;  // surrogates, private use
  if (c >= 0xFE00 && c <= 0xFE6F) return false;  // variation selectors, CJK compatibility forms
  if ((c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
      (c >= 0xFF5B && c <= 0xFF65))
    return false;  // fullwidth punctuation
  if (c >= 0xFFF0 && c <= 0xFFFF) return false;   // specials, U+FFFD included
  if (c >= 0x1F000 && c <= 0x1FBFF) return false; // emoji and pictographs
  if (c >= 0xE0000) return false;                 // tags, variation selectors, private use
  return true;
}

// Byte length of the code point starting at s[i] (s is valid UTF-8).
size_t cp_length(std::string_view s, size_t i) {
  size_t j = i;
  utf8::decode(s, j);
  return j - i;
}

char32_t cp_at(std::string_view s, size_t i) {
  size_t j = i;
  return utf8::decode(s, j);
}

// Python's str.strip() on valid UTF-8.
std::string_view py_strip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    size_t next = begin;
    if (!py_space(utf8::decode(s, next))) break;
    begin = next;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    size_t next = start;
    if (!py_space(utf8::decode(s, next)) || next != end) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

// json.loads of a whole string literal (strict: raw control characters are refused). Lone
// surrogates, which Python would keep, become U+FFFD.
std::optional<std::string> json_unquote(std::string_view s) {
  if (s.size() < 2 || s.front() != '"') return std::nullopt;
  std::string out;
  size_t i = 1;
  const auto hex4 = [&](size_t at) -> std::optional<char32_t> {
    if (s.size() - at < 4) return std::nullopt;
    char32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = s[at + k];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<char32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<char32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<char32_t>(c - 'A' + 10);
      else return std::nullopt;
    }
    return v;
  };
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"') return i + 1 == s.size() ? std::optional<std::string>(std::move(out)) : std::nullopt;
    if (static_cast<uint8_t>(c) < 0x20) return std::nullopt;
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) return std::nullopt;
    const char e = s[i + 1];
    i += 2;
    switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        auto cp = hex4(i);
        if (!cp) return std::nullopt;
        i += 4;
        if (*cp >= 0xD800 && *cp <= 0xDBFF && s.size() - i >= 6 && s[i] == '\\' && s[i + 1] == 'u') {
          const auto low = hex4(i + 2);
          if (low && *low >= 0xDC00 && *low <= 0xDFFF) {
            cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
            i += 6;
          }
        }
        utf8::append(out, *cp);  // a lone surrogate is appended as U+FFFD
        break;
      }
      default: return std::nullopt;
    }
  }
  return std::nullopt;
}

// json.dumps(s, ensure_ascii=False).
std::string json_quote(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<uint8_t>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xF];
          out += kHex[c & 0xF];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

struct RawParam {
  std::string_view key, value;
};

// re.findall(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)', line), in linear time.
std::vector<RawParam> find_params(std::string_view line) {
  const size_t n = line.size();
  constexpr size_t kNone = std::numeric_limits<size_t>::max();
  // close[i]: where a quoted body scanned from i ends (its closing '"'), or kNone.
  std::vector<size_t> close(n + 1, kNone);
  for (size_t i = n; i-- > 0;) {
    if (line[i] == '"') close[i] = i;
    else if (line[i] == '\\') close[i] = i + 1 < n ? close[std::min(n, i + 1 + cp_length(line, i + 1))] : kNone;
    else close[i] = close[i + 1];
  }
  const auto skip_space = [&](size_t p) {
    while (p < n && py_space(cp_at(line, p))) p += cp_length(line, p);
    return p;
  };
  const auto key_char = [](char32_t c) { return py_word(c) || c == ' ' || c == '-' || c == '/'; };

  std::vector<RawParam> found;
  size_t pos = 0;
  while (pos < n) {
    size_t p = skip_space(pos);
    if (p >= n) break;
    if (!py_word(cp_at(line, p))) {
      pos = p + cp_length(line, p);
      continue;
    }
    const size_t key_begin = p;
    p += cp_length(line, p);
    size_t key_chars = 1;
    while (p < n && key_char(cp_at(line, p))) {
      p += cp_length(line, p);
      ++key_chars;
    }
    if (key_chars < 2 || p >= n || line[p] != ':') {
      // Every start inside this run ends at the same place and fails the same way.
      pos = p;
      continue;
    }
    const std::string_view key = line.substr(key_begin, p - key_begin);
    const size_t q = skip_space(p + 1);
    if (q < n && line[q] == '"') {
      const size_t end = q + 1 < n ? close[q + 1] : kNone;
      if (end != kNone && end > q + 1 && (end + 1 == n || line[end + 1] == ',')) {
        found.push_back({key, line.substr(q, end + 1 - q)});
        pos = end + 2;
        continue;
      }
    }
    const size_t comma = line.find(',', q);
    const size_t value_end = comma == std::string_view::npos ? n : comma;
    found.push_back({key, line.substr(q, value_end - q)});
    pos = value_end + 1;
  }
  return found;
}

std::string_view trim_ascii(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

template <typename T>
std::optional<T> parse_int(std::string_view s) {
  s = trim_ascii(s);
  T v{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view s) {
  s = trim_ascii(s);
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// A1111's re_imagesize: ^(\d+)x(\d+)$ ($ also matches before one final newline).
bool parse_size(std::string_view s, int* width, int* height) {
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  const size_t x = s.find('x');
  if (x == std::string_view::npos || x == 0 || x + 1 == s.size()) return false;
  const auto digits = [](std::string_view d) {
    for (const char c : d)
      if (c < '0' || c > '9') return false;
    return true;
  };
  const std::string_view w = s.substr(0, x), h = s.substr(x + 1);
  if (!digits(w) || !digits(h)) return false;
  const auto wv = parse_int<int>(w), hv = parse_int<int>(h);
  if (!wv || !hv) return false;
  *width = *wv;
  *height = *hv;
  return true;
}

std::string format_double(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("nan");
}

bool starts_with_space(std::string_view s) { return !s.empty() && py_space(cp_at(s, 0)); }

bool ends_with_space(std::string_view s) {
  if (s.empty()) return false;
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
  size_t next = start;
  return py_space(utf8::decode(s, next)) && next == s.size();
}

}  // namespace

std::string quote_infotext_value(std::string_view value) {
  const bool plain = !value.empty() && value.find_first_of(",:\n\"") == std::string_view::npos &&
                     !starts_with_space(value) && !ends_with_space(value);
  return plain ? std::string(value) : json_quote(value);
}

std::string format_infotext(const GenerationParameters& p) {
  std::vector<std::pair<std::string, std::string>> pairs;
  if (p.steps) pairs.emplace_back("Steps", std::to_string(*p.steps));
  if (!p.sampler.empty()) pairs.emplace_back("Sampler", p.sampler);
  if (!p.schedule.empty()) pairs.emplace_back("Schedule type", p.schedule);
  if (p.cfg_scale) pairs.emplace_back("CFG scale", format_double(*p.cfg_scale));
  if (p.seed) pairs.emplace_back("Seed", std::to_string(*p.seed));
  if (p.width && p.height) pairs.emplace_back("Size", std::to_string(*p.width) + "x" + std::to_string(*p.height));
  if (!p.model_hash.empty()) pairs.emplace_back("Model hash", p.model_hash);
  if (!p.model.empty()) pairs.emplace_back("Model", p.model);
  for (const auto& kv : p.extra) pairs.push_back(kv);

  std::string text = p.prompt;
  if (!p.negative_prompt.empty()) text += "\nNegative prompt: " + p.negative_prompt;
  text += '\n';
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i > 0) text += ", ";
    text += pairs[i].first + ": " + quote_infotext_value(pairs[i].second);
  }
  return std::string(py_strip(text));
}

GenerationParameters parse_infotext(std::string_view input) {
  const std::string clean = utf8::sanitize(input);
  const std::string_view text = py_strip(clean);

  std::vector<std::string_view> lines;
  for (size_t start = 0;;) {
    const size_t nl = text.find('\n', start);
    lines.push_back(text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  std::vector<RawParam> params = find_params(lines.back());
  if (params.size() < 3) params.clear();
  else lines.pop_back();

  GenerationParameters out;
  bool negative = false;
  for (std::string_view line : lines) {
    line = py_strip(line);
    if (line.substr(0, 16) == "Negative prompt:") {
      negative = true;
      line = py_strip(line.substr(16));
    }
    std::string& target = negative ? out.negative_prompt : out.prompt;
    if (!target.empty()) target += '\n';
    target += line;
  }

  // A Python dict: first position, last value.
  std::vector<std::pair<std::string, std::string>> dict;
  for (const auto& [key, raw] : params) {
    if (raw.empty()) continue;  // A1111 fails on v[0] and skips the pair
    std::string value(raw);
    if (raw.front() == '"' && raw.back() == '"')
      if (auto unquoted = json_unquote(raw)) value = std::move(*unquoted);
    bool replaced = false;
    for (auto& kv : dict)
      if (kv.first == key) {
        kv.second = std::move(value);
        replaced = true;
        break;
      }
    if (!replaced) dict.emplace_back(std::string(key), std::move(value));
  }

  for (auto& [key, value] : dict) {
    bool used = true;
    if (key == "Steps") {
      out.steps = parse_int<int64_t>(value);
      used = out.steps.has_value();
    } else if (key == "Sampler") {
      out.sampler = value;
    } else if (key == "Schedule type") {
      out.schedule = value;
    } else if (key == "CFG scale") {
      out.cfg_scale = parse_double(value);
      used = out.cfg_scale.has_value();
    } else if (key == "Seed") {
      out.seed = parse_int<uint64_t>(value);
      used = out.seed.has_value();
    } else if (key == "Size") {
      int w = 0, h = 0;
      used = parse_size(value, &w, &h);
      if (used) out.width = w, out.height = h;
    } else if (key == "Model hash") {
      out.model_hash = value;
    } else if (key == "Model") {
      out.model = value;
    } else {
      used = false;
    }
    if (!used) out.extra.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

}  // namespace genvis::io
