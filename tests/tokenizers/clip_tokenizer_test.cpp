// CLIP tokenizer loading, A1111 emphasis parsing, chunking and apply_emphasis.
#include "core/error.h"
#include "support/test_support.h"
#include "tokenizers/clip_tokenizer.h"
#include "tokenizers/prompt_weights.h"

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <fstream>

namespace genvis::tokenizers {
namespace {

using Parsed = std::vector<std::pair<std::string, float>>;

std::string vocab_path() { return test::shared_dir() + "/data/bpe_simple_vocab_16e6.txt.gz"; }

#define REQUIRE_VOCAB()                                                                                  \
  do {                                                                                                   \
    if (!std::ifstream(vocab_path()).good()) GTEST_SKIP() << "vocabulary " << vocab_path() << " is absent"; \
  } while (0)

const CLIPTokenizer& tokenizer() {
  static const CLIPTokenizer tok = CLIPTokenizer::load(vocab_path());
  return tok;
}

std::string gunzip_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

void gzip_file(const std::string& path, const std::string& content) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, content.data(), static_cast<unsigned>(content.size()));
  gzclose(f);
}

template <class F>
std::string load_error_message(F&& f) {
  try {
    f();
  } catch (const LoadError& e) {
    return e.what();
  }
  return "(no LoadError)";
}

// ------------------------------------------------------------ parse_prompt_attention
// Expectations from the parse_prompt_attention docstring in A1111 modules/prompt_parser.py.

TEST(ParsePromptAttention, DocstringExamples) {
  EXPECT_EQ(parse_prompt_attention("normal text"), (Parsed{{"normal text", 1.0f}}));
  EXPECT_EQ(parse_prompt_attention("an (important) word"),
            (Parsed{{"an ", 1.0f}, {"important", 1.1f}, {" word", 1.0f}}));
  EXPECT_EQ(parse_prompt_attention("(unbalanced"), (Parsed{{"unbalanced", 1.1f}}));
  EXPECT_EQ(parse_prompt_attention("\\(literal\\]"), (Parsed{{"(literal]", 1.0f}}));
  EXPECT_EQ(parse_prompt_attention("(unnecessary)(parens)"), (Parsed{{"unnecessaryparens", 1.1f}}));
  EXPECT_EQ(parse_prompt_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."),
            (Parsed{{"a ", 1.0f},
                    {"house", static_cast<float>(1.5730000000000004)},
                    {" ", 1.1f},
                    {"on", 1.0f},
                    {" a ", 1.1f},
                    {"hill", 0.55f},
                    {", sun, ", 1.1f},
                    {"sky", static_cast<float>(1.4641000000000006)},
                    {".", 1.1f}}));
}

TEST(ParsePromptAttention, BreakAndEdgeCases) {
  EXPECT_EQ(parse_prompt_attention(""), (Parsed{{"", 1.0f}}));
  EXPECT_EQ(parse_prompt_attention("a cat BREAK a dog"), (Parsed{{"a cat", 1.0f}, {"BREAK", -1.0f}, {"a dog", 1.0f}}));
  // Only the separate word: BREAKFAST and "break" are text.
  EXPECT_EQ(parse_prompt_attention("BREAKFAST break"), (Parsed{{"BREAKFAST break", 1.0f}}));
  // Inside brackets BREAK is multiplied too (and so no longer starts a chunk), as in A1111.
  EXPECT_EQ(parse_prompt_attention("(a BREAK b)"), (Parsed{{"a", 1.1f}, {"BREAK", -1.1f}, {"b", 1.1f}}));
  EXPECT_EQ(parse_prompt_attention("[[x]]"), (Parsed{{"x", static_cast<float>(1.0 * (1 / 1.1) * (1 / 1.1))}}));
  EXPECT_EQ(parse_prompt_attention("(x:  1.5  )"), (Parsed{{"x", 1.5f}}));
  EXPECT_EQ(parse_prompt_attention("(x:-.5)"), (Parsed{{"x", -0.5f}}));
  // A weight with no open bracket, stray closers and colons are plain text.
  EXPECT_EQ(parse_prompt_attention("a:1.2) b] c: d"), (Parsed{{"a:1.2) b] c: d", 1.0f}}));
  // A lone backslash is dropped; an escaped one is kept.
  EXPECT_EQ(parse_prompt_attention("a\\b \\\\ c"), (Parsed{{"ab \\ c", 1.0f}}));
  EXPECT_EQ(parse_prompt_attention("((a) b)"), (Parsed{{"a", static_cast<float>(1.1 * 1.1)}, {" b", 1.1f}}));
  EXPECT_THROW(parse_prompt_attention("(a:1.2.3)"), UsageError);
  EXPECT_EQ(parse_prompt_attention("caf\xc3\xa9 (\xe6\x97\xa5:2)"), (Parsed{{"caf\xc3\xa9 ", 1.0f}, {"\xe6\x97\xa5", 2.0f}}));
}

