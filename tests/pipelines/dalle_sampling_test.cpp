// DALL·E token generation: the KV-cached loop gives the tokens of full recomputation (greedy
// and sampled, with and without guidance), completion keeps the given top rows, seeds
// reproduce, and bad inputs are refused.
#include "core/error.h"
#include "pipelines/dalle/dalle_sampling.h"
#include "pipelines/pipeline.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

models::DalleConfig tiny() {
  models::DalleConfig c;
  c.text_vocab_size = 9, c.text_len = 3, c.image_vocab_size = 6, c.image_rows = 3, c.image_cols = 4;
  c.hidden_size = 16, c.num_heads = 2, c.num_layers = 4, c.mlp_ratio = 2, c.conv_kernel = 3;
  return c;
}

TEST(DalleSampling, CacheGivesTheTokensOfRecomputation) {
  torch::manual_seed(0);
  models::DalleTransformer model(tiny());
  model->eval();
  const at::Tensor text = models::dalle_text_ids({{1, 2}, {3}}, model->config);
  for (const double guidance : {1.0, 3.0})
    for (const double temperature : {0.0, 1.0}) {
      DalleSampleOptions o{.sampling = {.temperature = temperature}, .guidance = guidance};
      Rng a(11), b(11);
      const at::Tensor cached = dalle_sample(model, text, o, a);
      o.use_cache = false;
      const at::Tensor recomputed = dalle_sample(model, text, o, b);
      EXPECT_EQ(cached.sizes(), at::IntArrayRef({2, 12}));
      EXPECT_TRUE(cached.equal(recomputed)) << "guidance " << guidance << " temperature " << temperature << "\n"
                                            << cached << recomputed;
    }
}

TEST(DalleSampling, CompletionSeedsProgressAndErrors) {
  torch::manual_seed(1);
  models::DalleTransformer model(tiny());
  model->eval();
  const at::Tensor text = models::dalle_text_ids({{4}, {5, 6}}, model->config);
  const at::Tensor known = torch::tensor({{5, 4, 3, 2, 1}, {0, 1, 2, 3, 4}}, at::kLong);
  Rng rng(3);
  int64_t calls = 0, last_total = 0;
  const at::Tensor out = dalle_sample(model, text, {.known = known}, rng, [&](int64_t, int64_t total) {
    ++calls;
    last_total = total;
  });
  EXPECT_TRUE(out.narrow(1, 0, 5).equal(known));
  EXPECT_EQ(calls, 12 - 5);
  EXPECT_EQ(last_total, 12 - 5);
  EXPECT_TRUE(((out >= 0) & (out < 6)).all().item<bool>());
  Rng a(4), b(4), c(5);
  const at::Tensor x = dalle_sample(model, text, {}, a), y = dalle_sample(model, text, {}, b),
                   z = dalle_sample(model, text, {}, c);
  EXPECT_TRUE(x.equal(y));
  EXPECT_FALSE(x.equal(z));
  // Per-row generators: a sample does not depend on the batch it is drawn in.
  std::vector<Rng> two = {Rng(7), Rng(8)}, one = {Rng(8)};
  const at::Tensor pair = dalle_sample(model, text, {}, two);
  const at::Tensor alone = dalle_sample(model, text.narrow(0, 1, 1), {}, one);
  EXPECT_TRUE(pair.narrow(0, 1, 1).equal(alone));
  std::vector<Rng> too_few = {Rng(1)};
  EXPECT_THROW(dalle_sample(model, text, {}, too_few), UsageError);
  std::vector<Rng> again = {Rng(7), Rng(8)};
  EXPECT_THROW(dalle_sample(model, text, {}, again, {}, [] { return true; }), Cancelled);
  EXPECT_THROW(dalle_sample(model, text, {.known = torch::full({2, 2}, 6, at::kLong)}, rng), UsageError);
  EXPECT_THROW(dalle_sample(model, text, {.known = torch::zeros({2, 12}, at::kLong)}, rng), UsageError);
  EXPECT_THROW(dalle_sample(model, text, {.guidance = 0.5}, rng), UsageError);
  EXPECT_THROW(dalle_sample(model, text, {.sampling = {.top_p = 1.5}}, rng), UsageError);
}

}  // namespace
}  // namespace genvis::pipelines
