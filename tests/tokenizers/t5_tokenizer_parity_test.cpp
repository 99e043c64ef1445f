// T5/UMT5 SentencePiece tokenizer against the fixture case umt5_tokenizer (transformers' slow
// T5Tokenizer, sentencepiece 0.1.97): every prompt's pieces and ids, the padded ids and attention
// mask at the manifest's max_length, Wan's cleaned text and its ids, and the legacy=False ids.
// Sizes, ids and lengths are read from the manifest and the fixture files.
#include "io/weights.h"
#include "support/test_support.h"
#include "tokenizers/t5_tokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace genvis::tokenizers {
namespace {

using json = nlohmann::json;

struct TokenizerCase {
  json manifest;
  std::string folder;  // the fixture's tokenizer/ folder
  std::string file(const std::string& suffix) const {
    for (const auto& f : manifest.at("files"))
      if (f.get<std::string>().ends_with(suffix)) return test::fixtures_dir() + "/" + f.get<std::string>();
    ADD_FAILURE() << "umt5_tokenizer lists no file ending in " << suffix;
    return {};
  }
};

TokenizerCase open_case() {
  TokenizerCase c;
  c.manifest = test::fixture_case("umt5_tokenizer");
  c.folder = std::filesystem::path(c.file("spiece.model")).parent_path().string();
  return c;
}

json load_rows(const TokenizerCase& c) {
  std::ifstream in(c.file("_prompts.json"));
  return json::parse(in);
}

TEST(T5TokenizerParity, SettingsMatchManifest) {
  GENVIS_REQUIRE_FIXTURES();
  const TokenizerCase c = open_case();
  const json& config = c.manifest.at("config");
  const T5Tokenizer tok = T5Tokenizer::load(c.folder);
  EXPECT_TRUE(tok.legacy());
  EXPECT_EQ(tok.sentencepiece().size(), config.at("spm_vocab_size").get<int64_t>());
  EXPECT_EQ(tok.size(), config.at("len_tokenizer").get<int64_t>());
  EXPECT_EQ(tok.pad_id(), config.at("pad_token_id").get<int64_t>());
  EXPECT_EQ(tok.eos_id(), config.at("eos_token_id").get<int64_t>());
  EXPECT_EQ(tok.unk_id(), config.at("unk_token_id").get<int64_t>());
  // <extra_id_i> = spm_vocab_size + extra_ids - 1 - i
  const int64_t spm = config.at("spm_vocab_size").get<int64_t>(), extra = config.at("extra_ids").get<int64_t>();
  for (int64_t i = 0; i < extra; ++i)
    EXPECT_EQ(tok.token_to_id("<extra_id_" + std::to_string(i) + ">"), spm + extra - 1 - i) << i;
}

TEST(T5TokenizerParity, AllFixturePrompts) {
  GENVIS_REQUIRE_FIXTURES();
  const TokenizerCase c = open_case();
  const T5Tokenizer tok = T5Tokenizer::load(c.folder);
  const T5Tokenizer non_legacy = T5Tokenizer::load(c.folder, {.legacy = false});
  EXPECT_FALSE(non_legacy.legacy());
  const json rows = load_rows(c);
  auto ids_file = io::open_weights(c.file("_ids.safetensors"));
  const at::Tensor input_ids = ids_file->load("input_ids"), attention_mask = ids_file->load("attention_mask");
  const at::Tensor wan_input_ids = ids_file->load("wan_input_ids"), wan_attention_mask = ids_file->load("wan_attention_mask");
  const int64_t max_length = c.manifest.at("config").at("max_length").get<int64_t>();
  ASSERT_EQ(input_ids.size(0), static_cast<int64_t>(rows.size()));
  ASSERT_EQ(input_ids.size(1), max_length);

  int matched = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const auto idx = static_cast<int64_t>(i);
    const std::string text = r.at("text").get<std::string>();
    SCOPED_TRACE("prompt " + std::to_string(i) + ": " + text);
    const auto pieces = tok.tokenize(text);
    const auto ids = tok.encode(text);
    const T5Encoding padded = tok.encode_padded(text, max_length);
    const std::string cleaned = prompt_clean(text);
    const T5Encoding wan = tok.encode_padded(cleaned, max_length);
    const auto legacy_false = non_legacy.encode(text);
    EXPECT_EQ(pieces, r.at("pieces").get<std::vector<std::string>>());
    EXPECT_EQ(ids, r.at("ids").get<std::vector<int64_t>>());
    EXPECT_EQ(padded.input_ids, test::tensor_row(input_ids, idx));
    EXPECT_EQ(padded.attention_mask, test::tensor_row(attention_mask, idx));
    EXPECT_EQ(cleaned, r.at("wan_clean_text").get<std::string>());
    EXPECT_EQ(tok.encode(cleaned), r.at("wan_ids").get<std::vector<int64_t>>());
    EXPECT_EQ(wan.input_ids, test::tensor_row(wan_input_ids, idx));
    EXPECT_EQ(wan.attention_mask, test::tensor_row(wan_attention_mask, idx));
    EXPECT_EQ(legacy_false, r.at("legacy_false_ids").get<std::vector<int64_t>>());
    const bool ok = pieces == r.at("pieces").get<std::vector<std::string>>() &&
                    ids == r.at("ids").get<std::vector<int64_t>>() && padded.input_ids == test::tensor_row(input_ids, idx) &&
                    padded.attention_mask == test::tensor_row(attention_mask, idx) &&
                    cleaned == r.at("wan_clean_text").get<std::string>() && wan.input_ids == test::tensor_row(wan_input_ids, idx) &&
                    wan.attention_mask == test::tensor_row(wan_attention_mask, idx) &&
                    legacy_false == r.at("legacy_false_ids").get<std::vector<int64_t>>();
    matched += ok ? 1 : 0;
  }
  std::cout << "[parity] T5 tokenizer: " << matched << "/" << rows.size() << " prompts match exactly\n";
  EXPECT_EQ(matched, static_cast<int>(rows.size()));
}

// The same ids from transformers' older files: no added_tokens_decoder in tokenizer_config.json,
// the special tokens from special_tokens_map.json and the sentinels' ids from added_tokens.json.
TEST(T5TokenizerParity, OlderFilesWithoutAddedTokensDecoder) {
  GENVIS_REQUIRE_FIXTURES();
  const TokenizerCase c = open_case();
  test::TempDir dir;
  for (const char* name : {"spiece.model", "special_tokens_map.json", "added_tokens.json"})
    std::filesystem::copy_file(c.folder + "/" + name, dir.file(name));
  json config = json::parse(test::read_bytes(c.folder + "/tokenizer_config.json"));
  config.erase("added_tokens_decoder");
  test::write_bytes(dir.file("tokenizer_config.json"), config.dump(2));
  const T5Tokenizer tok = T5Tokenizer::load(dir.path());
  const T5Tokenizer reference = T5Tokenizer::load(c.folder);
  EXPECT_EQ(tok.size(), reference.size());
  for (const auto& r : load_rows(c)) EXPECT_EQ(tok.encode(r.at("text").get<std::string>()), r.at("ids").get<std::vector<int64_t>>());
}

}  // namespace
}  // namespace genvis::tokenizers
