// DALL·E's transformer at tiny size: the paper's layer pattern, each attention mask against its
// definition (hand-checked entries, and blockwise attention equal to dense attention under the
// mask), the KV cache equal to full recomputation, and the loss falling over a few steps.
#include "core/error.h"
#include "models/dalle/dalle_attention.h"
#include "models/dalle/dalle_transformer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::models {
namespace {

using json = nlohmann::json;

DalleConfig tiny_dalle(std::vector<std::string> attention = {}) {
  DalleConfig c;
  c.text_vocab_size = 11, c.text_len = 3, c.image_vocab_size = 7, c.image_rows = 4, c.image_cols = 5;
  c.hidden_size = 16, c.num_heads = 2, c.num_layers = static_cast<int64_t>(std::max<size_t>(attention.size(), 4));
  c.mlp_ratio = 2, c.conv_kernel = 3, c.attention = std::move(attention);
  return c;
}

const DalleAttention kKinds[] = {DalleAttention::Full, DalleAttention::Row, DalleAttention::Column,
                                 DalleAttention::Conv};

TEST(DalleConfig, PaperPatternAndValidation) {
  DalleConfig c = tiny_dalle();
  c.num_layers = 8;
  // Row everywhere except column where (i - 2) % 4 == 0 and conv in the last layer.
  const std::vector<std::string> expected = {"row", "row", "column", "row", "row", "row", "column", "conv"};
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(dalle_attention_name(c.layer_attention(i)), expected[static_cast<size_t>(i)]);
  EXPECT_EQ(DalleConfig::from_json(c.to_json()).to_json(), c.to_json());
  EXPECT_THROW(DalleConfig::from_json(json{{"conv_kernel", 4}}), LoadError);
  EXPECT_THROW(DalleConfig::from_json(json{{"hidden_size", 30}, {"num_heads", 4}}), LoadError);
  EXPECT_THROW(DalleConfig::from_json(json{{"num_layers", 2}, {"attention", {"row", "diagonal"}}}), LoadError);
  EXPECT_THROW(DalleConfig::from_json(json{{"num_layers", 3}, {"attention", {"row"}}}), LoadError);
  EXPECT_THROW(DalleConfig::from_json(json{{"text_len", "long"}}), LoadError);
}

TEST(DalleAttention, MasksFollowTheirDefinitions) {
  const DalleLayout l{.text_len = 3, .rows = 4, .cols = 5, .conv_kernel = 3};
  auto img = [&](int64_t r, int64_t c) { return l.text_len + r * l.cols + c; };
  for (const auto kind : kKinds) {
    const at::Tensor m = dalle_attention_mask(kind, l);
    // Causal everywhere; text sees text; every image token sees all the text.
    EXPECT_FALSE(m.triu(1).any().item<bool>()) << dalle_attention_name(kind);
    EXPECT_TRUE(m.narrow(0, 0, 3).narrow(1, 0, 3).equal(at::ones({3, 3}, at::kBool).tril()));
    EXPECT_TRUE(m.narrow(0, 3, 20).narrow(1, 0, 3).all().item<bool>());
    for (int64_t i = 0; i < l.len(); ++i) EXPECT_TRUE(m[i][i].item<bool>());
  }
  auto at_ = [&](DalleAttention k, int64_t i, int64_t j) { return dalle_attention_mask(k, l)[i][j].item<bool>(); };
  // Row: the previous cols image tokens, no further.
  EXPECT_TRUE(at_(DalleAttention::Row, img(2, 1), img(1, 1)));   // p - q = 5
  EXPECT_FALSE(at_(DalleAttention::Row, img(2, 1), img(1, 0)));  // p - q = 6
  EXPECT_TRUE(at_(DalleAttention::Row, img(2, 1), img(2, 0)));
  // Column: the same column only.
  EXPECT_TRUE(at_(DalleAttention::Column, img(3, 2), img(0, 2)));
  EXPECT_FALSE(at_(DalleAttention::Column, img(3, 2), img(3, 1)));
  EXPECT_FALSE(at_(DalleAttention::Column, img(3, 2), img(2, 3)));
  // Conv (3x3): the causal part of the neighbourhood.
  EXPECT_TRUE(at_(DalleAttention::Conv, img(2, 2), img(1, 3)));
  EXPECT_TRUE(at_(DalleAttention::Conv, img(2, 2), img(1, 1)));
  EXPECT_FALSE(at_(DalleAttention::Conv, img(2, 2), img(0, 2)));
  EXPECT_FALSE(at_(DalleAttention::Conv, img(2, 2), img(1, 4)));
  EXPECT_FALSE(at_(DalleAttention::Conv, img(2, 2), img(2, 0)));
  // Full: everything earlier.
  EXPECT_EQ(dalle_attention_mask(DalleAttention::Full, l).sum().item<int64_t>(), l.len() * (l.len() + 1) / 2);
  // The attended positions of a query are its mask row.
  for (const auto kind : kKinds)
    for (int64_t i : {0, 2, 3, 9, 22})
      EXPECT_TRUE(dalle_attended_positions(kind, l, i).equal(dalle_attention_mask(kind, l)[i].nonzero().flatten()));
}

// softmax(q k^T / sqrt(D) masked) v, densely, per head.
at::Tensor dense_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                           const at::Tensor& mask) {
  const int64_t B = q.size(0), L = q.size(1), D = q.size(2) / heads;
  auto split = [&](const at::Tensor& x) { return x.view({B, -1, heads, D}).transpose(1, 2); };
  at::Tensor s = at::matmul(split(q), split(k).transpose(-1, -2)) / std::sqrt(static_cast<double>(D));
  s = s.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  return at::matmul(at::softmax(s, -1), split(v)).transpose(1, 2).reshape({B, L, heads * D});
}

