// Our own BPE vocabulary: trained deterministically, saved as a tokenizer folder, read back by
// CLIPTokenizer, reproducing the trainer's segmentation; any text still encodes.
#include "core/error.h"
#include "support/test_support.h"
#include "tokenizers/bpe_trainer.h"
#include "tokenizers/clip_tokenizer.h"

namespace genvis::tokenizers {
namespace {

std::vector<std::string> corpus() {
  std::vector<std::string> texts;
  const char* colours[] = {"red", "green", "blue", "yellow", "purple"};
  const char* shapes[] = {"circle", "square", "triangle", "star", "heart"};
  for (const char* c : colours)
    for (const char* s : shapes) {
      texts.push_back(std::string("a ") + c + " " + s + " on a white background");
      texts.push_back(std::string("a small ") + c + " " + s + ", left of a large one");
    }
  return texts;
}

TEST(BPETrainer, TrainsSavesAndLoadsAsAClipTokenizer) {
  const BPEVocabulary v = train_bpe(corpus(), {600, 2});
  EXPECT_LE(v.tokens.size(), 600u);
  EXPECT_GT(v.merges.size(), 20u);
  EXPECT_EQ(v.tokens.size(), 514 + v.merges.size());
  EXPECT_EQ(v.tokens.back(), "<|endoftext|>");
  EXPECT_EQ(train_bpe(corpus(), {600, 2}).merges, v.merges);  // deterministic

  test::TempDir dir;
  save_tokenizer_folder(v, dir.file("tokenizer"));
  const CLIPTokenizer tok = CLIPTokenizer::load(dir.file("tokenizer"));
  EXPECT_EQ(tok.vocab_size(), static_cast<int64_t>(v.tokens.size()));
  EXPECT_EQ(tok.eos_id(), static_cast<int64_t>(v.tokens.size()) - 1);
  EXPECT_EQ(tok.bos_id(), static_cast<int64_t>(v.tokens.size()) - 2);
  // Frequent words become single tokens.
  const auto ids = tok.encode("a red triangle");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(*tok.id_to_token(ids[1]), "red</w>");
  EXPECT_EQ(*tok.id_to_token(ids[2]), "triangle</w>");
  // Unseen words and any Unicode still encode (byte fallback) and decode back.
  for (const std::string text : {"a zebra", "naïve café 🍎", "x"}) {
    const auto e = tok.encode(text);
    EXPECT_FALSE(e.empty());
    EXPECT_EQ(tok.decode(e), clip_clean_text(text) + " ") << text;
  }
  EXPECT_EQ(tok.encode_padded("a red star", tok.eos_id()).size(), 77u);
}

TEST(BPETrainer, MinFrequencyStopsMergingAndBadOptionsAreRefused) {
  const BPEVocabulary rare = train_bpe({"abcdef"}, {4096, 2});
  EXPECT_TRUE(rare.merges.empty());  // every pair occurs once
  const BPEVocabulary once = train_bpe({"abcdef"}, {4096, 1});
  EXPECT_EQ(once.merges.size(), 5u);  // a b c d e f</w> -> one symbol
  EXPECT_THROW(train_bpe({"x"}, {100, 2}), UsageError);
  EXPECT_THROW(train_bpe({"x"}, {1000, 0}), UsageError);
}

}  // namespace
}  // namespace genvis::tokenizers
