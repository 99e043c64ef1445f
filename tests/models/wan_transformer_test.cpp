// WanTransformer3DModel: config checks, shape errors, and per-sample independence in a batch.
#include "core/error.h"
#include "models/wan/wan_transformer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

nlohmann::json tiny(bool i2v = false) {
  nlohmann::json j = {{"_class_name", "WanTransformer3DModel"}, {"patch_size", {1, 2, 2}}, {"num_attention_heads", 2},
                      {"attention_head_dim", 12}, {"in_channels", i2v ? 36 : 16}, {"out_channels", 16},
                      {"text_dim", 8}, {"freq_dim", 16}, {"ffn_dim", 32}, {"num_layers", 2},
                      {"image_dim", nullptr}, {"added_kv_proj_dim", nullptr}};
  if (i2v) j["image_dim"] = 10, j["added_kv_proj_dim"] = 24;
  return j;
}

TEST(WanTransformerConfig, EveryProblemAtOnce) {
  nlohmann::json j = tiny();
  j["num_layerz"] = 3;
  j["ffn_dim"] = "big";
  j["qk_norm"] = "layer_norm";
  j["image_dim"] = 10;  // without added_kv_proj_dim
  j["patch_size"] = {1, 2};
  try {
    WanTransformer3DConfig::from_json(j, "config.json");
    FAIL() << "accepted";
  } catch (const LoadError& e) {
    const std::string m = e.what();
    for (const char* want : {"config.json", "num_layerz", "ffn_dim", "qk_norm", "image_dim and added_kv_proj_dim",
                             "patch_size must have 3 entries"})
      EXPECT_NE(m.find(want), std::string::npos) << want << " not in: " << m;
  }
  j = tiny(true);
  j["added_kv_proj_dim"] = 20;
  EXPECT_THROW(WanTransformer3DConfig::from_json(j), LoadError);
  j = tiny();
  j["pos_embed_seq_len"] = 514;
  EXPECT_THROW(WanTransformer3DConfig::from_json(j), LoadError);
  EXPECT_NO_THROW(WanTransformer3DConfig::from_json(tiny(true)));
}

TEST(WanTransformer, ShapeAndConditionErrors) {
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  WanTransformer3DModel t2v(WanTransformer3DConfig::from_json(tiny()));
  const at::Tensor text = torch::randn({1, 5, 8}), t = torch::tensor({500.0f});
  EXPECT_EQ(t2v->forward(torch::randn({1, 16, 3, 4, 6}), t, text).sizes(), (std::vector<int64_t>{1, 16, 3, 4, 6}));
  EXPECT_THROW(t2v->forward(torch::randn({1, 8, 3, 4, 6}), t, text), UsageError);        // channels
  EXPECT_THROW(t2v->forward(torch::randn({1, 16, 3, 5, 6}), t, text), UsageError);       // odd height
  EXPECT_THROW(t2v->forward(torch::randn({1, 16, 3, 4, 6}), t, torch::randn({1, 5, 9})), UsageError);
  EXPECT_THROW(t2v->forward(torch::randn({2, 16, 3, 4, 6}), torch::tensor({1.0f, 2.0f, 3.0f}),
                            torch::randn({2, 5, 8})),
               UsageError);  // timesteps for another batch
  EXPECT_THROW(t2v->forward(torch::randn({1, 16, 3, 4, 6}), t, text, torch::randn({1, 7, 10})), UsageError);
  WanTransformer3DModel i2v(WanTransformer3DConfig::from_json(tiny(true)));
  EXPECT_THROW(i2v->forward(torch::randn({1, 36, 3, 4, 6}), t, text), UsageError);  // no image states
  EXPECT_EQ(i2v->forward(torch::randn({1, 36, 3, 4, 6}), t, text, torch::randn({1, 7, 10})).sizes(),
            (std::vector<int64_t>{1, 16, 3, 4, 6}));
}

// Two samples with their own timesteps, texts and images give what each gives alone.
TEST(WanTransformer, BatchSamplesAreIndependent) {
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  WanTransformer3DModel dit(WanTransformer3DConfig::from_json(tiny(true)));
  const at::Tensor x = torch::randn({2, 36, 2, 4, 4}), text = torch::randn({2, 6, 8}), img = torch::randn({2, 7, 10});
  const at::Tensor t = torch::tensor({900.0f, 50.0f});
  const at::Tensor both = dit->forward(x, t, text, img);
  for (int64_t i = 0; i < 2; ++i) {
    const at::Tensor one = dit->forward(x.slice(0, i, i + 1), t.slice(0, i, i + 1), text.slice(0, i, i + 1),
                                        img.slice(0, i, i + 1));
    EXPECT_TRUE(at::allclose(both.slice(0, i, i + 1), one, 1e-5, 1e-5)) << i;
  }
  EXPECT_FALSE(at::allclose(both.slice(0, 0, 1), both.slice(0, 1, 2)));
}

// First-block cache: off (threshold 0) it is the plain forward; the first call is a full pass; a
// call whose first block changed by less than the threshold reuses the other blocks' residual
// (the same output on the same inputs), one that changed more runs everything again.
TEST(WanTransformer, FirstBlockCache) {
  torch::manual_seed(2);
  torch::NoGradGuard no_grad;
  auto j = tiny();
  j["num_layers"] = 3;
  WanTransformer3DModel dit(WanTransformer3DConfig::from_json(j));
  const at::Tensor x = torch::randn({1, 16, 2, 4, 4}), text = torch::randn({1, 6, 8});
  const at::Tensor t1 = torch::tensor({900.f}), t2 = torch::tensor({880.f});
  const at::Tensor plain1 = dit->forward(x, t1, text), plain2 = dit->forward(x * 0.98f, t2, text);
  WanBlockCache off;
  EXPECT_TRUE(dit->forward(x, t1, text, {}, &off).equal(plain1));
  EXPECT_EQ(off.full + off.cached, 0);
  WanBlockCache cache{0.5};
  EXPECT_TRUE(at::allclose(dit->forward(x, t1, text, {}, &cache), plain1, 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(dit->forward(x, t1, text, {}, &cache), plain1, 1e-5, 1e-5));
  EXPECT_EQ(cache.full, 1);
  EXPECT_EQ(cache.cached, 1);
  const at::Tensor reused = dit->forward(x * 0.98f, t2, text, {}, &cache);
  EXPECT_EQ(cache.cached, 2);
  EXPECT_FALSE(at::allclose(reused, plain2, 1e-5, 1e-5));
  WanBlockCache strict{1e-9};
  dit->forward(x, t1, text, {}, &strict);
  EXPECT_TRUE(at::allclose(dit->forward(x * 0.98f, t2, text, {}, &strict), plain2, 1e-5, 1e-5));
  EXPECT_EQ(strict.full, 2);
  EXPECT_EQ(strict.cached, 0);
}

}  // namespace
}  // namespace genvis::models
