// Next-token sampling: frequencies follow the (tempered) probabilities, top-k and top-p keep the
// sets their definitions name, temperature 0 is greedy, seeds reproduce, and guidance on logits.
#include "core/error.h"
#include "schedulers/token_sampling.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::schedulers {
namespace {

TEST(TokenSampling, FrequenciesFollowTheProbabilities) {
  const at::Tensor p = torch::tensor({0.5, 0.3, 0.15, 0.05}, at::kFloat);
  const int64_t n = 40000;
  const at::Tensor logits = p.log().view({1, 4}).expand({n, 4}).contiguous();
  Rng rng(1);
  const at::Tensor ids = sample_tokens(logits, {}, rng);
  const at::Tensor freq = at::bincount(ids, {}, 4).to(at::kDouble) / n;
  EXPECT_TRUE(freq.allclose(p.to(at::kDouble), 0, 0.01)) << freq;
  // Temperature 2 flattens: p^(1/2), renormalised.
  const at::Tensor hot = at::bincount(sample_tokens(logits, {.temperature = 2.0}, rng), {}, 4).to(at::kDouble) / n;
  const at::Tensor expected = p.to(at::kDouble).sqrt() / p.to(at::kDouble).sqrt().sum();
  EXPECT_TRUE(hot.allclose(expected, 0, 0.01)) << hot;
  // Same seed, same tokens.
  Rng a(5), b(5);
  EXPECT_TRUE(sample_tokens(logits.narrow(0, 0, 100), {}, a).equal(sample_tokens(logits.narrow(0, 0, 100), {}, b)));
}

TEST(TokenSampling, TopKTopPAndGreedy) {
  const at::Tensor logits = torch::tensor({{0.5f, 0.3f, 0.15f, 0.05f}}).log();
  auto kept = [&](int64_t k, double p) { return at::isfinite(filter_logits(logits, k, p)).squeeze(0); };
  EXPECT_TRUE(kept(2, 1.0).equal(torch::tensor({true, true, false, false})));
  EXPECT_TRUE(kept(0, 1.0).all().item<bool>());
  // Nucleus: the smallest most-likely set reaching p (0.5 reaches 0.45; 0.6 needs 0.5 + 0.3).
  EXPECT_TRUE(kept(0, 0.45).equal(torch::tensor({true, false, false, false})));
  EXPECT_TRUE(kept(0, 0.6).equal(torch::tensor({true, true, false, false})));
  EXPECT_TRUE(kept(0, 0.9).equal(torch::tensor({true, true, true, false})));
  EXPECT_TRUE(kept(0, 0.01).equal(torch::tensor({true, false, false, false})));  // the top token always stays
  Rng rng(2);
  const at::Tensor many = logits.expand({2000, 4}).contiguous();
  EXPECT_TRUE((sample_tokens(many, {.top_k = 2}, rng) < 2).all().item<bool>());
  EXPECT_TRUE((sample_tokens(many, {.temperature = 0.0}, rng) == 0).all().item<bool>());
  EXPECT_THROW(sample_tokens(many, {.top_p = 0.0}, rng), UsageError);
  EXPECT_THROW(sample_tokens(many, {.temperature = -1}, rng), UsageError);
  EXPECT_THROW(sample_tokens(many, {.top_k = -3}, rng), UsageError);
}

TEST(TokenSampling, GuidanceOnLogits) {
  const at::Tensor cond = torch::tensor({{2.0f, 0.0f, -1.0f}}), uncond = torch::tensor({{0.0f, 1.0f, 0.0f}});
  EXPECT_TRUE(guide_logits(cond, uncond, 1.0).allclose(at::log_softmax(cond, -1), 1e-6, 1e-6));
  EXPECT_TRUE(guide_logits(cond, uncond, 0.0).allclose(at::log_softmax(uncond, -1), 1e-6, 1e-6));
  const at::Tensor g = guide_logits(cond, uncond, 3.0);
  const at::Tensor expected = at::log_softmax(uncond, -1) + 3 * (at::log_softmax(cond, -1) - at::log_softmax(uncond, -1));
  EXPECT_TRUE(g.allclose(expected, 1e-6, 1e-6));
  EXPECT_EQ(g.argmax(1).item<int64_t>(), 0);
}

}  // namespace
}  // namespace genvis::schedulers