// ------------------------------------------------------------ chunking

std::vector<int64_t> chunk_of(int64_t bos, const std::vector<int64_t>& body, int64_t eos, int64_t pad) {
  std::vector<int64_t> out{bos};
  out.insert(out.end(), body.begin(), body.end());
  out.push_back(eos);
  out.resize(77, pad);
  return out;
}

std::string repeat(const std::string& word, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += word + " ";
  return s;
}

TEST(TokenizeWeighted, EmptyAndShortPrompts) {
  REQUIRE_VOCAB();
  const auto& tok = tokenizer();
  const int64_t bos = tok.bos_id(), eos = tok.eos_id();
  auto empty = tokenize_weighted(tok, "");
  ASSERT_EQ(empty.chunks.size(), 1u);
  EXPECT_EQ(empty.chunks[0], chunk_of(bos, {}, eos, eos));
  EXPECT_EQ(empty.weights[0], std::vector<float>(77, 1.0f));
  EXPECT_EQ(empty.token_count, 0);

  auto wt = tokenize_weighted(tok, "a (cat:1.5) [dog]");
  const int64_t a = tok.encode("a")[0], cat = tok.encode("cat")[0], dog = tok.encode("dog")[0];
  ASSERT_EQ(wt.chunks.size(), 1u);
  EXPECT_EQ(wt.chunks[0], chunk_of(bos, {a, cat, dog}, eos, eos));
  std::vector<float> w(77, 1.0f);
  w[2] = 1.5f;
  w[3] = static_cast<float>(1 / 1.1);
  EXPECT_EQ(wt.weights[0], w);
  EXPECT_EQ(wt.token_count, 3);

  // SD2/SDXL-G padding: everything after the first EOS is the pad id.
  auto zero = tokenize_weighted(tok, "a (cat:1.5) [dog]", ChunkOptions{.pad_id = 0});
  EXPECT_EQ(zero.chunks[0], chunk_of(bos, {a, cat, dog}, eos, 0));

  // Emphasis off: brackets are tokens.
  auto plain = tokenize_weighted(tok, "(cat)", ChunkOptions{.emphasis = false});
  EXPECT_EQ(plain.chunks[0], chunk_of(bos, tok.encode("(cat)"), eos, eos));
  EXPECT_EQ(plain.weights[0], std::vector<float>(77, 1.0f));
}

TEST(TokenizeWeighted, BreakStartsANewChunk) {
  REQUIRE_VOCAB();
  const auto& tok = tokenizer();
  const int64_t bos = tok.bos_id(), eos = tok.eos_id();
  auto wt = tokenize_weighted(tok, "a cat BREAK a dog");
  ASSERT_EQ(wt.chunks.size(), 2u);
  EXPECT_EQ(wt.chunks[0], chunk_of(bos, tok.encode("a cat"), eos, eos));
  EXPECT_EQ(wt.chunks[1], chunk_of(bos, tok.encode("a dog"), eos, eos));
  EXPECT_EQ(wt.token_count, 75 + 2);
  // A prompt ending in BREAK has just the one chunk, as in A1111.
  EXPECT_EQ(tokenize_weighted(tok, "a cat BREAK").chunks.size(), 1u);
}

