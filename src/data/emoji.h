// The `emoji` dataset: every fully-qualified emoji of Unicode's emoji-test.txt that Debian's
// Noto Color Emoji font draws as one glyph, captioned with its CLDR short name.
//
//   genvis::data::EmojiOptions options;                      // 64 px, white, Split::Train
//   options.resolution = 32;
//   genvis::data::EmojiDataset emoji(options);               // LoadError if a package is missing
//   genvis::data::Sample s = emoji.get(0);                   // "grinning face", 32x32 RGB
//   s.meta["group"];                                         // "Smileys & Emotion"
//
// Sources (Debian packages): unicode-data (/usr/share/unicode/emoji/emoji-test.txt) and
// fonts-noto-color-emoji (/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf).
//
// Catalogue. Lines with status "fully-qualified", in file (CLDR) order. Each sequence is shaped
// with HarfBuzz; if the font turns it into anything other than exactly one glyph (a ZWJ
// sequence the font lacks falls apart into its pieces) the entry is excluded and counted.
// Parsing and shaping run once per (test file, font) pair per process and are shared.
//
// Rendering. The font's single colour strike (136x128 premultiplied sRGB BGRA) is centred on a
// transparent square, converted to premultiplied linear light, composited over the background
// colour, area-averaged (exact box filter, any ratio) down to `resolution`, and encoded as sRGB.
//
// Held-out split (compositional: every base emoji and every skin tone is still seen in Train).
// In subgroups "person-role" (professions) and "person-activity", the base emoji that have the
// five single-skin-tone variants are numbered k = 0, 1, 2, ... in file order; base k holds out
// its variant with skin tone kSkinTones[k % 5] (light, medium-light, medium, medium-dark, dark).
// Split::Train never yields those entries; Split::HeldOut yields exactly them; Split::All both.
//
// flip_allowed (a mirror image must still match its caption): false for flags, keycaps, clocks,
// maps and globes, arrows, play/track buttons, left/right-handed things, and anything with
// letters or digits drawn on it; true otherwise. Precisely: false when the subgroup is one of
// arrow, av-symbol, keycap, alphanum, flag, country-flag, subdivision-flag, time, place-map, or
// the name contains a digit or one of "arrow", "flag", "keycap", "left", "right", "Japanese",
// "letter", "check", "hundred", "ZZZ", "ATM", "copyright", "registered", "trade mark", "dollar",
// "stop sign" (kNoFlipSubgroups / kNoFlipWords in emoji.cpp). 488 of the 3,655 are not flippable.
#pragma once
#include "data/dataset.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace genvis::data {

inline constexpr const char* kDefaultEmojiFont = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf";
inline constexpr const char* kDefaultEmojiTestFile = "/usr/share/unicode/emoji/emoji-test.txt";
inline constexpr std::array<const char*, 5> kSkinTones = {
    "light skin tone", "medium-light skin tone", "medium skin tone", "medium-dark skin tone",
    "dark skin tone"};

struct EmojiOptions {
  int resolution = 64;                                  // output is resolution x resolution
  std::array<uint8_t, 3> background = {255, 255, 255};  // sRGB
  Split split = Split::Train;
  std::string font_path = kDefaultEmojiFont;
  std::string test_file_path = kDefaultEmojiTestFile;
  bool prerender = false;  // render the whole split into memory in the constructor
};

// One fully-qualified line of emoji-test.txt.
struct EmojiEntry {
  std::vector<char32_t> codepoints;
  std::string emoji;          // the sequence as UTF-8
  std::string version;        // "E12.1"
  std::string name;           // "woman firefighter: medium skin tone"
  std::string group;          // "People & Body"
  std::string subgroup;       // "person-role"
  std::string base_name;      // name without skin tones: "woman firefighter"
  std::string skin_tone;      // "medium skin tone"; "" if none; "a, b" for two-person emoji
  bool held_out = false;      // in Split::HeldOut (rule above)
};

// Parses every fully-qualified line of emoji-test.txt, in file order, and marks the held-out
// entries. LoadError naming the file (and the package unicode-data when it is missing) or the
// malformed line.
std::vector<EmojiEntry> parse_emoji_test(const std::string& path);

// The parsed list restricted to entries the font draws as one glyph, plus what was dropped.
struct EmojiCatalogue {
  std::vector<EmojiEntry> entries;  // drawable, file order
  std::vector<uint32_t> glyphs;     // glyph index of entries[i] in the font
  std::vector<EmojiEntry> excluded; // fully-qualified but not one glyph in this font
  size_t parsed = 0;                // fully-qualified lines in the file
};

// Parsed + shaped, cached per (test file, font) for the life of the process.
std::shared_ptr<const EmojiCatalogue> load_emoji_catalogue(const std::string& test_file_path,
                                                           const std::string& font_path);

class EmojiDataset : public Dataset {
public:
  explicit EmojiDataset(EmojiOptions options = {});
  ~EmojiDataset() override;
  EmojiDataset(const EmojiDataset&) = delete;
  EmojiDataset& operator=(const EmojiDataset&) = delete;

  std::string name() const override { return "emoji"; }
  size_t size() const override { return indices_.size(); }
  // Caption is the CLDR name; meta: codepoints (hex strings), emoji, name, group, subgroup,
  // base_name, skin_tone, version, held_out, glyph. Thread-safe.
  Sample get(size_t index) const override;
  bool flip_allowed(const Sample& sample) const override;

  const EmojiOptions& options() const { return options_; }
  const EmojiCatalogue& catalogue() const { return *catalogue_; }
  const EmojiEntry& entry(size_t index) const;  // entry behind get(index)

  // The rule documented above, on a name and subgroup.
  static bool flip_allowed_for(const std::string& name, const std::string& subgroup);

private:
  struct Font;
  io::Image render(size_t catalogue_index) const;

  EmojiOptions options_;
  std::shared_ptr<const EmojiCatalogue> catalogue_;
  std::vector<size_t> indices_;         // split -> catalogue index
  std::unique_ptr<Font> font_;          // pool of FreeType faces, one per concurrent get()
  std::vector<io::Image> prerendered_;  // empty unless options.prerender
};

}  // namespace genvis::data
