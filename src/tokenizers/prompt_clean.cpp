#include "tokenizers/prompt_clean.h"

#include "core/text.h"
#include "tokenizers/unicode_text.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace genvis::tokenizers {
namespace {

using namespace unicode;

// ---------------------------------------------------------------- HTML entities

struct Entity {
  const char* name;
  char32_t cp;
  bool legacy;  // also recognised without the trailing ';' (html5 dict has both forms)
};

// The Latin-1 entities (U+00A0..U+00FF, in code point order); all are legacy.
constexpr std::array<const char*, 96> kLatin1Names = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",    "copy",
    "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn", "sup2",   "sup3",
    "acute",  "micro",  "para",   "middot", "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12",
    "frac34", "iquest", "Agrave", "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil",
    "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave", "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde",
    "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",   "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",
    "Uuml",   "Yacute", "THORN",  "szlig",  "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",
    "aelig",  "ccedil", "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",
    "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide", "oslash", "ugrave",
    "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml"};

constexpr Entity kEntities[] = {
    {"amp", '&', true}, {"AMP", '&', true}, {"lt", '<', true}, {"LT", '<', true}, {"gt", '>', true},
    {"GT", '>', true}, {"quot", '"', true}, {"QUOT", '"', true}, {"COPY", 0xA9, true}, {"REG", 0xAE, true},
    {"apos", '\'', false}, {"OElig", 0x152, false}, {"oelig", 0x153, false}, {"Scaron", 0x160, false},
    {"scaron", 0x161, false}, {"Yuml", 0x178, false}, {"fnof", 0x192, false}, {"circ", 0x2C6, false},
    {"tilde", 0x2DC, false}, {"Alpha", 0x391, false}, {"Beta", 0x392, false}, {"Gamma", 0x393, false},
    {"Delta", 0x394, false}, {"Epsilon", 0x395, false}, {"Zeta", 0x396, false}, {"Eta", 0x397, false},
    {"Theta", 0x398, false}, {"Iota", 0x399, false}, {"Kappa", 0x39A, false}, {"Lambda", 0x39B, false},
    {"Mu", 0x39C, false}, {"Nu", 0x39D, false}, {"Xi", 0x39E, false}, {"Omicron", 0x39F, false},
    {"Pi", 0x3A0, false}, {"Rho", 0x3A1, false}, {"Sigma", 0x3A3, false}, {"Tau", 0x3A4, false},
    {"Upsilon", 0x3A5, false}, {"Phi", 0x3A6, false}, {"Chi", 0x3A7, false}, {"Psi", 0x3A8, false},
    {"Omega", 0x3A9, false}, {"alpha", 0x3B1, false}, {"beta", 0x3B2, false}, {"gamma", 0x3B3, false},
    {"delta", 0x3B4, false}, {"epsilon", 0x3B5, false}, {"zeta", 0x3B6, false}, {"eta", 0x3B7, false},
    {"theta", 0x3B8, false}, {"iota", 0x3B9, false}, {"kappa", 0x3BA, false}, {"lambda", 0x3BB, false},
    {"mu", 0x3BC, false}, {"nu", 0x3BD, false}, {"xi", 0x3BE, false}, {"omicron", 0x3BF, false},
    {"pi", 0x3C0, false}, {"rho", 0x3C1, false}, {"sigmaf", 0x3C2, false}, {"sigma", 0x3C3, false},
    {"tau", 0x3C4, false}, {"upsilon", 0x3C5, false}, {"phi", 0x3C6, false}, {"chi", 0x3C7, false},
    {"psi", 0x3C8, false}, {"omega", 0x3C9, false}, {"thetasym", 0x3D1, false}, {"upsih", 0x3D2, false},
    {"piv", 0x3D6, false}, {"ensp", 0x2002, false}, {"emsp", 0x2003, false}, {"thinsp", 0x2009, false},
    {"zwnj", 0x200C, false}, {"zwj", 0x200D, false}, {"lrm", 0x200E, false}, {"rlm", 0x200F, false},
    {"hyphen", 0x2010, false}, {"dash", 0x2010, false}, {"ndash", 0x2013, false}, {"mdash", 0x2014, false},
    {"lsquo", 0x2018, false}, {"rsquo", 0x2019, false}, {"sbquo", 0x201A, false}, {"ldquo", 0x201C, false},
    {"rdquo", 0x201D, false}, {"bdquo", 0x201E, false}, {"dagger", 0x2020, false}, {"Dagger", 0x2021, false},
    {"bull", 0x2022, false}, {"hellip", 0x2026, false}, {"permil", 0x2030, false}, {"prime", 0x2032, false},
    {"Prime", 0x2033, false}, {"lsaquo", 0x2039, false}, {"rsaquo", 0x203A, false}, {"oline", 0x203E, false},
    {"frasl", 0x2044, false}, {"euro", 0x20AC, false}, {"image", 0x2111, false}, {"weierp", 0x2118, false},
    {"real", 0x211C, false}, {"trade", 0x2122, false}, {"TRADE", 0x2122, false}, {"alefsym", 0x2135, false},
    {"larr", 0x2190, false}, {"uarr", 0x2191, false}, {"rarr", 0x2192, false}, {"darr", 0x2193, false},
    {"harr", 0x2194, false}, {"crarr", 0x21B5, false}, {"lArr", 0x21D0, false}, {"uArr", 0x21D1, false},
    {"rArr", 0x21D2, false}, {"dArr", 0x21D3, false}, {"hArr", 0x21D4, false}, {"forall", 0x2200, false},
    {"part", 0x2202, false}, {"exist", 0x2203, false}, {"empty", 0x2205, false}, {"nabla", 0x2207, false},
    {"isin", 0x2208, false}, {"notin", 0x2209, false}, {"ni", 0x220B, false}, {"prod", 0x220F, false},
    {"sum", 0x2211, false}, {"minus", 0x2212, false}, {"lowast", 0x2217, false}, {"radic", 0x221A, false},
    {"prop", 0x221D, false}, {"infin", 0x221E, false}, {"ang", 0x2220, false}, {"and", 0x2227, false},
    {"or", 0x2228, false}, {"cap", 0x2229, false}, {"cup", 0x222A, false}, {"int", 0x222B, false},
    {"there4", 0x2234, false}, {"sim", 0x223C, false}, {"cong", 0x2245, false}, {"asymp", 0x2248, false},
    {"ne", 0x2260, false}, {"equiv", 0x2261, false}, {"le", 0x2264, false}, {"ge", 0x2265, false},
    {"sub", 0x2282, false}, {"sup", 0x2283, false}, {"nsub", 0x2284, false}, {"sube", 0x2286, false},
    {"supe", 0x2287, false}, {"oplus", 0x2295, false}, {"otimes", 0x2297, false}, {"perp", 0x22A5, false},
    {"sdot", 0x22C5, false}, {"lceil", 0x2308, false}, {"rceil", 0x2309, false}, {"lfloor", 0x230A, false},
    {"rfloor", 0x230B, false}, {"lang", 0x27E8, false}, {"rang", 0x27E9, false}, {"loz", 0x25CA, false},
    {"spades", 0x2660, false}, {"clubs", 0x2663, false}, {"hearts", 0x2665, false}, {"diams", 0x2666, false},
    {"star", 0x2606, false}, {"starf", 0x2605, false}, {"check", 0x2713, false}, {"cross", 0x2717, false},
    {"half", 0xBD, false}, {"Tab", '\t', false}, {"NewLine", '\n', false}, {"excl", '!', false},
    {"num", '#', false}, {"dollar", '$', false}, {"percnt", '%', false}, {"lpar", '(', false},
    {"rpar", ')', false}, {"ast", '*', false}, {"midast", '*', false}, {"plus", '+', false},
    {"comma", ',', false}, {"period", '.', false}, {"sol", '/', false}, {"colon", ':', false},
    {"semi", ';', false}, {"equals", '=', false}, {"quest", '?', false}, {"commat", '@', false},
    {"lsqb", '[', false}, {"lbrack", '[', false}, {"bsol", '\\', false}, {"rsqb", ']', false},
    {"rbrack", ']', false}, {"Hat", '^', false}, {"lowbar", '_', false}, {"UnderBar", '_', false},
    {"grave", '`', false}, {"lcub", '{', false}, {"lbrace", '{', false}, {"verbar", '|', false},
    {"vert", '|', false}, {"VerticalLine", '|', false}, {"rcub", '}', false}, {"rbrace", '}', false},
    {"nbsp", 0xA0, true}, {"NonBreakingSpace", 0xA0, false}, {"middot", 0xB7, true},
    {"centerdot", 0xB7, false}, {"micro", 0xB5, true}, {"copysr", 0x2117, false},
};