TEST(TokenizeWeighted, LongPromptsSplitEvery75Tokens) {
  REQUIRE_VOCAB();
  const auto& tok = tokenizer();
  const int64_t bos = tok.bos_id(), eos = tok.eos_id(), a = tok.encode("a")[0];
  auto wt = tokenize_weighted(tok, repeat("a", 80));
  ASSERT_EQ(wt.chunks.size(), 2u);
  EXPECT_EQ(wt.chunks[0], chunk_of(bos, std::vector<int64_t>(75, a), eos, eos));
  EXPECT_EQ(wt.chunks[1], chunk_of(bos, std::vector<int64_t>(5, a), eos, eos));
  EXPECT_EQ(wt.token_count, 80);
  // Exactly 75 tokens fit one chunk.
  EXPECT_EQ(tokenize_weighted(tok, repeat("a", 75)).chunks.size(), 1u);
  EXPECT_EQ(tokenize_weighted(tok, repeat("a", 76)).chunks.size(), 2u);
}

TEST(TokenizeWeighted, BreaksAfterTheLastCommaWithin20Tokens) {
  REQUIRE_VOCAB();
  const auto& tok = tokenizer();
  const int64_t bos = tok.bos_id(), eos = tok.eos_id(), a = tok.encode("a")[0], b = tok.encode("b")[0],
                comma = tok.comma_id();
  ASSERT_EQ(comma, tok.encode(",")[0]);
  // 70 x a, comma, 10 x b: the chunk fills after 4 b's; they move to the next chunk.
  auto wt = tokenize_weighted(tok, repeat("a", 70) + ", " + repeat("b", 10));
  ASSERT_EQ(wt.chunks.size(), 2u);
  std::vector<int64_t> first(70, a);
  first.push_back(comma);
  EXPECT_EQ(wt.chunks[0], chunk_of(bos, first, eos, eos));
  EXPECT_EQ(wt.chunks[1], chunk_of(bos, std::vector<int64_t>(10, b), eos, eos));

  // Comma further back than 20 tokens: a plain split at 75.
  auto far = tokenize_weighted(tok, repeat("a", 10) + ", " + repeat("b", 70));
  ASSERT_EQ(far.chunks.size(), 2u);
  std::vector<int64_t> far_first(10, a);
  far_first.push_back(comma);
  far_first.insert(far_first.end(), 64, b);
  EXPECT_EQ(far.chunks[0], chunk_of(bos, far_first, eos, eos));
  EXPECT_EQ(far.chunks[1], chunk_of(bos, std::vector<int64_t>(6, b), eos, eos));

  // Backtracking off.
  auto off = tokenize_weighted(tok, repeat("a", 70) + ", " + repeat("b", 10), ChunkOptions{.comma_padding_backtrack = 0});
  std::vector<int64_t> off_first(70, a);
  off_first.push_back(comma);
  off_first.insert(off_first.end(), 4, b);
  EXPECT_EQ(off.chunks[0], chunk_of(bos, off_first, eos, eos));
  EXPECT_EQ(off.chunks[1], chunk_of(bos, std::vector<int64_t>(6, b), eos, eos));

  // Weights travel with their tokens.
  auto weighted = tokenize_weighted(tok, repeat("a", 70) + ", (" + repeat("b", 10) + ":1.3)");
  EXPECT_EQ(weighted.weights[0][71], 1.0f);  // the comma
  EXPECT_EQ(weighted.weights[0][72], 1.0f);  // EOS padding where the b's were
  EXPECT_EQ(weighted.weights[1][1], 1.3f);
  EXPECT_EQ(weighted.weights[1][10], 1.3f);
  EXPECT_EQ(weighted.weights[1][11], 1.0f);

  auto [ids, w] = to_tensors(weighted);
  EXPECT_EQ(ids.size(0), 2);
  EXPECT_EQ(ids.size(1), 77);
  EXPECT_EQ(w.scalar_type(), at::kFloat);
  EXPECT_EQ(ids[1][1].item<int64_t>(), b);
}

// ------------------------------------------------------------ apply_emphasis

