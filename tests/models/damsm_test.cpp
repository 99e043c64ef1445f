// DAMSM: the attention and matching math on hand-made inputs (against scalar loops written from
// the paper's equations), the text encoder's handling of lengths, the image encoder's shapes,
// config errors and the folder round trip.
#include "core/error.h"
#include "models/damsm/damsm_encoder.h"
#include "models/damsm/damsm_loss.h"
#include "support/test_support.h"
#include "tokenizers/bpe_trainer.h"

#include <cmath>
#include <filesystem>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json tiny_damsm_json() {
  return json::parse(R"({
    "embedding_dim": 8,
    "text_config": {"word_embedding_dim": 6, "max_length": 5, "dropout": 0.0},
    "vision_config": {"image_size": 16, "block_out_channels": [4, 8, 8], "layers_per_block": 1, "norm_num_groups": 4,
                      "region_level": 1}
  })");
}

std::string make_damsm_tokenizer(const test::TempDir& dir) {
  const std::vector<std::string> captions = {"a red circle", "a blue square", "a green star", "a red square",
                                             "grinning face", "woman firefighter: dark skin tone"};
  const std::string folder = dir.file("tok");
  tokenizers::save_tokenizer_folder(tokenizers::train_bpe(captions, {.vocab_size = 560}), folder);
  return folder;
}

// Equations 7-10 for one caption (words [D,T], T real words) and one image (regions [D,N]), in
// scalar loops: the region context of every word and R(Q,D).
struct Reference {
  std::vector<std::vector<double>> context;  // [T][D]
  double score = 0;
};
Reference reference(const at::Tensor& words, const at::Tensor& regions, const damsm::Gammas& g) {
  const auto e = words.to(at::kDouble).contiguous(), v = regions.to(at::kDouble).contiguous();
  const auto E = e.accessor<double, 2>(), V = v.accessor<double, 2>();
  const int64_t d = e.size(0), t = e.size(1), n = v.size(1);
  std::vector<std::vector<double>> s(static_cast<size_t>(t), std::vector<double>(static_cast<size_t>(n)));
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < d; ++k) s[i][j] += E[k][i] * V[k][j];
  // s_bar: each region's scores normalised over the words.
  for (int64_t j = 0; j < n; ++j) {
    double z = 0;
    for (int64_t i = 0; i < t; ++i) z += std::exp(s[i][j]);
    for (int64_t i = 0; i < t; ++i) s[i][j] = std::exp(s[i][j]) / z;
  }
  Reference r;
  double sum = 0;
  for (int64_t i = 0; i < t; ++i) {
    double z = 0;
    for (int64_t j = 0; j < n; ++j) z += std::exp(g.gamma1 * s[i][j]);
    std::vector<double> c(static_cast<size_t>(d));
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < d; ++k) c[k] += std::exp(g.gamma1 * s[i][j]) / z * V[k][j];
    double dot = 0, nc = 0, ne = 0;
    for (int64_t k = 0; k < d; ++k) dot += c[k] * E[k][i], nc += c[k] * c[k], ne += E[k][i] * E[k][i];
    sum += std::exp(g.gamma2 * dot / std::sqrt(nc * ne));
    r.context.push_back(c);
  }
  r.score = std::log(sum) / g.gamma2;
  return r;
}

TEST(DamsmLoss, WordAttentionFollowsThePapersEquations) {
  torch::manual_seed(1);
  const at::Tensor words = torch::randn({1, 3, 2}), regions = torch::randn({1, 3, 4});
  const at::Tensor mask = torch::ones({1, 2}, at::kBool);
  const damsm::Gammas g{.gamma1 = 4.0, .gamma2 = 5.0};
  const auto a = damsm::word_attention(words, mask, regions, g.gamma1);
  ASSERT_EQ(a.context.sizes(), (std::vector<int64_t>{1, 3, 2}));
  ASSERT_EQ(a.attention.sizes(), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_TRUE(torch::allclose(a.attention.sum(2), torch::ones({1, 2}), 1e-6, 1e-6));
  const Reference ref = reference(words[0], regions[0], g);
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t k = 0; k < 3; ++k) EXPECT_NEAR(a.context[0][k][t].item<double>(), ref.context[t][k], 1e-5);
  EXPECT_NEAR(damsm::word_scores(words, mask, regions, g).item<double>(), ref.score, 1e-5);
}

