// The emoji dataset against the real Debian packages (unicode-data, fonts-noto-color-emoji);
// skipped where they are not installed.
#include "data/emoji.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

namespace genvis::data {
namespace {

bool packages_present() {
  return std::filesystem::exists(kDefaultEmojiTestFile) && std::filesystem::exists(kDefaultEmojiFont);
}

#define REQUIRE_PACKAGES()                                                                      \
  if (!packages_present())                                                                      \
  GTEST_SKIP() << "needs the Debian packages unicode-data and fonts-noto-color-emoji ("         \
               << kDefaultEmojiTestFile << ", " << kDefaultEmojiFont << ")"

EmojiOptions all(int resolution = 32) {
  EmojiOptions o;
  o.split = Split::All;
  o.resolution = resolution;
  return o;
}

// Index in `ds` of the emoji called `name`, or size() if absent.
size_t find(const EmojiDataset& ds, const std::string& name) {
  for (size_t i = 0; i < ds.size(); ++i)
    if (ds.entry(i).name == name) return i;
  return ds.size();
}

double variance(const io::Image& img) {
  double sum = 0, sq = 0;
  for (uint16_t v : img.pixels) sum += v, sq += double(v) * v;
  double n = static_cast<double>(img.pixels.size());
  return sq / n - (sum / n) * (sum / n);
}

double mean_abs_diff(const io::Image& a, const io::Image& b) {
  double d = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) d += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return d / static_cast<double>(a.pixels.size());
}

TEST(Emoji, ParsesEveryFullyQualifiedLine) {
  REQUIRE_PACKAGES();
  // Independent count: lines whose status field is fully-qualified.
  std::ifstream in(kDefaultEmojiTestFile);
  size_t expected = 0;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#' && line.find("; fully-qualified") != std::string::npos)
      ++expected;
  ASSERT_GT(expected, 3000u);

  auto catalogue = load_emoji_catalogue(kDefaultEmojiTestFile, kDefaultEmojiFont);
  EXPECT_EQ(parse_emoji_test(kDefaultEmojiTestFile).size(), expected);
  EXPECT_EQ(catalogue->parsed, expected);
  EXPECT_EQ(catalogue->entries.size() + catalogue->excluded.size(), expected);
  EXPECT_EQ(catalogue->glyphs.size(), catalogue->entries.size());
  EXPECT_LT(catalogue->excluded.size() * 20, expected) << "over 5% not drawable as one glyph";
  std::printf("emoji: %zu fully-qualified, %zu drawn as one glyph, %zu excluded\n", expected,
              catalogue->entries.size(), catalogue->excluded.size());
  // Cached: the same object the second time.
  EXPECT_EQ(load_emoji_catalogue(kDefaultEmojiTestFile, kDefaultEmojiFont), catalogue);

  EmojiDataset ds(all());
  EXPECT_EQ(ds.size(), catalogue->entries.size());
  EXPECT_EQ(ds.name(), "emoji");
}

TEST(Emoji, CaptionAndMeta) {
  REQUIRE_PACKAGES();
  EmojiDataset ds(all());
  size_t i = find(ds, "woman firefighter: medium skin tone");
  ASSERT_LT(i, ds.size());
  Sample s = ds.get(i);
  EXPECT_EQ(s.caption, "woman firefighter: medium skin tone");
  EXPECT_EQ(s.meta["name"], s.caption);
  EXPECT_EQ(s.meta["group"], "People & Body");
  EXPECT_EQ(s.meta["subgroup"], "person-role");
  EXPECT_EQ(s.meta["base_name"], "woman firefighter");
  EXPECT_EQ(s.meta["skin_tone"], "medium skin tone");
  EXPECT_EQ(s.meta["codepoints"], nlohmann::json({"1F469", "1F3FD", "200D", "1F692"}));
  EXPECT_EQ(s.meta["emoji"], "\xF0\x9F\x91\xA9\xF0\x9F\x8F\xBD\xE2\x80\x8D\xF0\x9F\x9A\x92");
  EXPECT_EQ(s.meta["version"], "E4.0");

  Sample apple = ds.get(find(ds, "red apple"));
  EXPECT_EQ(apple.meta["group"], "Food & Drink");
  EXPECT_EQ(apple.meta["subgroup"], "food-fruit");
  EXPECT_EQ(apple.meta["base_name"], "red apple");
  EXPECT_EQ(apple.meta["skin_tone"], "");

  // Two people, two tones: both tones listed, the people kept in the base name.
  size_t kiss = find(ds, "kiss: woman, man, light skin tone, dark skin tone");
  ASSERT_LT(kiss, ds.size());
  EXPECT_EQ(ds.entry(kiss).base_name, "kiss: woman, man");
  EXPECT_EQ(ds.entry(kiss).skin_tone, "light skin tone, dark skin tone");
  EXPECT_EQ(ds.entry(find(ds, "flag: Japan")).base_name, "flag: Japan");

  EXPECT_THROW(ds.get(ds.size()), UsageError);
}

TEST(Emoji, RendersEveryEmojiNonBlankOnTheBackground) {
  REQUIRE_PACKAGES();
  EmojiOptions o = all(64);
  o.background = {20, 200, 60};
  EmojiDataset ds(o);
  auto t0 = std::chrono::steady_clock::now();
  size_t blank = 0, background_corners = 0;
  for (size_t i = 0; i < ds.size(); ++i) {
    Sample s = ds.get(i);
    ASSERT_EQ(s.image.width, 64);
    ASSERT_EQ(s.image.height, 64);
    ASSERT_EQ(s.image.channels, 3);
    ASSERT_EQ(s.image.bit_depth, 8);
    if (variance(s.image) < 50) ++blank;
    int corners = 0;
    for (auto [x, y] : {std::pair{0, 0}, {63, 0}, {0, 63}, {63, 63}})
      corners += s.image.at(x, y, 0) == 20 && s.image.at(x, y, 1) == 200 && s.image.at(x, y, 2) == 60;
    background_corners += corners == 4;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("emoji: rendered %zu at 64 px in %.2f s; %zu with all four corners background\n",
              ds.size(), seconds, background_corners);
  EXPECT_EQ(blank, 0u);
  EXPECT_GT(background_corners * 10, ds.size() * 8) << "fewer than 80% have background corners";
  EXPECT_LT(seconds, 60.0);
}

TEST(Emoji, WhiteBackgroundByDefault) {
  REQUIRE_PACKAGES();
  EmojiDataset ds(all());
  io::Image img = ds.get(find(ds, "grinning face")).image;
  for (int c = 0; c < 3; ++c) EXPECT_EQ(img.at(0, 0, c), 255);
}

TEST(Emoji, RedAppleIsRed) {
  REQUIRE_PACKAGES();
  EmojiDataset ds(all());
  size_t i = find(ds, "red apple");
  ASSERT_LT(i, ds.size());
  io::Image img = ds.get(i).image;
  // Among the pixels that are not the white background, red dominates.
  size_t red = 0, foreground = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      int r = img.at(x, y, 0), g = img.at(x, y, 1), b = img.at(x, y, 2);
      if (r > 245 && g > 245 && b > 245) continue;
      ++foreground;
      red += r > 120 && r > g + 60 && r > b + 60;
    }
  EXPECT_GT(foreground, 300u);
  EXPECT_GT(red * 10, foreground * 6) << red << " of " << foreground << " foreground pixels red";
}

TEST(Emoji, ZWJSequenceIsOneGlyph) {
  REQUIRE_PACKAGES();
  EmojiDataset ds(all());
  size_t zwj = find(ds, "woman firefighter: medium skin tone");
  size_t woman = find(ds, "woman: medium skin tone");
  size_t engine = find(ds, "fire engine");
  ASSERT_LT(zwj, ds.size()) << "excluded: the font did not shape it into one glyph";
  ASSERT_LT(woman, ds.size());
  ASSERT_LT(engine, ds.size());
  Sample s = ds.get(zwj);
  // One glyph of its own, not the woman's or the fire engine's.
  EXPECT_NE(s.meta["glyph"], ds.get(woman).meta["glyph"]);
  EXPECT_NE(s.meta["glyph"], ds.get(engine).meta["glyph"]);
  EXPECT_GT(mean_abs_diff(s.image, ds.get(woman).image), 5.0);
  // Flags (regional-indicator pairs, tag sequences) and keycaps are single glyphs too.
  for (const char* name : {"flag: Japan", "flag: Scotland", "keycap: 7", "rainbow flag"})
    EXPECT_LT(find(ds, name), ds.size()) << name;
}

TEST(Emoji, SkinTonesDiffer) {
  REQUIRE_PACKAGES();
  EmojiDataset ds(all());
  std::vector<io::Image> images = {ds.get(find(ds, "thumbs up")).image};
  for (const char* tone : kSkinTones) {
    size_t i = find(ds, std::string("thumbs up: ") + tone);
    ASSERT_LT(i, ds.size()) << tone;
    images.push_back(ds.get(i).image);
  }
  for (size_t a = 0; a < images.size(); ++a)
    for (size_t b = a + 1; b < images.size(); ++b)
      EXPECT_GT(mean_abs_diff(images[a], images[b]), 2.0) << a << " vs " << b;
}

TEST(Emoji, Deterministic) {
  REQUIRE_PACKAGES();
  EmojiDataset a(all()), b(all());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); i += 97) {
    Sample x = a.get(i), y = b.get(i), z = a.get(i);
    EXPECT_EQ(x.caption, y.caption);
    EXPECT_EQ(x.meta, y.meta);
    EXPECT_EQ(x.image.pixels, y.image.pixels) << i;
    EXPECT_EQ(x.image.pixels, z.image.pixels) << i;
  }
}

