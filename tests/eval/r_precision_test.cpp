// R-precision's arithmetic: perfect embeddings score 1, random ones about 1/k, ties go against
// the true caption, distractors never repeat the true text, and draws are seeded.
#include "core/error.h"
#include "core/rng.h"
#include "eval/r_precision.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <torch/torch.h>

namespace genvis::eval {
namespace {

at::Tensor unit_rows(int64_t n, int64_t d, uint64_t seed) {
  Rng rng(seed);
  const at::Tensor x = rng.randn({n, d});
  return x / x.norm(2, 1, /*keepdim=*/true);
}

std::vector<std::string> names(int64_t n, const std::string& prefix = "caption ") {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

TEST(RPrecision, EmbeddingsEqualToTheirCaptionsScoreOne) {
  const at::Tensor pool = unit_rows(300, 32, 1);
  const auto captions = names(300);
  const at::Tensor idx = torch::arange(0, 300, 3);  // 100 samples
  std::vector<std::string> truth;
  for (int64_t i = 0; i < idx.size(0); ++i) truth.push_back(captions[static_cast<size_t>(idx[i].item<int64_t>())]);
  const at::Tensor emb = pool.index_select(0, idx);
  const RPrecisionResult r = r_precision(emb, emb, truth, {pool, captions}, {.k = 100, .seed = 7});
  EXPECT_EQ(r.value, 1.0);
  EXPECT_EQ(r.k, 100);
  ASSERT_EQ(r.ranks.size(), 100u);
  for (const int64_t rank : r.ranks) EXPECT_EQ(rank, 1);
}

TEST(RPrecision, RandomEmbeddingsScoreAboutChance) {
  const int64_t n = 4000, m = 500;
  const at::Tensor pool = unit_rows(m, 64, 2);
  const auto captions = names(m);
  std::vector<std::string> truth;
  for (int64_t i = 0; i < n; ++i) truth.push_back(captions[static_cast<size_t>(i % m)]);
  const at::Tensor images = unit_rows(n, 64, 3);
  const at::Tensor true_embeds = pool.index_select(0, torch::arange(n) % m);
  const RPrecisionResult r = r_precision(images, true_embeds, truth, {pool, captions}, {.k = 100, .seed = 1});
  // Hits ~ Binomial(4000, 0.01): sd = sqrt(0.01 * 0.99 / 4000) = 0.0016; allow 5 sd.
  EXPECT_NEAR(r.value, 0.01, 0.008);
  // Ranks are uniform on 1..100: mean 50.5, sd of the mean 28.9 / sqrt(4000) = 0.46.
  double sum = 0;
  for (const int64_t rank : r.ranks) {
    ASSERT_GE(rank, 1);
    ASSERT_LE(rank, 100);
    sum += static_cast<double>(rank);
  }
  EXPECT_NEAR(sum / static_cast<double>(n), 50.5, 2.5);
}

TEST(RPrecision, TiesRankTheTrueCaptionLast) {
  // An encoder that maps everything to one point cannot tell captions apart: it scores 0.
  const at::Tensor same = torch::ones({150, 8}) / std::sqrt(8.0);
  const auto captions = names(150);
  const std::vector<std::string> truth(captions.begin(), captions.begin() + 20);
  const RPrecisionResult r = r_precision(same.narrow(0, 0, 20), same.narrow(0, 0, 20), truth, {same, captions}, {.k = 100});
  EXPECT_EQ(r.value, 0.0);
  for (const int64_t rank : r.ranks) EXPECT_EQ(rank, 100);
  // The same inputs give the same ranks every time.
  EXPECT_EQ(r_precision(same.narrow(0, 0, 20), same.narrow(0, 0, 20), truth, {same, captions}, {.k = 100}).ranks, r.ranks);
}

TEST(RPrecision, DistractorsAreOtherTextsAndDistinct) {
  // The pool repeats the true caption's text many times with the image's own embedding: were
  // any of them drawn as a distractor it would tie and push the true caption down.
  const int64_t others = 99;
  at::Tensor pool = unit_rows(others, 16, 4);
  std::vector<std::string> captions = names(others);
  const at::Tensor image = unit_rows(1, 16, 5);
  for (int i = 0; i < 50; ++i) {
    pool = at::cat({pool, image});
    captions.push_back("the true one");
  }
  // Exactly 99 other texts: k = 100 must use each once (a repeat would show as a lower count).
  const RPrecisionResult r = r_precision(image, image, {"the true one"}, {pool, captions}, {.k = 100, .seed = 3});
  EXPECT_EQ(r.value, 1.0);
  // One text short of k: a clear usage error.
  EXPECT_THROW(r_precision(image, image, {"the true one"}, {pool, captions}, {.k = 101}), UsageError);
  // Duplicated texts count once.
  std::vector<std::string> dup(captions.size(), "same text");
  dup.back() = "the true one";
  EXPECT_THROW(r_precision(image, image, {"the true one"}, {pool, dup}, {.k = 3}), UsageError);
}

TEST(RPrecision, SeedDecidesTheDrawsAndShapesAreChecked) {
  const at::Tensor pool = unit_rows(1000, 16, 6);
  const auto captions = names(1000);
  const at::Tensor images = unit_rows(200, 16, 7);
  const std::vector<std::string> truth(captions.begin(), captions.begin() + 200);
  const at::Tensor true_embeds = pool.narrow(0, 0, 200);
  const auto a = r_precision(images, true_embeds, truth, {pool, captions}, {.k = 10, .seed = 1});
  const auto b = r_precision(images, true_embeds, truth, {pool, captions}, {.k = 10, .seed = 1});
  const auto c = r_precision(images, true_embeds, truth, {pool, captions}, {.k = 10, .seed = 2});
  EXPECT_EQ(a.ranks, b.ranks);
  EXPECT_NE(a.ranks, c.ranks);
  EXPECT_THROW(r_precision(images, true_embeds.narrow(0, 0, 10), truth, {pool, captions}), UsageError);
  EXPECT_THROW(r_precision(images, true_embeds, truth, {pool.narrow(1, 0, 8), captions}), UsageError);
  EXPECT_THROW(r_precision(images, true_embeds, truth, {pool, captions}, {.k = 1}), UsageError);
}

TEST(RPrecision, ChooseIndicesIsSeededAndDistinct) {
  const auto a = choose_indices(500, 200, 9);
  EXPECT_EQ(a, choose_indices(500, 200, 9));
  EXPECT_NE(a, choose_indices(500, 200, 10));
  EXPECT_EQ(std::set<size_t>(a.begin(), a.end()).size(), 200u);
  for (const size_t i : a) EXPECT_LT(i, 500u);
  EXPECT_EQ(choose_indices(5, 5, 0).size(), 5u);
  EXPECT_THROW(choose_indices(5, 6, 0), UsageError);
}

}  // namespace
}  // namespace genvis::eval