TEST(ApplyEmphasis, RescalesToTheOriginalMeanPerChunk) {
  // One chunk of length 2: z = [[1,2],[3,4]], w = [1,2] -> z*w = [[1,2],[6,8]] (mean 4.25),
  // times 2.5 / 4.25.
  at::Tensor z = at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({1, 2, 2});
  at::Tensor w = at::tensor({1.0f, 2.0f}).reshape({1, 2});
  at::Tensor out = apply_emphasis(z, w, 2);
  at::Tensor expected = at::tensor({1.0f, 2.0f, 6.0f, 8.0f}).reshape({1, 2, 2}) * (2.5f / 4.25f);
  EXPECT_TRUE(at::allclose(out, expected, 1e-6, 1e-7));
  EXPECT_NEAR(out.mean().item<float>(), 2.5f, 1e-6);

  // Two chunks and a batch of two: each chunk's mean is taken over the whole batch.
  at::Tensor z2 = at::arange(1, 17, at::kFloat).reshape({2, 4, 2});
  at::Tensor w2 = at::tensor({1.0f, 1.5f, 0.5f, 1.0f, 2.0f, 1.0f, 1.0f, 1.0f}).reshape({2, 4});
  at::Tensor out2 = apply_emphasis(z2, w2, 2);
  for (int64_t c = 0; c < 2; ++c) {
    at::Tensor zc = z2.narrow(1, 2 * c, 2), wc = w2.narrow(1, 2 * c, 2);
    at::Tensor weighted = zc * wc.unsqueeze(-1);
    at::Tensor exp = weighted * (zc.mean() / weighted.mean());
    EXPECT_TRUE(at::allclose(out2.narrow(1, 2 * c, 2), exp));
  }
  // All-ones weights change nothing.
  EXPECT_TRUE(at::allclose(apply_emphasis(z2, at::ones({2, 4}), 2), z2));
  EXPECT_THROW(apply_emphasis(z2, w2, 3), UsageError);
  EXPECT_THROW(apply_emphasis(z2, w2.narrow(1, 0, 2), 2), UsageError);
}

// ------------------------------------------------------------ loading

TEST(CLIPTokenizerLoad, OpenAIVocabulary) {
  REQUIRE_VOCAB();
  const auto& tok = tokenizer();
  EXPECT_EQ(tok.vocab_size(), 49408);
  EXPECT_EQ(tok.bos_id(), 49406);
  EXPECT_EQ(tok.eos_id(), 49407);
  EXPECT_EQ(tok.comma_id(), 267);
  EXPECT_EQ(tok.encode("a photo of a cat"), (std::vector<int64_t>{320, 1125, 539, 320, 2368}));
  EXPECT_EQ(tok.encode_padded("a photo of a cat", 0, 8), (std::vector<int64_t>{49406, 320, 1125, 539, 320, 2368, 49407, 0}));
  EXPECT_EQ(tok.encode_padded("a photo of a cat", 0, 4), (std::vector<int64_t>{49406, 320, 1125, 49407}));
  EXPECT_EQ(tok.decode(tok.encode("Hello, World!")), "hello , world ! ");
  EXPECT_EQ(tok.encode("<|startoftext|>"), (std::vector<int64_t>{49406}));
  EXPECT_THROW(tok.encode_padded("x", 0, 1), UsageError);
}

TEST(CLIPTokenizerLoad, TextCleaning) {
  EXPECT_EQ(html_unescape("&amp;amp; &lt;3 &copy &#65;&#x42; &notit; &bogus;"), "&amp; <3 \xc2\xa9 AB \xc2\xacit; &bogus;");
  EXPECT_EQ(ftfy_fix_text("caf\xc3\x83\xc2\xa9"), "caf\xc3\xa9");                  // mojibake
  EXPECT_EQ(ftfy_fix_text("\xe2\x80\x9cq\xe2\x80\x9d"), "\"q\"");                   // curly quotes
  EXPECT_EQ(ftfy_fix_text("\xef\xac\x81"), "fi");                                   // ligature
  EXPECT_EQ(ftfy_fix_text("a\r\nb\x1b[31mc\x01"), "a\nbc");                         // line breaks, escapes, controls
  EXPECT_EQ(clip_clean_text("  Tom &amp; JERRY\t\n x "), "tom & jerry x");
  EXPECT_EQ(clip_clean_text("\xce\xa3\xce\x91\xce\xa3"), "\xcf\x83\xce\xb1\xcf\x82");  // final sigma, as Python lower()
  EXPECT_EQ(clip_pre_tokenize("it's 42 ok!?"), (std::vector<std::string>{"it", "'s", "4", "2", "ok", "!?"}));
}