TEST(Emoji, ThreadSafeAndPrerenderAgree) {
  REQUIRE_PACKAGES();
  EmojiOptions o = all(16);
  EmojiDataset ds(o);
  std::vector<std::vector<uint16_t>> sequential(ds.size());
  for (size_t i = 0; i < ds.size(); ++i) sequential[i] = ds.get(i).image.pixels;

  std::vector<std::vector<uint16_t>> parallel(ds.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = t; i < ds.size(); i += 4) parallel[i] = ds.get(i).image.pixels;
    });
  for (auto& t : threads) t.join();
  EXPECT_TRUE(parallel == sequential);

  o.prerender = true;
  EmojiDataset pre(o);
  ASSERT_EQ(pre.size(), ds.size());
  size_t same = 0;
  for (size_t i = 0; i < pre.size(); ++i) same += pre.get(i).image.pixels == sequential[i];
  EXPECT_EQ(same, ds.size());
}

TEST(Emoji, HeldOutSplit) {
  REQUIRE_PACKAGES();
  EmojiOptions o = all();
  EmojiDataset every(o);
  o.split = Split::Train;
  EmojiDataset train(o);
  o.split = Split::HeldOut;
  EmojiDataset held(o);

  EXPECT_EQ(train.size() + held.size(), every.size());
  EXPECT_GT(held.size() * 100, every.size() * 2);  // 2..6% of all
  EXPECT_LT(held.size() * 100, every.size() * 6);
  std::printf("emoji: train %zu, heldout %zu (%.1f%%)\n", train.size(), held.size(),
              100.0 * held.size() / every.size());

  std::set<std::string> train_names, train_bases, train_tones;
  for (size_t i = 0; i < train.size(); ++i) {
    const EmojiEntry& e = train.entry(i);
    EXPECT_FALSE(e.held_out);
    train_names.insert(e.name);
    train_bases.insert(e.base_name);
    train_tones.insert(e.skin_tone);
  }
  std::set<std::string> held_tones;
  for (size_t i = 0; i < held.size(); ++i) {
    const EmojiEntry& e = held.entry(i);
    EXPECT_TRUE(e.held_out);
    EXPECT_EQ(train_names.count(e.name), 0u) << e.name;
    // Compositional: the base emoji and the skin tone are each seen in Train, not together.
    EXPECT_EQ(train_bases.count(e.base_name), 1u) << e.name;
    EXPECT_EQ(train_tones.count(e.skin_tone), 1u) << e.name;
    EXPECT_TRUE(e.subgroup == "person-role" || e.subgroup == "person-activity") << e.name;
    held_tones.insert(e.skin_tone);
    EXPECT_EQ(held.get(i).meta["held_out"], true);
  }
  EXPECT_EQ(held_tones.size(), kSkinTones.size());
  // The documented rule, spelled out for the first professions in file order.
  EXPECT_TRUE(every.entry(find(every, "health worker: light skin tone")).held_out);
  EXPECT_TRUE(every.entry(find(every, "man health worker: medium-light skin tone")).held_out);
  EXPECT_FALSE(every.entry(find(every, "health worker: dark skin tone")).held_out);
}

