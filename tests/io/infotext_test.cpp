#include "io/infotext.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>

namespace genvis::io {

// Readable failure messages.
void PrintTo(const GenerationParameters& p, std::ostream* os) {
  const auto opt = [](const auto& v) { return v ? std::to_string(*v) : std::string("unset"); };
  *os << "{prompt=\"" << p.prompt << "\" negative=\"" << p.negative_prompt << "\" steps=" << opt(p.steps)
      << " sampler=\"" << p.sampler << "\" schedule=\"" << p.schedule << "\" cfg=" << opt(p.cfg_scale)
      << " seed=" << opt(p.seed) << " size=" << opt(p.width) << "x" << opt(p.height) << " model=\"" << p.model
      << "\" hash=\"" << p.model_hash << "\" extra=[";
  for (const auto& [k, v] : p.extra) *os << "(\"" << k << "\", \"" << v << "\")";
  *os << "]}";
}

namespace {

GenerationParameters full_params() {
  GenerationParameters p;
  p.prompt = "a cat on a sofa, best quality";
  p.negative_prompt = "blurry, lowres";
  p.steps = 20;
  p.sampler = "Euler a";
  p.schedule = "Karras";
  p.cfg_scale = 7;
  p.seed = 1234;
  p.width = 512;
  p.height = 512;
  p.model_hash = "abcdef1234";
  p.model = "v1-5";
  p.extra = {{"Denoising strength", "0.75"}, {"Version", "v1.10.1"}};
  return p;
}

TEST(InfotextFormatTest, A1111Layout) {
  EXPECT_EQ(format_infotext(full_params()),
            "a cat on a sofa, best quality\n"
            "Negative prompt: blurry, lowres\n"
            "Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512, "
            "Model hash: abcdef1234, Model: v1-5, Denoising strength: 0.75, Version: v1.10.1");
}

TEST(InfotextFormatTest, OmitsUnsetFieldsAndEmptyNegative) {
  GenerationParameters p;
  p.prompt = "a dog";
  p.steps = 30;
  p.cfg_scale = 7.5;
  p.seed = 18446744073709551615ull;
  EXPECT_EQ(format_infotext(p), "a dog\nSteps: 30, CFG scale: 7.5, Seed: 18446744073709551615");
  p.width = 640;  // Size needs both
  EXPECT_EQ(format_infotext(p), "a dog\nSteps: 30, CFG scale: 7.5, Seed: 18446744073709551615");
  EXPECT_EQ(format_infotext(GenerationParameters{}), "");
  GenerationParameters only_prompt;
  only_prompt.prompt = "  just a prompt \n";
  EXPECT_EQ(format_infotext(only_prompt), "just a prompt");  // A1111 strips the whole text
  GenerationParameters no_prompt = full_params();
  no_prompt.prompt.clear();
  no_prompt.negative_prompt.clear();
  EXPECT_EQ(format_infotext(no_prompt).substr(0, 10), "Steps: 20,");
}

TEST(InfotextFormatTest, NumbersAsA1111PrintsThem) {
  GenerationParameters p;
  for (const auto& [value, text] : std::vector<std::pair<double, std::string>>{
           {7, "7"}, {7.5, "7.5"}, {0.1, "0.1"}, {12.25, "12.25"}, {-1, "-1"}, {1e-7, "1e-07"}}) {
    p.cfg_scale = value;
    EXPECT_EQ(format_infotext(p), "CFG scale: " + text);
  }
  p = {};
  p.steps = -3;
  EXPECT_EQ(format_infotext(p), "Steps: -3");
}

TEST(InfotextFormatTest, QuotesLikeJsonDumps) {
  EXPECT_EQ(quote_infotext_value("Euler a"), "Euler a");
  EXPECT_EQ(quote_infotext_value("a, b"), "\"a, b\"");
  EXPECT_EQ(quote_infotext_value("foo: 1a2b"), "\"foo: 1a2b\"");
  EXPECT_EQ(quote_infotext_value("two\nlines"), "\"two\\nlines\"");
  EXPECT_EQ(quote_infotext_value("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(quote_infotext_value("back\\slash, tab\t, bell\x07"), "\"back\\\\slash, tab\\t, bell\\u0007\"");
  EXPECT_EQ(quote_infotext_value("\xE7\x8C\xAB: \xF0\x9F\x90\xB1"), "\"\xE7\x8C\xAB: \xF0\x9F\x90\xB1\"");  // no \u escapes
  EXPECT_EQ(quote_infotext_value(""), "\"\"");
  EXPECT_EQ(quote_infotext_value(" padded"), "\" padded\"");
  EXPECT_EQ(quote_infotext_value("padded "), "\"padded \"");
  EXPECT_EQ(quote_infotext_value("back\\slash"), "back\\slash");
}

TEST(InfotextParseTest, RealA1111Text) {
  const std::string text =
      "masterpiece, best quality, 1girl, <lora:foo:0.8>\n"
      "Negative prompt: (worst quality:1.4), lowres\n"
      "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 2807533217, Size: 512x768, Model hash: 7f96a1a9ca, "
      "Model: anything-v5, Denoising strength: 0.5, Clip skip: 2, Hires upscale: 2, Hires upscaler: Latent, "
      "Lora hashes: \"foo: 1a2b3c4d5e6f\", Version: v1.6.0";
  const GenerationParameters p = parse_infotext(text);
  EXPECT_EQ(p.prompt, "masterpiece, best quality, 1girl, <lora:foo:0.8>");
  EXPECT_EQ(p.negative_prompt, "(worst quality:1.4), lowres");
  EXPECT_EQ(p.steps, 28);
  EXPECT_EQ(p.sampler, "DPM++ 2M Karras");
  EXPECT_EQ(p.schedule, "");
  EXPECT_EQ(p.cfg_scale, 7.5);
  EXPECT_EQ(p.seed, 2807533217u);
  EXPECT_EQ(p.width, 512);
  EXPECT_EQ(p.height, 768);
  EXPECT_EQ(p.model_hash, "7f96a1a9ca");
  EXPECT_EQ(p.model, "anything-v5");
  const std::vector<std::pair<std::string, std::string>> extra = {
      {"Denoising strength", "0.5"}, {"Clip skip", "2"},  {"Hires upscale", "2"},
      {"Hires upscaler", "Latent"},  {"Lora hashes", "foo: 1a2b3c4d5e6f"}, {"Version", "v1.6.0"}};
  EXPECT_EQ(p.extra, extra);
}

TEST(InfotextParseTest, LastLineWithFewerThanThreePairsIsPrompt) {
  const GenerationParameters p = parse_infotext("a cat\nStyle: cute, Mood: calm");
  EXPECT_EQ(p.prompt, "a cat\nStyle: cute, Mood: calm");
  EXPECT_FALSE(p.steps);
  EXPECT_TRUE(p.extra.empty());
  EXPECT_EQ(parse_infotext("only a prompt").prompt, "only a prompt");
  EXPECT_EQ(parse_infotext("").prompt, "");
}

TEST(InfotextParseTest, MultiLinePromptAndNegative) {
  const GenerationParameters p = parse_infotext(
      "  line one  \n\nline three\nNegative prompt:   neg one \n  neg two\nSteps: 5, Seed: 9, Size: 64x32");
  EXPECT_EQ(p.prompt, "line one\n\nline three");
  EXPECT_EQ(p.negative_prompt, "neg one\nneg two");
  EXPECT_EQ(p.steps, 5);
  EXPECT_EQ(p.seed, 9u);
  EXPECT_EQ(p.width, 64);
  EXPECT_EQ(p.height, 32);
  const GenerationParameters q = parse_infotext("Negative prompt: only negative\nSteps: 5, Seed: 9, Size: 64x32");
  EXPECT_EQ(q.prompt, "");
  EXPECT_EQ(q.negative_prompt, "only negative");
}

TEST(InfotextParseTest, DictSemanticsAndBadValues) {
  const GenerationParameters p =
      parse_infotext("p\nAa: 1, Steps: x, Bb: , Seed: -1, Aa: 2, Size: 5x, CFG scale: nan, Steps: 12, Model: \"\"");
  EXPECT_EQ(p.steps, 12);  // the later value wins
  EXPECT_FALSE(p.seed);
  EXPECT_FALSE(p.cfg_scale);
  EXPECT_EQ(p.model, "");
  const std::vector<std::pair<std::string, std::string>> extra = {
      {"Aa", "2"}, {"Seed", "-1"}, {"Size", "5x"}, {"CFG scale", "nan"}};  // "Bb" had no value
  EXPECT_EQ(p.extra, extra);
}

TEST(InfotextParseTest, QuotedValues) {
  const GenerationParameters p = parse_infotext(
      "p\nK1: \"a, b\", K2: \"x\" y, K3: \"a\" \"b\", K4: \"\\u00e9\\ud83d\\udc31\\/\\n\", K5: \"\\ud800\", "
      "K6: \"unterminated, K7: \"raw\tcontrol\"");
  const std::vector<std::pair<std::string, std::string>> extra = {
      {"K1", "a, b"},
      {"K2", "\"x\" y"},
      {"K3", "\"a\" \"b\""},
      {"K4", "\xC3\xA9\xF0\x9F\x90\xB1/\n"},
      {"K5", "\xEF\xBF\xBD"},
      {"K6", "\"unterminated"},
      {"K7", "\"raw\tcontrol\""}};
  EXPECT_EQ(p.extra, extra);
}

TEST(InfotextParseTest, KeysFollowTheA1111Pattern) {
  // Keys start with a word character, may hold spaces, '-' and '/', and need 2+ characters
  // ("x" is no key).
  const GenerationParameters p = parse_infotext("p\nx: 1, ADetailer model/2: face_yolov8n.pt, Hires-fix : on, "
                                                "\xC3\xA9t\xC3\xA9: summer, -bad: 1, junk, Steps: 3");
  const std::vector<std::pair<std::string, std::string>> extra = {
      {"ADetailer model/2", "face_yolov8n.pt"}, {"Hires-fix ", "on"}, {"\xC3\xA9t\xC3\xA9", "summer"}, {"bad", "1"}};
  EXPECT_EQ(p.extra, extra);
  EXPECT_EQ(p.steps, 3);
}

size_t pair_count(const GenerationParameters& p) {
  return (p.steps ? 1 : 0) + !p.sampler.empty() + !p.schedule.empty() + (p.cfg_scale ? 1 : 0) + (p.seed ? 1 : 0) +
         (p.width && p.height ? 1 : 0) + !p.model_hash.empty() + !p.model.empty() + p.extra.size();
}

// The fuzz target's property: parse(format(p)) == p for 3+ pairs, else a fixed point within 3
// steps plus one per line.
void expect_stable(const std::string& text) {
  GenerationParameters p = parse_infotext(text);
  const std::string first = format_infotext(p);
  const auto max_steps = 3 + std::count(first.begin(), first.end(), '\n');
  for (int step = 0;; ++step) {
    const std::string formatted = format_infotext(p);
    GenerationParameters next = parse_infotext(formatted);
    if (pair_count(p) >= 3) {
      EXPECT_EQ(next, p) << text;
    }
    if (next == p) {
      EXPECT_EQ(format_infotext(next), formatted);
      return;
    }
    ASSERT_LT(step, max_steps) << text;
    p = std::move(next);
  }
}

TEST(InfotextFuzzRegressionTest, NegativePromptLineGainsAPairWhenJoined) {
  // "Negative prompt:" alone on a line, the next line with 2 pairs: formatting joins them into
  // one line with 3 matches, which A1111 then reads as parameters; stable one step later.
  const char kText[] = "p\nNegative prompt:   \n  n\xE5gy, K4:\0\0 u\\\"00e9, Steps:";
  const std::string text(kText, sizeof kText - 1);
  const GenerationParameters p1 = parse_infotext(text);
  EXPECT_EQ(p1.negative_prompt, "n\xEF\xBF\xBDgy, K4:" + std::string("\0\0", 2) + " u\\\"00e9, Steps:");
  EXPECT_EQ(pair_count(p1), 0u);
  expect_stable(text);
}

TEST(InfotextFuzzRegressionTest, LinesOfEmptyPairsVanishOnePerStep) {
  // As in A1111: a last line of 3+ matches whose values are all empty is consumed as the
  // parameter line and yields nothing, so the line above becomes the last line next time.
  const std::string text = "p\nAa: , Bb: , Cc: \nDd: , Ee: , Ff: ";
  const GenerationParameters p1 = parse_infotext(text);
  EXPECT_EQ(p1.prompt, "p\nAa: , Bb: , Cc:");
  EXPECT_TRUE(p1.extra.empty());
  const GenerationParameters p2 = parse_infotext(format_infotext(p1));
  EXPECT_EQ(p2.prompt, "p");
  expect_stable(text);
}

TEST(InfotextParseTest, ArbitraryBytesNeverThrow) {
  std::mt19937 rng(42);
  const std::string alphabet = "ab :,\"\\\n\r\tSteps:Negative prompt:x1\xC3\xA9\xFF\x80";
  for (int i = 0; i < 3000; ++i) {
    std::string s(rng() % 200, ' ');
    for (auto& c : s) c = i % 2 ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
    ASSERT_NO_THROW(expect_stable(s));
  }
  EXPECT_EQ(parse_infotext("bad \xFF utf8").prompt, "bad \xEF\xBF\xBD utf8");
  EXPECT_EQ(parse_infotext(std::string("nul\0byte", 8)).prompt, std::string("nul\0byte", 8));
}

TEST(InfotextParseTest, LinearTimeOnPathologicalLines) {
  const auto start = std::chrono::steady_clock::now();
  parse_infotext("p\n" + std::string(1 << 20, 'a'));
  std::string quotes;
  for (int i = 0; i < 50000; ++i) quotes += "k: \"x, ";
  parse_infotext("p\n" + quotes);
  std::string escapes = "p\nk: \"";
  escapes += std::string(1 << 20, '\\');
  parse_infotext(escapes);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

std::vector<GenerationParameters> round_trip_cases() {
  std::vector<GenerationParameters> cases;
  cases.push_back(full_params());
  GenerationParameters p = full_params();
  p.negative_prompt.clear();
  cases.push_back(p);
  p = full_params();
  p.prompt = "first line\nsecond: line, with \"quotes\"\n\n\xE7\x8C\xAB \xF0\x9F\x90\xB1 emoji";
  p.negative_prompt = "neg line 1\nneg, line: 2";
  cases.push_back(p);
  p = full_params();
  p.prompt.clear();
  cases.push_back(p);
  p = full_params();
  p.sampler = "Sampler, with: \"everything\"\nand more \\ \t \x01";
  p.model = "my model: v2";
  p.model_hash = "\"";
  p.schedule.clear();
  p.extra = {{"Lora hashes", "foo: 1a2b, bar: 3c4d"},
             {"Empty", ""},
             {"Spaces", "  both ends  "},
             {"Unicode", "\xC3\xA9t\xC3\xA9 \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC"},
             {"Size-like", "1024x1024"},
             {"Json", "{\"a\": [1, 2]}"},
             {"Nested", "\"already quoted\""}};
  cases.push_back(p);
  p = {};
  p.prompt = "x";
  p.steps = 1;
  p.cfg_scale = 0.30000000000000004;
  p.seed = 0;
  cases.push_back(p);
  p = {};
  p.extra = {{"Aa", "1"}, {"Bb", "2"}, {"Cc", "3"}};
  cases.push_back(p);
  p = full_params();
  p.width = 0;
  p.height = 2147483647;
  p.steps = -9223372036854775807 - 1;
  p.cfg_scale = -1e300;
  cases.push_back(p);
  return cases;
}

TEST(InfotextRoundTripTest, FormatThenParseIsIdentity) {
  for (const auto& p : round_trip_cases()) {
    const std::string text = format_infotext(p);
    EXPECT_EQ(parse_infotext(text), p) << text;
    EXPECT_EQ(format_infotext(parse_infotext(text)), text);
  }
}

TEST(InfotextRoundTripTest, FewerThanThreePairsBecomePrompt) {
  GenerationParameters p;
  p.prompt = "x";
  p.steps = 20;
  p.seed = 1;
  const GenerationParameters back = parse_infotext(format_infotext(p));
  EXPECT_EQ(back.prompt, "x\nSteps: 20, Seed: 1");  // what A1111 reads too
  EXPECT_EQ(parse_infotext(format_infotext(back)), back);
}

// Fuzz regression: A1111 strips "Negative prompt:" from every negative line, so a line holding it
// twice loses one marker per parse and then stays fixed.
TEST(InfotextParseTest, RepeatedNegativePromptMarkersAreStrippedPerLine) {
  const auto p = parse_infotext("p\nNegative prompt: a\nNegative prompt: Negative prompt: b\nSteps: 1, Sampler: x, Seed: 2");
  EXPECT_EQ(p.prompt, "p");
  EXPECT_EQ(p.negative_prompt, "a\nNegative prompt: b");
  const auto q = parse_infotext(format_infotext(p));
  EXPECT_EQ(q.negative_prompt, "a\nb");
  EXPECT_EQ(parse_infotext(format_infotext(q)), q);
}

}  // namespace
}  // namespace genvis::io