struct EntityTable {
  std::unordered_map<std::string, char32_t> with_semicolon, legacy;
  EntityTable() {
    for (size_t i = 0; i < kLatin1Names.size(); ++i) {
      with_semicolon[kLatin1Names[i]] = static_cast<char32_t>(0xA0 + i);
      legacy[kLatin1Names[i]] = static_cast<char32_t>(0xA0 + i);
    }
    for (const auto& e : kEntities) {
      with_semicolon[e.name] = e.cp;
      if (e.legacy) legacy[e.name] = e.cp;
    }
  }
};

const EntityTable& entities() {
  static const EntityTable table;
  return table;
}

// Python html._replace_charref for a numeric reference.
U32 numeric_charref(const U32& digits, bool hex) {
  uint64_t num = 0;
  bool overflow = false;
  for (char32_t c : digits) {
    const int v = (c >= '0' && c <= '9') ? int(c - '0') : (c >= 'a' && c <= 'f') ? int(c - 'a' + 10) : int(c - 'A' + 10);
    num = num * (hex ? 16 : 10) + static_cast<uint64_t>(v);
    if (num > 0x10FFFF) overflow = true, num = 0x110000;
  }
  if (overflow || num > 0x10FFFF || (num >= 0xD800 && num <= 0xDFFF)) return U32(1, 0xFFFD);
  if (num == 0) return U32(1, 0xFFFD);
  if (num == 0x0D) return U32(1, '\r');
  if (num >= 0x80 && num <= 0x9F) {
    static constexpr char16_t kCp1252[32] = {0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021,
                                             0x2C6,  0x2030, 0x160,  0x2039, 0x152,  0x8D,   0x17D,  0x8F,
                                             0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                             0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};
    return U32(1, kCp1252[num - 0x80]);
  }
  if ((num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F) || num == 0x7F ||
      (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
    return U32();
  return U32(1, static_cast<char32_t>(num));
}

U32 py_html_unescape(const U32& s) {
  if (s.find(U'&') == U32::npos) return s;
  const auto& table = entities();
  U32 out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out.push_back(s[i++]);
      continue;
    }
    // &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
    size_t j = i + 1;
    if (j < s.size() && s[j] == '#') {
      bool hex = j + 1 < s.size() && (s[j + 1] == 'x' || s[j + 1] == 'X');
      size_t k = j + (hex ? 2 : 1);
      size_t start = k;
      while (k < s.size() && (hex ? (s[k] < 128 && std::isxdigit(static_cast<int>(s[k]))) : (s[k] >= '0' && s[k] <= '9'))) ++k;
      if (k == start && hex) {  // "&#x" without hex digits: try the decimal form, which also fails
        hex = false;
        k = start = j + 1;
      }
      if (k == start) {
        out.push_back(s[i++]);
        continue;
      }
      U32 r = numeric_charref(s.substr(start, k - start), hex);
      if (k < s.size() && s[k] == ';') ++k;
      out += r;
      i = k;
      continue;
    }
    size_t k = j;
    while (k < s.size() && k - j < 32) {
      const char32_t c = s[k];
      if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';') break;
      ++k;
    }
    if (k == j) {
      out.push_back(s[i++]);
      continue;
    }
    const bool semi = k < s.size() && s[k] == ';';
    const std::string name = u32_to_utf8(s.substr(j, k - j));
    const size_t end = k + (semi ? 1 : 0);
    if (semi) {
      if (auto it = table.with_semicolon.find(name); it != table.with_semicolon.end()) {
        out.push_back(it->second);
        i = end;
        continue;
      }
    } else if (auto it = table.legacy.find(name); it != table.legacy.end()) {
      out.push_back(it->second);
      i = end;
      continue;
    }
    // Longest legacy prefix (length >= 2) of the whole match, ';' included.
    const U32 whole = s.substr(j, end - j);
    bool found = false;
    for (size_t x = whole.size() - 1; x >= 2; --x) {
      if (auto it = table.legacy.find(u32_to_utf8(whole.substr(0, x))); it != table.legacy.end()) {
        out.push_back(it->second);
        out += whole.substr(x);
        found = true;
        break;
      }
    }
    if (!found) {
      out.push_back('&');
      out += whole;
    }
    i = end;
  }
  return out;
}