TEST(Emoji, FlipAllowed) {
  REQUIRE_PACKAGES();
  EmojiDataset ds(all());
  auto flip = [&](const std::string& name) {
    size_t i = find(ds, name);
    EXPECT_LT(i, ds.size()) << name;
    return i < ds.size() && ds.flip_allowed(ds.get(i));
  };
  EXPECT_TRUE(flip("grinning face"));
  EXPECT_TRUE(flip("red apple"));
  EXPECT_TRUE(flip("woman firefighter: medium skin tone"));
  EXPECT_FALSE(flip("flag: Japan"));
  EXPECT_FALSE(flip("chequered flag"));
  EXPECT_FALSE(flip("keycap: 7"));
  EXPECT_FALSE(flip("right arrow"));
  EXPECT_FALSE(flip("play button"));
  EXPECT_FALSE(flip("backhand index pointing left"));
  EXPECT_FALSE(flip("input latin uppercase"));
  EXPECT_FALSE(flip("SOS button"));
  EXPECT_FALSE(flip("three o’clock"));
  EXPECT_FALSE(flip("hundred points"));
  size_t not_flippable = 0;
  for (size_t i = 0; i < ds.size(); ++i)
    not_flippable += !EmojiDataset::flip_allowed_for(ds.entry(i).name, ds.entry(i).subgroup);
  EXPECT_GT(not_flippable, 300u);  // every flag at least
  EXPECT_LT(not_flippable, ds.size() / 4);
}

