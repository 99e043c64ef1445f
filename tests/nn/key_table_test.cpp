#include "core/error.h"
#include "io/safetensors.h"
#include "nn/key_table.h"
#include "support/test_support.h"

#include <torch/torch.h>

namespace genvis::nn {
namespace {

const KeyTable& table() {
  static const KeyTable t({
      {"blocks.#.self_attn.q.", "layers.#.attn.to_q."},
      {"blocks.#.attn.to_qkv.", std::vector<std::string>{"layers.#.q.", "layers.#.k.", "layers.#.v."}},
      {"blocks.#.", "layers.#.rest."},  // shorter: loses to the rules above
      {"head.modulation", "scale_shift_table"},
      {"textual.", ""},
      {"x.#.y.#.", "a.#.b.#."},
  });
  return t;
}

TEST(KeyTable, RenamesPrefixesAndWholeNamesCarryingIndices) {
  EXPECT_EQ(table().to_module("blocks.12.self_attn.q.weight"), std::vector<std::string>{"layers.12.attn.to_q.weight"});
  EXPECT_EQ(table().to_module("blocks.3.norm.bias"), std::vector<std::string>{"layers.3.rest.norm.bias"});
  EXPECT_EQ(table().to_module("head.modulation"), std::vector<std::string>{"scale_shift_table"});
  EXPECT_EQ(table().to_module("x.1.y.20.w"), std::vector<std::string>{"a.1.b.20.w"});
  // A whole-name rule matches only the whole name; '#' needs digits.
  EXPECT_FALSE(table().to_module("head.modulation.extra"));
  EXPECT_FALSE(table().to_module("blocks.a.norm.bias"));
  EXPECT_FALSE(table().to_module("unknown.weight"));
  EXPECT_EQ(table().to_module("textual.anything.weight"), std::vector<std::string>{""});
}

TEST(KeyTable, SplitsFusedTensorsAndInverts) {
  EXPECT_EQ(table().to_module("blocks.0.attn.to_qkv.bias"),
            (std::vector<std::string>{"layers.0.q.bias", "layers.0.k.bias", "layers.0.v.bias"}));
  const auto k = table().to_file("layers.7.k.weight");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->name, "blocks.7.attn.to_qkv.weight");
  EXPECT_EQ(k->part, 1u);
  EXPECT_EQ(k->parts, 3u);
  EXPECT_EQ(table().to_file("layers.7.attn.to_q.weight")->name, "blocks.7.self_attn.q.weight");
  EXPECT_EQ(table().to_file("layers.7.rest.w")->name, "blocks.7.w");
  EXPECT_EQ(table().to_file("scale_shift_table")->name, "head.modulation");
  EXPECT_FALSE(table().to_file("nothing"));
}

TEST(KeyTable, RefusesRulesWhoseSidesDisagree) {
  EXPECT_THROW(KeyTable(std::vector<KeyRule>{{"a.", "b"}}), UsageError);
  EXPECT_THROW(KeyTable(std::vector<KeyRule>{{"a.#.", "b."}}), UsageError);
  EXPECT_THROW(KeyTable(std::vector<KeyRule>{{"", "b"}}), UsageError);
}

struct PairImpl : torch::nn::Module {
  PairImpl() {
    q = register_module("q", torch::nn::Linear(2, 2));
    k = register_module("k", torch::nn::Linear(2, 2));
    v = register_module("v", torch::nn::Linear(2, 2));
    norm = register_parameter("norm", torch::ones({2}));
  }
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr};
  at::Tensor norm;
};
TORCH_MODULE(Pair);

const KeyTable& fused_table() {
  static const KeyTable t({{"qkv.", std::vector<std::string>{"q.", "k.", "v."}}, {"n", "norm"}, {"skip.", ""}});
  return t;
}

// A fused q/k/v file loads into three modules; missing and wrongly shaped tensors are named as
// the file names them.
TEST(KeyTable, LoadsThroughStateDict) {
  test::TempDir dir;
  const at::Tensor w = torch::arange(12, at::kFloat).reshape({6, 2}), b = torch::arange(6, at::kFloat);
  io::save_safetensors(dir.file("ok.safetensors"),
                       {{"qkv.weight", w}, {"qkv.bias", b}, {"n", torch::full({2}, 3.f)}, {"skip.me", torch::zeros({1})}});
  Pair m;
  LoadOptions o;
  fused_table().apply(o);
  auto reader = io::open_weights(dir.file("ok.safetensors"));
  const LoadReport r = load_state_dict(*m, *reader, o);
  EXPECT_EQ(r.loaded, 7u);
  EXPECT_TRUE(at::equal(m->k->weight, w.slice(0, 2, 4)));
  EXPECT_TRUE(at::equal(m->v->bias, b.slice(0, 4, 6)));
  EXPECT_FLOAT_EQ(m->norm[0].item<float>(), 3.f);

  io::save_safetensors(dir.file("bad.safetensors"),
                       {{"qkv.weight", torch::zeros({5, 2})}, {"n", torch::zeros({2})}, {"odd.name", torch::zeros({1})}});
  reader = io::open_weights(dir.file("bad.safetensors"));
  const std::string what = test::load_error([&] { load_state_dict(*m, *reader, o); });
  test::expect_contains(what, {"bad.safetensors", "missing 3 [", "qkv.bias (part 1 of 3)", "qkv.bias (part 3 of 3)",
                               "unexpected 1 [odd.name]", "qkv.weight [5, 2] (a fused tensor of 3 parts along dim 0)"});

  io::save_safetensors(dir.file("shape.safetensors"),
                       {{"qkv.weight", torch::zeros({9, 2})}, {"qkv.bias", b}, {"n", torch::zeros({2})}});
  reader = io::open_weights(dir.file("shape.safetensors"));
  test::expect_contains(test::load_error([&] { load_state_dict(*m, *reader, o); }),
                        {"qkv.weight (part 1 of 3) [3, 2] (expected [2, 2])"});
}

}  // namespace
}  // namespace genvis::nn
