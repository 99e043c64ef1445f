// Prompt cleaning done before tokenizing: ftfy.fix_text, html.unescape, whitespace.
//
//   std::string s = genvis::tokenizers::prompt_clean("Tom &amp; Jerry\t “x”  ");  // "Tom & Jerry \"x\""
//
// prompt_clean is diffusers' WanPipeline prompt_clean (and OpenAI CLIP's basic_clean +
// whitespace_clean, without the lower() CLIP adds): ftfy.fix_text, html.unescape twice, strip,
// collapse every run of \s (Python's Unicode whitespace: tab, newline, U+00A0, U+3000, ...) to one
// space, strip. UTF-8 in and out; invalid bytes become U+FFFD.
//
// ftfy_fix_text covers these of ftfy 6.3's default fixes, applied in this order until nothing
// changes:
//   - unescape_html ("auto": only when the text has no '<'): &name; and &#N; / &#xN; entities,
//     also upper-cased named ones (&AMP; -> &);
//   - fix_encoding, simplified: a run of characters whose windows-1252 (or Latin-1) bytes form
//     one valid UTF-8 multi-byte sequence is decoded ("cafÃ©" -> "café"). ftfy's badness
//     heuristic, its other legacy encodings (MacRoman, cp437, ...), restore_byte_a0,
//     replace_lossy_sequences and decode_inconsistent_utf8 are NOT implemented, so text that
//     ftfy judges to be intentional Latin-1 may be decoded here;
//   - fix_c1_controls (U+0080..U+009F as windows-1252), fix_latin_ligatures (U+FB00..U+FB06,
//     Ĳ ĳ ŉ Ǆ..ǌ Ǳ..ǳ), fix_character_width (U+FF01..U+FFEF by NFKC, U+3000 -> space),
//     uncurl_quotes (U+2018..U+201B and U+02BC -> ', U+201C..U+201F -> "), fix_line_breaks
//     (\r\n, \r, U+2028, U+2029, U+0085 -> \n), remove_terminal_escapes (ESC [ digits/; letter),
//     remove_control_chars (U+0000..08, 0B, 0E..1F, 7F, U+206A..206F, FEFF, FFF9..FFFC), and
//     NFC normalisation.
// fix_surrogates has nothing to do: UTF-8 input cannot hold surrogates.
#pragma once
#include <string>
#include <string_view>

namespace genvis::tokenizers {

std::string prompt_clean(std::string_view text);
// The same as UTF-32 (for tokenizers that go on in code points).
std::u32string prompt_clean_u32(std::string_view text);

// ftfy.fix_text with the default configuration, for the fixes listed above.
std::string ftfy_fix_text(std::string_view text);
// Python's html.unescape: numeric references (with html's replacements for C1, surrogate and
// out-of-range code points) and the named entities of HTML 4 plus common HTML5 punctuation names
// (&Tab; &NewLine; &excl; ...); the rest of HTML5's 2,231 names are left as they are.
std::string html_unescape(std::string_view text);

}  // namespace genvis::tokenizers