TEST(Emoji, MissingFilesNameThePackage) {
  EmojiOptions o;
  o.test_file_path = "/nonexistent/emoji-test.txt";
  try {
    EmojiDataset ds(o);
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("emoji-test.txt not found"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("install the Debian package unicode-data"),
              std::string::npos) << e.what();
  }
  if (!std::filesystem::exists(kDefaultEmojiTestFile)) GTEST_SKIP() << "needs unicode-data";
  o = EmojiOptions();
  o.font_path = "/nonexistent/NotoColorEmoji.ttf";
  try {
    EmojiDataset ds(o);
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("install the Debian package fonts-noto-color-emoji"),
              std::string::npos) << e.what();
  }
  // Not a font at all.
  o.font_path = kDefaultEmojiTestFile;
  EXPECT_THROW(EmojiDataset{o}, LoadError);
}

TEST(Emoji, BadOptions) {
  EmojiOptions o;
  o.resolution = 0;
  EXPECT_THROW(EmojiDataset{o}, UsageError);
}

TEST(Emoji, MalformedTestFile) {
  auto path = std::filesystem::temp_directory_path() / "genvis_emoji_bad_test.txt";
  {
    std::ofstream out(path);
    out << "# group: Smileys & Emotion\n# subgroup: face-smiling\n"
        << "1F6ZZ ; fully-qualified # ? E1.0 grinning face\n";
  }
  try {
    parse_emoji_test(path.string());
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace genvis::data
