// CLIP BPE against the reference fixture (openai/CLIP simple_tokenizer.py, ftfy 6.3.1): 60 prompts,
// unpadded ids, both padded forms, and the cleaned text.
#include "io/weights.h"
#include "support/test_support.h"
#include "tokenizers/clip_tokenizer.h"

#include <nlohmann/json.hpp>

#include <fstream>

namespace genvis::tokenizers {
namespace {

std::string vocab_path() { return test::shared_dir() + "/data/bpe_simple_vocab_16e6.txt.gz"; }

nlohmann::json load_rows() {
  std::ifstream in(test::fixtures_dir() + "/tokenizer/clip_bpe_prompts.json");
  return nlohmann::json::parse(in);
}

TEST(CLIPTokenizerParity, AllFixturePrompts) {
  GENVIS_REQUIRE_FIXTURES();
  const CLIPTokenizer tok = CLIPTokenizer::load(vocab_path());
  const nlohmann::json rows = load_rows();
  auto weights = io::open_weights(test::fixtures_dir() + "/tokenizer/clip_bpe_ids.safetensors");
  const at::Tensor pad_eos = weights->load("input_ids_pad_eos");
  const at::Tensor pad_zero = weights->load("input_ids_pad_zero");
  const at::Tensor num_tokens = weights->load("num_tokens").to(at::kLong);
  ASSERT_EQ(rows.size(), 60u);
  ASSERT_EQ(pad_eos.size(0), 60);

  int matched = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const std::string text = r["text"].get<std::string>();
    const auto expected = r["ids"].get<std::vector<int64_t>>();
    const auto ids = tok.encode(text);
    const auto eos = tok.encode_padded(text, CLIPTokenizer::kEosId);
    const auto zero = tok.encode_padded(text, 0);
    const auto idx = static_cast<int64_t>(i);
    const bool ok = ids == expected && eos == test::tensor_row(pad_eos, idx) && zero == test::tensor_row(pad_zero, idx) &&
                    static_cast<int64_t>(ids.size()) == num_tokens[idx].item<int64_t>();
    EXPECT_EQ(ids, expected) << "row " << i << ": " << text;
    EXPECT_EQ(eos, test::tensor_row(pad_eos, idx)) << "row " << i;
    EXPECT_EQ(zero, test::tensor_row(pad_zero, idx)) << "row " << i;
    EXPECT_EQ(clip_clean_text(text), r["cleaned_text"].get<std::string>()) << "row " << i;
    matched += ok ? 1 : 0;
  }
  std::cout << "[parity] CLIP BPE: " << matched << "/" << rows.size() << " prompts match exactly\n";
  EXPECT_EQ(matched, 60);
}

TEST(CLIPTokenizerParity, BpeSymbolsMatchFixture) {
  GENVIS_REQUIRE_FIXTURES();
  const CLIPTokenizer tok = CLIPTokenizer::load(vocab_path());
  for (const auto& r : load_rows()) {
    const auto symbols = r["bpe_tokens"].get<std::vector<std::string>>();
    std::vector<int64_t> ids;
    for (const auto& s : symbols) {
      const auto id = tok.token_to_id(s);
      ASSERT_TRUE(id.has_value()) << s;
      ids.push_back(*id);
    }
    EXPECT_EQ(ids, r["ids"].get<std::vector<int64_t>>()) << r["text"];
  }
}

}  // namespace
}  // namespace genvis::tokenizers