TEST(CLIPTokenizerLoad, BadVocabularyFilesName) {
  test::TempDir dir;
  const std::string missing = dir.file("missing.txt.gz");
  EXPECT_NE(load_error_message([&] { CLIPTokenizer::load(missing); }).find(missing), std::string::npos);

  const std::string plain = dir.file("plain.txt.gz");
  test::write_bytes(plain, "#version: 0.2\na b\n");
  const std::string msg = load_error_message([&] { CLIPTokenizer::load(plain); });
  EXPECT_NE(msg.find(plain), std::string::npos) << msg;
  EXPECT_NE(msg.find("gzip"), std::string::npos) << msg;

  const std::string short_file = dir.file("short.txt.gz");
  gzip_file(short_file, "#version: 0.2\na b\nc d\n");
  const std::string short_msg = load_error_message([&] { CLIPTokenizer::load(short_file); });
  EXPECT_NE(short_msg.find(short_file), std::string::npos) << short_msg;
  EXPECT_NE(short_msg.find("lines"), std::string::npos) << short_msg;

  const std::string not_bpe = dir.file("notbpe.txt.gz");
  std::string lines = "header\n";
  for (int i = 0; i < 49000; ++i) lines += "word" + std::to_string(i) + "\n";
  gzip_file(not_bpe, lines);
  const std::string bpe_msg = load_error_message([&] { CLIPTokenizer::load(not_bpe); });
  EXPECT_NE(bpe_msg.find(not_bpe), std::string::npos) << bpe_msg;
  EXPECT_NE(bpe_msg.find("not a CLIP BPE vocabulary"), std::string::npos) << bpe_msg;

  const std::string corrupt = dir.file("corrupt.txt.gz");
  test::write_bytes(corrupt, std::string("\x1f\x8b\x08\x00garbage", 12));
  EXPECT_NE(load_error_message([&] { CLIPTokenizer::load(corrupt); }).find(corrupt), std::string::npos);

  // A folder without vocab.json.
  EXPECT_NE(load_error_message([&] { CLIPTokenizer::load(dir.path()); }).find("vocab.json"), std::string::npos);
  test::write_bytes(dir.file("vocab.json"), "[1, 2]");
  test::write_bytes(dir.file("merges.txt"), "#version: 0.2\n");
  EXPECT_NE(load_error_message([&] { CLIPTokenizer::load(dir.path()); }).find("vocab.json"), std::string::npos);
}

TEST(CLIPTokenizerLoad, DiffusersFolderGivesIdenticalIds) {
  REQUIRE_VOCAB();
  const auto& tok = tokenizer();
  test::TempDir dir;
  nlohmann::json vocab = nlohmann::json::object();
  for (int64_t id = 0; id < tok.vocab_size(); ++id) vocab[*tok.id_to_token(id)] = id;
  test::write_bytes(dir.file("vocab.json"), vocab.dump());
  const std::string raw = gunzip_file(vocab_path());
  // transformers writes "#version: 0.2" and then the merges, one per line.
  std::string merges = "#version: 0.2\n";
  size_t pos = raw.find('\n') + 1;
  for (int i = 0; i < 49152 - 256 - 2; ++i) {
    const size_t nl = raw.find('\n', pos);
    merges += raw.substr(pos, nl - pos) + "\n";
    pos = nl + 1;
  }
  test::write_bytes(dir.file("merges.txt"), merges);

  const CLIPTokenizer folder = CLIPTokenizer::load(dir.path());
  EXPECT_EQ(folder.vocab_size(), tok.vocab_size());
  EXPECT_EQ(folder.bos_id(), 49406);
  EXPECT_EQ(folder.eos_id(), 49407);
  std::vector<std::string> prompts = {"a photo of a cat", "Z\xc3\xbcrich stra\xc3\x9f" "e", "\xf0\x9f\x94\xa5 fire",
                                      "supercalifragilisticexpialidocious", "text with <|endoftext|> inside"};
  if (test::have_fixtures()) {
    std::ifstream in(test::fixtures_dir() + "/tokenizer/clip_bpe_prompts.json");
    for (const auto& r : nlohmann::json::parse(in)) prompts.push_back(r["text"].get<std::string>());
  }
  for (const auto& p : prompts) {
    EXPECT_EQ(folder.encode(p), tok.encode(p)) << p;
    EXPECT_EQ(folder.encode_padded(p, 0), tok.encode_padded(p, 0)) << p;
  }
}

}  // namespace
}  // namespace genvis::tokenizers