TEST(DalleAttention, BlockwiseEqualsDenseMaskedAttention) {
  torch::manual_seed(0);
  for (const DalleLayout l : {DalleLayout{3, 4, 5, 3}, DalleLayout{2, 3, 3, 5}, DalleLayout{1, 5, 2, 1}}) {
    const int64_t B = 2, heads = 2, HD = 8;
    const at::Tensor q = torch::randn({B, l.len(), HD}), k = torch::randn({B, l.len(), HD}),
                     v = torch::randn({B, l.len(), HD});
    for (const auto kind : kKinds) {
      const at::Tensor expected = dense_reference(q, k, v, heads, dalle_attention_mask(kind, l));
      const at::Tensor got = dalle_sparse_attention(q, k, v, heads, kind, l);
      EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5))
          << dalle_attention_name(kind) << " rows " << l.rows << ": " << (got - expected).abs().max().item<double>();
      // One query at a time over the keys (the KV cache's path) gives the same rows.
      for (int64_t i : {int64_t{0}, l.text_len, l.len() / 2, l.len() - 1}) {
        const at::Tensor one = dalle_query_attention(q.narrow(1, i, 1), k, v, heads, kind, l, i);
        EXPECT_TRUE(torch::allclose(one, expected.narrow(1, i, 1), 1e-4, 1e-5)) << dalle_attention_name(kind) << " @" << i;
      }
    }
  }
  const DalleLayout l{3, 4, 5, 3};
  EXPECT_THROW(dalle_sparse_attention(torch::zeros({1, 5, 8}), torch::zeros({1, 5, 8}), torch::zeros({1, 5, 8}), 2,
                                      DalleAttention::Row, l),
               UsageError);
}

TEST(DalleTransformer, KVCacheEqualsRecomputation) {
  torch::manual_seed(1);
  const DalleConfig c = tiny_dalle({"row", "column", "full", "conv"});
  DalleTransformer model(c);
  model->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor text = dalle_text_ids({{1, 2}, {4, 5, 6}}, c);
  EXPECT_EQ(text[0][2].item<int64_t>(), c.pad_token(2));
  const at::Tensor image = torch::randint(c.image_vocab_size, {2, c.image_len()}, at::kLong);
  const at::Tensor full = model->forward(text, image);  // [2, L, C]
  for (int64_t known : {0, 7}) {
    auto [cache, logits] = model->prefill(text, image, known);
    for (int64_t n = known; n + 1 < c.image_len(); ++n) {
      const at::Tensor expected = model->image_head(full.select(1, c.text_len - 1 + n));
      ASSERT_TRUE(torch::allclose(logits, expected, 1e-4, 1e-5)) << "token " << n << ": "
                                                                 << (logits - expected).abs().max().item<double>();
      logits = model->step(cache, image.select(1, n), n);
    }
  }
  auto [cache, logits] = model->prefill(text, image, 0);
  EXPECT_THROW(model->step(cache, image.select(1, 3), 3), UsageError);  // does not follow the cache
  EXPECT_THROW(dalle_text_ids({{11}}, c), UsageError);
}

TEST(DalleTransformer, LossFallsAndWeighsTextAndImage) {
  torch::manual_seed(2);
  const DalleConfig c = tiny_dalle();
  DalleTransformer model(c);
  const at::Tensor text = dalle_text_ids({{1, 2}, {3}, {4, 5, 6}, {7}}, c);
  const at::Tensor image = torch::randint(c.image_vocab_size, {4, c.image_len()}, at::kLong);
  const DalleLoss first = model->loss(text, image);
  EXPECT_NEAR(first.loss.item<double>(), (first.text_loss.item<double>() + 7 * first.image_loss.item<double>()) / 8, 1e-5);
  // At initialisation the image loss is near log(vocab).
  EXPECT_NEAR(first.image_loss.item<double>(), std::log(7.0), 0.3);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(3e-3));
  double last = 0;
  for (int i = 0; i < 30; ++i) {
    opt.zero_grad();
    const DalleLoss l = model->loss(text, image);
    l.loss.backward();
    opt.step();
    last = l.loss.item<double>();
  }
  EXPECT_LT(last, first.loss.item<double>() * 0.7);
  const DalleLoss after = model->loss(text, image);
  EXPECT_LT(after.text_loss.item<double>(), first.text_loss.item<double>());
  EXPECT_LT(after.image_loss.item<double>(), first.image_loss.item<double>());
}

}  // namespace
}  // namespace genvis::models
