// T5 tokenizer loading errors, padding and truncation rules, Wan's prompt cleaning and the
// SentencePiece module lookup. Tests that need a real spiece.model use the fixture's (and skip
// without it); the bad-input ones need none.
#include "core/error.h"
#include "support/test_support.h"
#include "tokenizers/t5_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>

namespace genvis::tokenizers {
namespace {

using json = nlohmann::json;

std::string fixture_folder() { return test::fixtures_dir() + "/umt5/tokenizer"; }

#define REQUIRE_T5_FIXTURE()                                                                   \
  do {                                                                                         \
    GENVIS_REQUIRE_FIXTURES();                                                                 \
    if (!std::filesystem::is_regular_file(fixture_folder() + "/spiece.model"))                 \
      GTEST_SKIP() << "fixture tokenizer " << fixture_folder() << " is absent";                \
  } while (0)

const T5Tokenizer& fixture_tokenizer() {
  static const T5Tokenizer tok = T5Tokenizer::load(fixture_folder());
  return tok;
}

using test::expect_contains;
using test::load_error;

// A copy of the fixture folder whose tokenizer_config.json is `edit`ed.
void copy_fixture(const test::TempDir& dir, const std::function<void(json&)>& edit = {}) {
  for (const char* name : {"spiece.model", "special_tokens_map.json", "added_tokens.json"}) {
    std::filesystem::remove(dir.file(name));  // the fixture's files are read-only, and so are copies
    std::filesystem::copy_file(fixture_folder() + "/" + name, dir.file(name));
  }
  std::filesystem::remove(dir.file("tokenizer_config.json"));
  json config = json::parse(test::read_bytes(fixture_folder() + "/tokenizer_config.json"));
  if (edit) edit(config);
  test::write_bytes(dir.file("tokenizer_config.json"), config.dump());
}

TEST(T5Tokenizer, MissingFolderOrModelIsALoadError) {
  test::TempDir dir;
  expect_contains(load_error([&] { T5Tokenizer::load(dir.file("nowhere")); }), {"nowhere", "not a tokenizer folder"});
  expect_contains(load_error([&] { T5Tokenizer::load(dir.path()); }), {"spiece.model", "has no spiece.model"});
}

TEST(T5Tokenizer, CorruptModelIsALoadError) {
  test::TempDir dir;
  test::write_bytes(dir.file("spiece.model"), "");
  expect_contains(load_error([&] { T5Tokenizer::load(dir.path()); }), {"spiece.model", "the file is empty"});
  test::write_bytes(dir.file("spiece.model"), "this is not a sentencepiece model");
  expect_contains(load_error([&] { T5Tokenizer::load(dir.path()); }),
                  {"spiece.model", "not a SentencePiece model", "not a serialized ModelProto"});
  test::write_bytes(dir.file("spiece.model"), std::string("\x12\x00", 2));  // a ModelProto without pieces
  expect_contains(load_error([&] { T5Tokenizer::load(dir.path()); }), {"spiece.model", "not a SentencePiece model"});
}

TEST(T5Tokenizer, TruncatedModelIsALoadError) {
  REQUIRE_T5_FIXTURE();
  test::TempDir dir;
  const std::string bytes = test::read_bytes(fixture_folder() + "/spiece.model");
  test::write_bytes(dir.file("spiece.model"), bytes.substr(0, bytes.size() / 2));
  expect_contains(load_error([&] { T5Tokenizer::load(dir.path()); }), {"spiece.model", "not a SentencePiece model"});
}

TEST(T5Tokenizer, BadSettingsAreReportedTogether) {
  REQUIRE_T5_FIXTURE();
  test::TempDir dir;
  copy_fixture(dir, [](json& c) {
    c["legacy"] = "yes";
    c["extra_ids"] = "16";
    c["eos_token"] = 1;
  });
  expect_contains(load_error([&] { T5Tokenizer::load(dir.path()); }),
                  {"tokenizer_config.json", "3 problem(s)", "legacy has the wrong type", "extra_ids has the wrong type",
                   "eos_token must be a token string"});
  copy_fixture(dir, [](json& c) { c["tokenizer_class"] = "CLIPTokenizer"; });
  expect_contains(load_error([&] { T5Tokenizer::load(dir.path()); }), {"\"CLIPTokenizer\" is not a T5 tokenizer"});
  copy_fixture(dir, [](json& c) { c["extra_ids"] = 3; });
  expect_contains(load_error([&] { T5Tokenizer::load(dir.path()); }), {"extra_ids is 3", "<extra_id_N> tokens"});
  test::write_bytes(dir.file("tokenizer_config.json"), "{\"legacy\": tru");
  expect_contains(load_error([&] { T5Tokenizer::load(dir.path()); }), {"tokenizer_config.json", "not valid JSON"});
}

TEST(T5Tokenizer, PaddingTruncationAndEos) {
  REQUIRE_T5_FIXTURE();
  const T5Tokenizer& tok = fixture_tokenizer();
  const std::vector<int64_t> ids = tok.encode("a photo of a cat");
  ASSERT_GT(ids.size(), 3u);
  const auto n = static_cast<int64_t>(ids.size());

  T5Encoding e = tok.encode_padded("a photo of a cat", n + 3);  // ids, </s>, 2 x <pad>
  std::vector<int64_t> expected = ids;
  expected.insert(expected.end(), {tok.eos_id(), tok.pad_id(), tok.pad_id()});
  EXPECT_EQ(e.input_ids, expected);
  std::vector<int64_t> mask(ids.size() + 1, 1);
  mask.insert(mask.end(), {0, 0});
  EXPECT_EQ(e.attention_mask, mask);

  e = tok.encode_padded("a photo of a cat", 3);  // ids[:2] + </s>
  EXPECT_EQ(e.input_ids, (std::vector<int64_t>{ids[0], ids[1], tok.eos_id()}));
  EXPECT_EQ(e.attention_mask, (std::vector<int64_t>{1, 1, 1}));
  e = tok.encode_padded("", 2);
  EXPECT_EQ(e.input_ids, (std::vector<int64_t>{tok.eos_id(), tok.pad_id()}));
  EXPECT_EQ(e.attention_mask, (std::vector<int64_t>{1, 0}));
  e = tok.encode_padded("a photo of a cat", 1);
  EXPECT_EQ(e.input_ids, (std::vector<int64_t>{tok.eos_id()}));

  // Text that already ends with </s> gets no second one (transformers' _add_eos_if_not_present).
  e = tok.encode_padded("a cat</s>", 8);
  const std::vector<int64_t> cat = tok.encode("a cat");
  expected = cat;
  expected.push_back(tok.eos_id());
  expected.resize(8, tok.pad_id());
  EXPECT_EQ(e.input_ids, expected);
  EXPECT_EQ(std::count(e.attention_mask.begin(), e.attention_mask.end(), 1), static_cast<long>(cat.size() + 1));

  EXPECT_THROW(tok.encode_padded("x", 0), UsageError);
}

TEST(T5Tokenizer, SpecialTokenTextIsSplitOut) {
  REQUIRE_T5_FIXTURE();
  const T5Tokenizer& tok = fixture_tokenizer();
  // The sentinels eat the spaces around them (lstrip/rstrip); </s>, <pad>, <unk> do not.
  EXPECT_EQ(tok.encode("cat <extra_id_1> dog"), tok.encode("cat<extra_id_1>dog"));
  const int64_t sentinel = tok.token_to_id("<extra_id_1>");
  std::vector<int64_t> expected = tok.encode("cat");
  expected.push_back(sentinel);
  for (int64_t id : tok.encode("dog")) expected.push_back(id);
  EXPECT_EQ(tok.encode("cat <extra_id_1> dog"), expected);
  EXPECT_EQ(tok.tokenize("<unk><pad></s>"), (std::vector<std::string>{"<unk>", "<pad>", "</s>"}));
  EXPECT_EQ(tok.encode("<unk><pad></s>"), (std::vector<int64_t>{tok.unk_id(), tok.pad_id(), tok.eos_id()}));
  // <extra_id_10> is not <extra_id_1> followed by "0>".
  EXPECT_EQ(tok.encode("<extra_id_10>"), (std::vector<int64_t>{tok.token_to_id("<extra_id_10>")}));
}

TEST(T5Tokenizer, PromptCleanAsWanPipeline) {
  EXPECT_EQ(prompt_clean("  Tom &amp;amp; Jerry\t\n\u00a0 &lt;3  "), "Tom & Jerry <3");
  EXPECT_EQ(prompt_clean("\u201ccurly\u201d \u2018single\u2019"), "\"curly\" 'single'");
  EXPECT_EQ(prompt_clean("\uff21\uff22\uff23\u3000\uff11\uff12"), "ABC 12");     // full width, ideographic space
  EXPECT_EQ(prompt_clean("\ufb01ne \ufb02ower"), "fine flower");                   // ligatures
  EXPECT_EQ(prompt_clean("caf\xc3\x83\xc2\xa9 A\u030a"), "caf\xc3\xa9 \xc3\x85");   // mojibake, NFC
  EXPECT_EQ(prompt_clean("No Lower-Casing"), "No Lower-Casing");
  EXPECT_EQ(prompt_clean("   "), "");
}

TEST(T5Tokenizer, ModuleLookupHonoursTheVariable) {
  const char* old = std::getenv("GENVIS_SENTENCEPIECE_MODULE");
  const std::string saved = old ? old : "";
  ::setenv("GENVIS_SENTENCEPIECE_MODULE", "/nowhere/libgenvis_sentencepiece.so", 1);
  EXPECT_EQ(sentencepiece_module_candidates(), (std::vector<std::string>{"/nowhere/libgenvis_sentencepiece.so"}));
  if (old) ::setenv("GENVIS_SENTENCEPIECE_MODULE", saved.c_str(), 1);
  else ::unsetenv("GENVIS_SENTENCEPIECE_MODULE");
  const auto candidates = sentencepiece_module_candidates();
  EXPECT_GT(candidates.size(), 1u);
  EXPECT_TRUE(std::any_of(candidates.begin(), candidates.end(),
                          [](const std::string& c) { return std::filesystem::is_regular_file(c); }))
      << "no candidate exists: the module is built beside the binaries";
}

}  // namespace
}  // namespace genvis::tokenizers