TEST(DamsmLoss, PaddedWordsAreLeftOutOfEverySum) {
  torch::manual_seed(2);
  const damsm::Gammas g;
  // Caption 0 has 2 real words of 3, caption 1 all 3; two images.
  const at::Tensor words = torch::randn({2, 4, 3}), regions = torch::randn({2, 4, 5});
  const at::Tensor mask = torch::tensor({1, 1, 0, 1, 1, 1}, at::kBool).view({2, 3});
  const at::Tensor scores = damsm::word_scores(words, mask, regions, g);
  ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{2, 2}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 2; ++j) {
      const int64_t t = i == 0 ? 2 : 3;
      EXPECT_NEAR(scores[i][j].item<double>(), reference(words[i].narrow(1, 0, t), regions[j], g).score, 1e-5)
          << "caption " << i << " image " << j;
    }
  // Whatever sits in the padding changes nothing.
  at::Tensor noisy = words.clone();
  noisy[0].select(1, 2).fill_(100.0);
  EXPECT_TRUE(torch::allclose(damsm::word_scores(noisy, mask, regions, g), scores, 1e-6, 1e-6));
  EXPECT_THROW(damsm::word_scores(words, torch::zeros({2, 3}, at::kBool), regions, g), UsageError);
  EXPECT_THROW(damsm::word_scores(words, mask, torch::randn({2, 5, 5}), g), UsageError);
}

TEST(DamsmLoss, SentenceScoresAreCosines) {
  const at::Tensor s = torch::tensor({3.0f, 4.0f, 0.0f, 2.0f}).view({2, 2});
  const at::Tensor i = torch::tensor({1.0f, 0.0f, 0.0f, -5.0f, 1.0f, 1.0f}).view({3, 2});
  const at::Tensor c = damsm::sentence_scores(s, i);
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_NEAR(c[0][0].item<double>(), 0.6, 1e-6);
  EXPECT_NEAR(c[0][1].item<double>(), -0.8, 1e-6);
  EXPECT_NEAR(c[1][2].item<double>(), std::sqrt(0.5), 1e-6);
}

TEST(DamsmLoss, MatchingLossIsBothSoftmaxesAtTheDiagonal) {
  const double g3 = 10.0;
  // Two pairs: the matches score 1, the mismatches 0: each direction gives log(1 + e^-g3).
  const at::Tensor eye = torch::eye(2);
  EXPECT_NEAR(damsm::matching_loss(eye, g3).item<double>(), 2 * std::log1p(std::exp(-g3)), 1e-7);
  // An asymmetric case by hand: rows are captions, columns images.
  const at::Tensor r = torch::tensor({0.5f, 0.1f, 0.3f, 0.2f}).view({2, 2});
  const auto ce = [&](double a, double b) { return -(g3 * a - std::log(std::exp(g3 * a) + std::exp(g3 * b))); };
  const double rows = (ce(0.5, 0.1) + ce(0.2, 0.3)) / 2, cols = (ce(0.5, 0.3) + ce(0.2, 0.1)) / 2;
  EXPECT_NEAR(damsm::matching_loss(r, g3).item<double>(), rows + cols, 1e-5);
  // Captions 0 and 1 are the same text: neither is the other's negative.
  const at::Tensor same = damsm::same_caption_mask(torch::tensor({7, 7, 3}, at::kLong));
  EXPECT_TRUE(same.equal(torch::tensor({0, 1, 0, 1, 0, 0, 0, 0, 0}, at::kBool).view({3, 3})));
  const at::Tensor s3 = torch::tensor({0.9f, 0.9f, 0.0f, 0.9f, 0.9f, 0.0f, 0.0f, 0.0f, 0.9f}).view({3, 3});
  // Each row and column keeps its match (0.9) and the other caption's image (0); the third is
  // matched against two zeros.
  const double a = std::log1p(std::exp(-9.0)), b = std::log1p(2 * std::exp(-9.0));
  EXPECT_NEAR(damsm::matching_loss(s3, g3, same).item<double>(), 2 * (2 * a + b) / 3, 1e-6);
  EXPECT_GT(damsm::matching_loss(s3, g3).item<double>(), damsm::matching_loss(s3, g3, same).item<double>() + 0.5);
  EXPECT_THROW(damsm::matching_loss(torch::zeros({2, 3}), g3), UsageError);
}

