#include "io/exif.h"

#include "core/error.h"

#include <gtest/gtest.h>

namespace genvis::io {
namespace {

// A little-endian TIFF as exiftool or a camera writes it: IFD0 {ExifIFD pointer}, Exif IFD
// {UserComment}, `comment` (charset code included) at the end.
std::string little_endian_exif(const std::string& comment, bool prefix) {
  std::string out = prefix ? std::string("Exif\0\0", 6) : std::string();
  const auto u16 = [&](uint16_t v) { out += static_cast<char>(v & 0xFF), out += static_cast<char>(v >> 8); };
  const auto u32 = [&](uint32_t v) { u16(static_cast<uint16_t>(v & 0xFFFF)), u16(static_cast<uint16_t>(v >> 16)); };
  out += "II";
  u16(42), u32(8);
  u16(1), u16(0x8769), u16(4), u32(1), u32(26), u32(0);
  u16(1), u16(0x9286), u16(7), u32(static_cast<uint32_t>(comment.size())), u32(44), u32(0);
  return out + comment;
}

TEST(Exif, UserCommentRoundTripsAnyUnicode) {
  const std::string text = "a fox in snow, 雪の狐 🦊\nNegative prompt: blurry\nSteps: 20, Seed: 1, Size: 48x32";
  const std::string exif = encode_exif_user_comment(text);
  // A1111's layout (piexif.helper.UserComment.dump(..., encoding="unicode")): big-endian TIFF,
  // the "UNICODE\0" code, UTF-16BE.
  EXPECT_EQ(exif.substr(0, 4), std::string("MM\0*", 4));
  EXPECT_EQ(exif.substr(44, 8), std::string("UNICODE\0", 8));
  EXPECT_EQ(exif.substr(52, 4), std::string("\0a\0 ", 4));
  EXPECT_EQ(decode_exif_user_comment(exif), text);
  EXPECT_EQ(decode_exif_user_comment(std::string("Exif\0\0", 6) + exif), text);
  EXPECT_EQ(decode_exif_user_comment(encode_exif_user_comment("")), "");
  // A text that starts with what a reader would take for a byte-order mark keeps that character
  // (found by fuzz/exif_fuzz).
  for (const std::string lead : {"\xEF\xBB\xBF", "\xEF\xBF\xBE"}) {  // U+FEFF, U+FFFE
    EXPECT_EQ(decode_exif_user_comment(encode_exif_user_comment(lead + "SSS")), lead + "SSS");
    EXPECT_EQ(decode_exif_user_comment(encode_exif_user_comment(lead)), lead);
  }
  EXPECT_THROW(encode_exif_user_comment("bad \xff utf-8"), UsageError);
}

TEST(Exif, ReadsOtherWritersCharsetsAndByteOrders) {
  // UTF-16LE in a little-endian TIFF (exiftool's choice there), with trailing NULs.
  std::string utf16le("UNICODE\0", 8);
  for (const char c : std::string("hi")) utf16le += c, utf16le += '\0';
  utf16le += std::string("\0\0", 2);
  EXPECT_EQ(decode_exif_user_comment(little_endian_exif(utf16le, true)), "hi");
  // A byte-order mark wins over the TIFF's order.
  EXPECT_EQ(decode_exif_user_comment(little_endian_exif(std::string("UNICODE\0\xFE\xFF\0o\0k", 14), false)), "ok");
  EXPECT_EQ(decode_exif_user_comment(little_endian_exif(std::string("ASCII\0\0\0plain", 13), false)), "plain");
  std::string undefined_code(8, '\0');
  undefined_code += "utf-8 \xC3\xA9";
  EXPECT_EQ(decode_exif_user_comment(little_endian_exif(undefined_code, false)), "utf-8 é");
  // A lone surrogate becomes U+FFFD instead of failing.
  EXPECT_EQ(decode_exif_user_comment(little_endian_exif(std::string("UNICODE\0\x00\xD8", 10), false)), "\xEF\xBF\xBD");
}

TEST(Exif, NoUserCommentIsNulloptAndMalformedBlocksAreLoadErrors) {
  std::string no_exif_ifd = little_endian_exif("", false).substr(0, 8);
  no_exif_ifd += std::string("\0\0\0\0\0\0", 6);  // IFD0 with no entries
  EXPECT_EQ(decode_exif_user_comment(no_exif_ifd), std::nullopt);

  const std::string good = little_endian_exif(std::string("ASCII\0\0\0text", 12), false);
  EXPECT_THROW(decode_exif_user_comment("MM"), LoadError);
  EXPECT_THROW(decode_exif_user_comment(std::string("XX\0*\0\0\0\x08", 8)), LoadError);
  EXPECT_THROW(decode_exif_user_comment(std::string("II+\0\x08\0\0\0", 8)), LoadError);  // magic 43
  for (size_t cut = 8; cut < good.size(); ++cut) {
    try {
      decode_exif_user_comment(good.substr(0, cut), "cut.webp");  // truncated: an error or no comment, never a crash
    } catch (const LoadError& e) {
      EXPECT_NE(std::string(e.what()).find("cut.webp"), std::string::npos) << e.what();
    }
  }
  std::string far = good;
  far[4] = '\xFF';  // IFD0 offset past the end
  EXPECT_THROW(decode_exif_user_comment(far), LoadError);
  std::string long_count = good;
  long_count[26 + 2 + 4] = '\x7F';  // UserComment count past the end
  EXPECT_THROW(decode_exif_user_comment(long_count), LoadError);
}

}  // namespace
}  // namespace genvis::io
