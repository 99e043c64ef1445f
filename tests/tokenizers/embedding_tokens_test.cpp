// Textual-inversion names in prompts: longest match first, whole-text names cut before BPE, and
// an embedding never split across two 75-token chunks (AUTOMATIC1111's rule).
#include "core/error.h"
#include "support/test_support.h"
#include "tokenizers/embedding_tokens.h"
#include "tokenizers/prompt_weights.h"

namespace genvis::tokenizers {
namespace {

TEST(EmbeddingTokens, LongestNameFirstAndReplacement) {
  EmbeddingTokens e;
  e.add("ab", {1, 2}, 100, 1);
  e.add("abc", {1, 2, 3}, 200, 2);
  EXPECT_EQ(e.splice({9, 1, 2, 3, 1, 2, 4}), (std::vector<int64_t>{9, 200, 201, 100, 4}));
  e.add("ab", {1, 2}, 300, 3);  // the same name again replaces the entry
  EXPECT_EQ(e.entries().size(), 2u);
  EXPECT_EQ(e.splice({1, 2}), (std::vector<int64_t>{300, 301, 302}));
  EXPECT_THROW(e.add("", {1}, 1, 1), UsageError);
  EXPECT_THROW(e.add("x", {1}, 1, 0), UsageError);
}

TEST(EmbeddingTokens, WholeTextNamesAreCutBeforeBpe) {
  EmbeddingTokens e;
  e.add("<cat-toy>", {5}, 100, 1, /*whole_text=*/true);
  const auto pieces = e.split_text("a <cat-toy>, on <cat-toy>");
  ASSERT_EQ(pieces.size(), 4u);
  EXPECT_EQ(pieces[0].text, "a ");
  EXPECT_EQ(pieces[1].entry, e.find("<cat-toy>"));
  EXPECT_EQ(pieces[2].text, ", on ");
  EXPECT_EQ(pieces[3].entry, e.find("<cat-toy>"));
  EXPECT_EQ(e.split_text("nothing here").size(), 1u);
}

TEST(EmbeddingTokens, AnEmbeddingNeverStraddlesTwoChunks) {
  const auto tokenizer = CLIPTokenizer::load(test::clip_vocab());
  EmbeddingTokens e;
  e.add("zzstyle", tokenizer.encode("zzstyle"), 49408, 3);
  std::string prompt;
  for (int i = 0; i < 74; ++i) prompt += "cat ";  // 74 tokens: 1 free slot, the embedding needs 3
  prompt += "zzstyle";
  ChunkOptions o;
  o.embeddings = &e;
  o.comma_padding_backtrack = 0;
  const WeightedTokens t = tokenize_weighted(tokenizer, prompt, o);
  ASSERT_EQ(t.chunks.size(), 2u);
  EXPECT_EQ(t.chunks[0][75], tokenizer.eos_id());  // chunk 1 closed early: 74 cats, then EOS padding
  EXPECT_EQ(t.chunks[0][76], tokenizer.eos_id());
  EXPECT_EQ(std::vector<int64_t>(t.chunks[1].begin() + 1, t.chunks[1].begin() + 4), (std::vector<int64_t>{49408, 49409, 49410}));
  // Emphasis applies to the vectors like to any token.
  const WeightedTokens w = tokenize_weighted(tokenizer, "a (zzstyle:1.5) cat", o);
  EXPECT_EQ(std::vector<float>(w.weights[0].begin() + 2, w.weights[0].begin() + 5), (std::vector<float>{1.5f, 1.5f, 1.5f}));
}

}  // namespace
}  // namespace genvis::tokenizers