TEST(DamsmConfig, RoundTripsAndReportsEveryProblem) {
  const DamsmConfig c = DamsmConfig::from_json(tiny_damsm_json(), "tiny");
  EXPECT_EQ(c.embedding_dim, 8);
  EXPECT_EQ(c.vision_config.region_side(), 8);
  EXPECT_EQ(DamsmConfig::from_json(c.to_json(), "again").to_json(), c.to_json());
  json j = tiny_damsm_json();
  j["colour"] = 1;
  j["embedding_dim"] = 7;
  j["vision_config"]["region_level"] = 3;
  j["text_config"]["dropout"] = 1.5;
  try {
    DamsmConfig::from_json(j, "bad.json");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    for (const char* part : {"bad.json", "unknown key colour", "embedding_dim", "region_level", "dropout"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in " << what;
  }
}

TEST(DamsmEncoder, TextFeaturesIgnoreThePaddingAndImageFeaturesHaveTheRegionGrid) {
  test::TempDir dir;
  torch::manual_seed(3);
  DamsmEncoder enc(DamsmConfig::from_json(tiny_damsm_json(), "tiny"), make_damsm_tokenizer(dir));
  const DamsmTokens tokens = enc.tokenize({"red", "grinning face woman firefighter dark skin tone", ""});
  EXPECT_EQ(tokens.ids.size(1), 5);                      // cut to max_length
  EXPECT_EQ(tokens.lengths[1].item<int64_t>(), 5);
  EXPECT_EQ(tokens.lengths[2].item<int64_t>(), 1);       // an empty caption is one EOS
  const auto texts = enc.encode_texts({"red", "grinning face woman firefighter dark skin tone", ""});
  ASSERT_EQ(texts.words.sizes(), (std::vector<int64_t>{3, 8, 5}));
  ASSERT_EQ(texts.sentence.sizes(), (std::vector<int64_t>{3, 8}));
  const int64_t len0 = tokens.lengths[0].item<int64_t>();
  ASSERT_LT(len0, 5);
  EXPECT_EQ(texts.words[0].narrow(1, len0, 5 - len0).abs().max().item<double>(), 0.0);
  // A caption alone gives the same features as in a padded batch.
  const auto alone = enc.encode_texts({"red"});
  EXPECT_TRUE(torch::allclose(alone.sentence[0], texts.sentence[0], 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(alone.words[0], texts.words[0].narrow(1, 0, len0), 1e-5, 1e-6));
  // Word order matters to the bidirectional LSTM.
  EXPECT_FALSE(torch::allclose(enc.encode_texts({"red circle"}).sentence[0], alone.sentence[0], 1e-4, 1e-5));

  const auto images = enc.encode_images(torch::rand({2, 3, 24, 20}));  // cropped to 20, resized to 16
  EXPECT_EQ(images.regions.sizes(), (std::vector<int64_t>{2, 8, 64}));
  EXPECT_EQ(images.global.sizes(), (std::vector<int64_t>{2, 8}));
  EXPECT_THROW(enc.encode_images(torch::rand({2, 4, 16, 16})), UsageError);
  EXPECT_THROW(enc.model()->encode_text(tokens.ids, torch::tensor({1, 0, 1}, at::kLong)), UsageError);
}

TEST(DamsmEncoder, FolderRoundTripAndLoadErrors) {
  test::TempDir dir;
  torch::manual_seed(4);
  DamsmEncoder enc(DamsmConfig::from_json(tiny_damsm_json(), "tiny"), make_damsm_tokenizer(dir));
  const std::string folder = dir.file("damsm");
  enc.save(folder);
  DamsmEncoder back = DamsmEncoder::load(folder);
  const at::Tensor images = torch::rand({2, 3, 16, 16});
  EXPECT_TRUE(torch::equal(back.encode_images(images).regions, enc.encode_images(images).regions));
  EXPECT_TRUE(torch::equal(back.encode_texts({"a blue square"}).sentence, enc.encode_texts({"a blue square"}).sentence));
  EXPECT_THROW(DamsmEncoder::load(dir.file("nothing")), LoadError);
  fs::remove(fs::path(folder) / "model.safetensors");
  EXPECT_THROW(DamsmEncoder::load(folder), LoadError);
}

}  // namespace
}  // namespace genvis::models