// ---------------------------------------------------------------- ftfy

// ftfy.fixes.unescape_html: only "&#?[0-9A-Za-z]{1,24};"; also upper-cased lowercase names.
U32 ftfy_unescape_html(const U32& s) {
  if (s.find(U'&') == U32::npos) return s;
  const auto& table = entities();
  U32 out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '&') {
      size_t j = i + 1;
      const bool numeric = j < s.size() && s[j] == '#';
      if (numeric) ++j;
      size_t k = j;
      while (k < s.size() && is_ascii_alnum(s[k])) ++k;
      if (k > j && k - j <= 24 && k < s.size() && s[k] == ';') {
        const U32 match = s.substr(i, k + 1 - i);
        const std::string name = u32_to_utf8(s.substr(j, k - j));
        if (!numeric) {
          if (auto it = table.with_semicolon.find(name); it != table.with_semicolon.end()) {
            out.push_back(it->second);
            i = k + 1;
            continue;
          }
          const std::string lower = ascii_lower(name);
          std::string upper = name;
          std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
          if (name == upper) {
            if (auto it = table.with_semicolon.find(lower); it != table.with_semicolon.end()) {
              out.push_back(static_cast<char32_t>(u_toupper(static_cast<UChar32>(it->second))));
              i = k + 1;
              continue;
            }
          }
        } else {
          const U32 r = py_html_unescape(match);
          if (r.find(U';') == U32::npos) {
            out += r;
            i = k + 1;
            continue;
          }
        }
        out += match;
        i = k + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

// Byte of a character in "sloppy" windows-1252 (undefined bytes decode to the C1 control of the
// same value), or -1.
int sloppy_cp1252_byte(char32_t c) {
  if (c < 0x100) return static_cast<int>(c);
  switch (c) {
    case 0x20AC: return 0x80; case 0x201A: return 0x82; case 0x0192: return 0x83; case 0x201E: return 0x84;
    case 0x2026: return 0x85; case 0x2020: return 0x86; case 0x2021: return 0x87; case 0x02C6: return 0x88;
    case 0x2030: return 0x89; case 0x0160: return 0x8A; case 0x2039: return 0x8B; case 0x0152: return 0x8C;
    case 0x017D: return 0x8E; case 0x2018: return 0x91; case 0x2019: return 0x92; case 0x201C: return 0x93;
    case 0x201D: return 0x94; case 0x2022: return 0x95; case 0x2013: return 0x96; case 0x2014: return 0x97;
    case 0x02DC: return 0x98; case 0x2122: return 0x99; case 0x0161: return 0x9A; case 0x203A: return 0x9B;
    case 0x0153: return 0x9C; case 0x017E: return 0x9E; case 0x0178: return 0x9F;
    default: return -1;
  }
}

// UTF-8 that was decoded as windows-1252/latin-1 ("cafÃ©" -> "café"): every run of characters whose
// 1252 bytes form one valid multi-byte UTF-8 sequence is decoded back.
U32 fix_mojibake(const U32& s) {
  U32 out;
  size_t i = 0;
  while (i < s.size()) {
    const int lead = sloppy_cp1252_byte(s[i]);
    int len = 0;
    if (lead >= 0xC2 && lead <= 0xDF) len = 2;
    else if (lead >= 0xE0 && lead <= 0xEF) len = 3;
    else if (lead >= 0xF0 && lead <= 0xF4) len = 4;
    if (len > 0 && i + len <= s.size()) {
      std::string bytes(1, static_cast<char>(lead));
      bool ok = true;
      for (int k = 1; k < len && ok; ++k) {
        const int b = sloppy_cp1252_byte(s[i + k]);
        if (b < 0x80 || b > 0xBF) ok = false;
        else bytes.push_back(static_cast<char>(b));
      }
      if (ok) {
        const U32 decoded = utf8_to_u32(bytes);
        if (decoded.size() == 1 && decoded[0] != 0xFFFD) {
          out.push_back(decoded[0]);
          i += len;
          continue;
        }
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

U32 fix_c1_controls(const U32& s) {
  static constexpr char16_t kCp1252[32] = {0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021,
                                           0x2C6,  0x2030, 0x160,  0x2039, 0x152,  0x8D,   0x17D,  0x8F,
                                           0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                           0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};
  U32 out = s;
  for (auto& c : out)
    if (c >= 0x80 && c <= 0x9F) c = kCp1252[c - 0x80];
  return out;
}

const char32_t* ligature(char32_t c) {
  switch (c) {
    case 0x132: return U"IJ"; case 0x133: return U"ij"; case 0x149: return U"\u02BCn";
    case 0x1C4: return U"D\u017D"; case 0x1C5: return U"D\u017E"; case 0x1C6: return U"d\u017E";
    case 0x1C7: return U"LJ"; case 0x1C8: return U"Lj"; case 0x1C9: return U"lj";
    case 0x1CA: return U"NJ"; case 0x1CB: return U"Nj"; case 0x1CC: return U"nj";
    case 0x1F1: return U"DZ"; case 0x1F2: return U"Dz"; case 0x1F3: return U"dz";
    case 0xFB00: return U"ff"; case 0xFB01: return U"fi"; case 0xFB02: return U"fl"; case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl"; case 0xFB05: return U"\u017Ft"; case 0xFB06: return U"st";
    default: return nullptr;
  }
}

bool is_control_char(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

U32 ftfy_step(const U32& in, bool unescape_html) {
  U32 s = unescape_html ? ftfy_unescape_html(in) : in;
  s = fix_mojibake(s);
  s = fix_c1_controls(s);
  U32 t;
  for (char32_t c : s) {
    if (const char32_t* lig = ligature(c)) {
      t += lig;
    } else if (c == 0x3000) {
      t.push_back(' ');
    } else if (c >= 0xFF01 && c <= 0xFFEF) {  // full/half width forms
      t += normalize(U32(1, c), /*nfkc=*/true);
    } else if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) {
      t.push_back('\'');
    } else if (c >= 0x201C && c <= 0x201F) {
      t.push_back('"');
    } else {
      t.push_back(c);
    }
  }
  // Line breaks: \r\n, \r, U+2028, U+2029, U+0085 -> \n.
  s.clear();
  for (size_t i = 0; i < t.size(); ++i) {
    const char32_t c = t[i];
    if (c == '\r' && i + 1 < t.size() && t[i + 1] == '\n') continue;
    s.push_back((c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) ? U'\n' : c);
  }
  // Terminal escapes "\x1b[<digits;>*<letter>", then control characters.
  t.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == 0x1B && i + 1 < s.size() && s[i + 1] == '[') {
      size_t k = i + 2;
      while (k < s.size() && ((s[k] >= '0' && s[k] <= '9') || s[k] == ';')) ++k;
      if (k < s.size() && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z'))) {
        i = k;
        continue;
      }
    }
    t.push_back(s[i]);
  }
  s.clear();
  for (char32_t c : t)
    if (!is_control_char(c)) s.push_back(c);
  return normalize(s, /*nfkc=*/false);
}

U32 ftfy_fix(const U32& text) {
  const bool unescape = text.find(U'<') == U32::npos;
  U32 s = text;
  for (int iter = 0; iter < 16; ++iter) {
    U32 next = ftfy_step(s, unescape);
    if (next == s) break;
    s = std::move(next);
  }
  return s;
}

U32 collapse_whitespace(const U32& s) {
  U32 out;
  for (size_t i = 0; i < s.size();) {
    if (py_isspace(s[i])) {
      while (i < s.size() && py_isspace(s[i])) ++i;
      out.push_back(' ');
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

}  // namespace

std::u32string prompt_clean_u32(std::string_view text) {
  const U32 s = py_strip(py_html_unescape(py_html_unescape(ftfy_fix(utf8_to_u32(text)))));
  return py_strip(collapse_whitespace(s));
}

std::string prompt_clean(std::string_view text) { return u32_to_utf8(prompt_clean_u32(text)); }

std::string ftfy_fix_text(std::string_view text) { return u32_to_utf8(ftfy_fix(utf8_to_u32(text))); }

std::string html_unescape(std::string_view text) { return u32_to_utf8(py_html_unescape(utf8_to_u32(text))); }

}  // namespace genvis::tokenizers
