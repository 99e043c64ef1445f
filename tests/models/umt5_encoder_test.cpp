// UMT5 encoder on tiny random configs: config validation, strict weight loading, the relative
// position buckets, key-axis-only masking and Wan's cut-and-zero-pad of the output.
#include "core/error.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/umt5/umt5_encoder.h"
#include "support/test_support.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

using json = nlohmann::json;

json tiny_umt5_json() {
  return json{{"architectures", {"UMT5EncoderModel"}},
              {"model_type", "umt5"},
              {"vocab_size", 40},
              {"d_model", 8},
              {"d_kv", 3},
              {"d_ff", 12},
              {"num_layers", 2},
              {"num_heads", 2},
              {"relative_attention_num_buckets", 32},
              {"relative_attention_max_distance", 128},
              {"feed_forward_proj", "gated-gelu"},
              {"dense_act_fn", "gelu_new"},
              {"is_gated_act", true},
              {"scalable_attention", true},
              {"tie_word_embeddings", false},
              {"transformers_version", "4.40.0"}};
}

UMT5EncoderModel tiny_model(uint64_t seed = 0) {
  torch::manual_seed(seed);
  UMT5EncoderModel m(UMT5Config::from_json(tiny_umt5_json()));
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.normal_(0, 0.5);
  m->eval();
  return m;
}

using test::expect_contains;
using test::load_error;

TEST(UMT5Config, ReadsTransformersKeysAndReportsEveryProblem) {
  const UMT5Config c = UMT5Config::from_json(tiny_umt5_json(), "config.json");
  EXPECT_EQ(c.inner_dim(), 6);
  EXPECT_EQ(c.dense_act_fn(), "gelu_new");
  json j = tiny_umt5_json();
  j["d_modle"] = 8;
  j["num_heads"] = "two";
  j["feed_forward_proj"] = "relu";
  j["relative_attention_max_distance"] = 4;
  expect_contains(load_error([&] { UMT5Config::from_json(j, "config.json"); }),
                  {"config.json", "4 problem(s)", "unknown key d_modle", "num_heads has the wrong type",
                   "unsupported feed_forward_proj \"relu\"", "relative_attention_max_distance 4"});
  j = tiny_umt5_json();
  j["model_type"] = "t5";
  expect_contains(load_error([&] { UMT5Config::from_json(j, "config.json"); }), {"model_type \"t5\" is not umt5"});
  test::TempDir dir;
  test::write_bytes(dir.file("config.json"), "{\"d_model\": ");
  expect_contains(load_error([&] { UMT5Config::from_file(dir.file("config.json")); }), {"not valid JSON"});
}

TEST(UMT5Encoder, RelativePositionBuckets) {
  UMT5EncoderModel m = tiny_model();
  auto& attn = *m->encoder->block[0]->as<UMT5Block>()->layer[0]->as<UMT5LayerSelfAttention>()->SelfAttention;
  torch::NoGradGuard no_grad;
  // Head 0 of the table holds the bucket's own index, so compute_bias shows the buckets.
  attn.relative_attention_bias->weight.select(1, 0).copy_(torch::arange(32, torch::kFloat));
  const int64_t n = 300;
  const at::Tensor buckets = attn.compute_bias(n, n)[0][0].to(at::kLong);  // [query, key]
  const auto bucket = [&](int64_t offset) {  // key - query, with the query in the middle
    return buckets[150][150 + offset].item<int64_t>();
  };
  // 16 buckets per direction (keys after the query from 16), 8 exact, then
  // 8 + int(log(r / 8) / log(128 / 8) * 8), at most 15.
  EXPECT_EQ(bucket(0), 0);
  EXPECT_EQ(bucket(-1), 1);
  EXPECT_EQ(bucket(-7), 7);
  EXPECT_EQ(bucket(-8), 8);
  EXPECT_EQ(bucket(-12), 9);   // 8 + int(1.1699)
  EXPECT_EQ(bucket(-24), 11);  // 8 + int(3.1699)
  EXPECT_EQ(bucket(-127), 15);
  EXPECT_EQ(bucket(-150), 15);  // clamped past max_distance
  EXPECT_EQ(bucket(1), 17);
  EXPECT_EQ(bucket(24), 27);
  EXPECT_EQ(bucket(149), 31);
}

TEST(UMT5Encoder, EveryBlockHasItsOwnPositionBias) {
  UMT5EncoderModel m = tiny_model();
  const auto names = m->named_parameters().keys();
  for (int i = 0; i < 2; ++i)
    EXPECT_NE(std::find(names.begin(), names.end(),
                        "encoder.block." + std::to_string(i) + ".layer.0.SelfAttention.relative_attention_bias.weight"),
              names.end());
  EXPECT_EQ(std::count_if(names.begin(), names.end(), [](const std::string& n) { return n.find("embed_tokens") != std::string::npos; }), 0);
}

