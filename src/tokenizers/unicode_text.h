// Unicode helpers shared by the tokenizers: UTF-8 <-> UTF-32 and the Python str predicates the
// reference tokenizers rely on (str.isspace, str.strip, str.lower, unicodedata.normalize).
//
//   std::u32string s = unicode::utf8_to_u32("caf\xc3\xa9 ");   // invalid bytes become U+FFFD
//   std::string t = unicode::u32_to_utf8(unicode::py_strip(s));  // "café"
#pragma once
#include <string>
#include <string_view>

namespace genvis::tokenizers::unicode {

using U32 = std::u32string;

// Decodes UTF-8; each invalid byte (and overlong, surrogate or out-of-range sequence) becomes
// U+FFFD, as Python's errors="replace".
U32 utf8_to_u32(std::string_view s);
void append_utf8(std::string& out, char32_t cp);
std::string u32_to_utf8(const U32& s);

// unicodedata.normalize("NFKC" or "NFC", s) (ICU).
U32 normalize(const U32& s, bool nfkc);
// Python str.lower(): full case mapping with Final_Sigma.
U32 py_lower(const U32& s);
// Python str.isspace() (also what the re module's \s matches in str patterns).
bool py_isspace(char32_t c);
// Python str.strip() with no argument (Unicode whitespace on both ends).
U32 py_strip(const U32& s);
// General category L* / N*.
bool is_letter(char32_t c);
bool is_number(char32_t c);
bool is_ascii_alnum(char32_t c);

}  // namespace genvis::tokenizers::unicode