TEST(UMT5Encoder, MaskIsOnTheKeyAxisOnly) {
  torch::NoGradGuard no_grad;
  UMT5EncoderModel m = tiny_model(1);
  const at::Tensor ids = torch::tensor({{5, 9, 1, 0, 0}}, torch::kLong);
  const at::Tensor mask = torch::tensor({{1, 1, 1, 0, 0}}, torch::kLong);
  const UMT5EncoderOutput out = m(ids, mask);
  ASSERT_EQ(out.hidden_states.size(), 3u);
  EXPECT_TRUE(torch::equal(out.hidden_states.back(), out.last_hidden_state));
  // The real tokens do not see what the padding holds; the padded rows still get outputs.
  const at::Tensor other = m(torch::tensor({{5, 9, 1, 7, 3}}, torch::kLong), mask).last_hidden_state;
  EXPECT_TRUE(torch::allclose(out.last_hidden_state.narrow(1, 0, 3), other.narrow(1, 0, 3)));
  EXPECT_GT(out.last_hidden_state.narrow(1, 3, 2).abs().max().item<double>(), 0.0);
  // Without a mask every token is attended.
  EXPECT_FALSE(torch::allclose(m(ids).last_hidden_state.narrow(1, 0, 3), out.last_hidden_state.narrow(1, 0, 3)));
  EXPECT_THROW(m(torch::tensor({{40}}, torch::kLong)), UsageError);
  EXPECT_THROW(m(ids.to(torch::kInt)), UsageError);
}

TEST(UMT5Encoder, WanPromptEmbedsCutAndZeroPad) {
  const at::Tensor h = torch::randn({2, 4, 3}) + 5;
  const at::Tensor mask = torch::tensor({{1, 1, 1, 1}, {1, 1, 0, 0}}, torch::kLong);
  const at::Tensor e = wan_prompt_embeds(h, mask);
  EXPECT_TRUE(torch::equal(e[0], h[0]));
  EXPECT_TRUE(torch::equal(e[1].narrow(0, 0, 2), h[1].narrow(0, 0, 2)));
  EXPECT_EQ(e[1].narrow(0, 2, 2).abs().max().item<float>(), 0.0f);
  const at::Tensor longer = wan_prompt_embeds(h, mask, 6);
  EXPECT_EQ(longer.sizes(), (std::vector<int64_t>{2, 6, 3}));
  EXPECT_TRUE(torch::equal(longer.narrow(1, 0, 4), e));
  EXPECT_EQ(longer.narrow(1, 4, 2).abs().max().item<float>(), 0.0f);
  EXPECT_THROW(wan_prompt_embeds(h, mask, 3), UsageError);  // prompt 0 has 4 tokens
}

// Weights of `m` written under transformers' names, `edit`ed, then loaded strictly.
std::string load_edited(UMT5EncoderModel& m, const std::function<void(std::vector<std::pair<std::string, at::Tensor>>&)>& edit) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : m->named_parameters()) tensors.emplace_back(p.key(), p.value().detach().to(torch::kHalf));
  edit(tensors);
  test::TempDir dir;
  io::save_safetensors(dir.file("model.safetensors"), tensors);
  auto reader = io::open_weights(dir.file("model.safetensors"));
  UMT5EncoderModel target(m->config);
  return load_error([&] { load_umt5_encoder_weights(*target, *reader); });
}

TEST(UMT5Encoder, StrictLoading) {
  UMT5EncoderModel m = tiny_model(2);
  using Tensors = std::vector<std::pair<std::string, at::Tensor>>;
  EXPECT_EQ(load_edited(m, [](Tensors&) {}), "");
  // The tied copy alone stands for shared.weight; both together are fine.
  EXPECT_EQ(load_edited(m, [](Tensors& t) { t[0].first = "encoder.embed_tokens.weight"; }), "");
  EXPECT_EQ(load_edited(m, [](Tensors& t) { t.emplace_back("encoder.embed_tokens.weight", t[0].second); }), "");
  expect_contains(load_edited(m, [](Tensors& t) {
                    std::erase_if(t, [](const auto& p) { return p.first == "encoder.block.1.layer.1.DenseReluDense.wi_1.weight"; });
                  }),
                  {"model.safetensors", "missing 1", "encoder.block.1.layer.1.DenseReluDense.wi_1.weight"});
  expect_contains(load_edited(m, [](Tensors& t) {
                    for (auto& [name, value] : t)
                      if (name == "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
                        value = torch::zeros({32, 3}, torch::kHalf);
                  }),
                  {"wrong shape 1", "relative_attention_bias.weight [32, 3] (expected [32, 2])"});
  expect_contains(load_edited(m, [](Tensors& t) { t.emplace_back("decoder.block.0.layer.0.SelfAttention.q.weight", t[1].second); }),
                  {"unexpected 1", "decoder.block.0.layer.0.SelfAttention.q.weight"});
}

TEST(UMT5Encoder, LoadsAComponentFolderInF32) {
  torch::NoGradGuard no_grad;
  UMT5EncoderModel m = tiny_model(3);
  test::TempDir dir;
  test::write_bytes(dir.file("config.json"), tiny_umt5_json().dump());
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : m->named_parameters()) tensors.emplace_back(p.key(), p.value().detach().to(torch::kHalf));
  io::save_safetensors(dir.file("model.safetensors"), tensors);
  UMT5EncoderModel loaded = load_umt5_encoder(dir.path());
  EXPECT_EQ(loaded->shared->weight.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(loaded->shared->weight, m->shared->weight.to(torch::kHalf).to(torch::kFloat)));
}

}  // namespace
}  // namespace genvis::models
