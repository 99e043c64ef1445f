#include "core/error.h"
#include "io/safetensors.h"
#include "nn/state_dict.h"
#include "support/test_support.h"

#include <torch/torch.h>

namespace genvis::nn {
namespace {

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    proj = register_module("proj", torch::nn::Linear(3, 2));
    scale = register_buffer("scale", torch::ones({2}));
  }
  torch::nn::Linear proj{nullptr};
  at::Tensor scale;
};
TORCH_MODULE(Tiny);

TEST(StateDict, LoadsByNameWithCastAndPrefix) {
  test::TempDir dir;
  const at::Tensor w = torch::arange(6, at::kFloat).reshape({2, 3}).to(at::kHalf);
  io::save_safetensors(dir.file("m.safetensors"), {{"model.proj.weight", w},
                                                   {"model.proj.bias", torch::tensor({0.5f, -1.f}).to(at::kHalf)},
                                                   {"model.scale", torch::tensor({2.f, 3.f})},
                                                   {"other.thing", torch::zeros({1})}});
  auto reader = io::open_weights(dir.file("m.safetensors"));
  Tiny m;
  LoadOptions o;
  o.prefix = "model.";
  o.dtype = at::kFloat;
  const LoadReport r = load_state_dict(*m, *reader, o);
  EXPECT_EQ(r.loaded, 3u);
  EXPECT_EQ(m->proj->weight.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(m->proj->weight, w.to(at::kFloat)));
  EXPECT_FLOAT_EQ(m->proj->bias[1].item<float>(), -1.f);
  EXPECT_FLOAT_EQ(m->scale[1].item<float>(), 3.f);
}

// state_dict writes what load_state_dict reads: parameters cast when asked, buffers as they are.
TEST(StateDict, SavesWhatItLoads) {
  test::TempDir dir;
  Tiny a;
  a->scale.fill_(4.f);
  const auto half = state_dict(*a, at::kHalf);
  ASSERT_EQ(half.size(), 3u);
  EXPECT_EQ(half[0].first, "proj.weight");
  EXPECT_EQ(half[0].second.scalar_type(), at::kHalf);
  EXPECT_EQ(half[2].first, "scale");
  EXPECT_EQ(half[2].second.scalar_type(), at::kFloat);
  io::save_safetensors(dir.file("m.safetensors"), state_dict(*a));
  auto reader = io::open_weights(dir.file("m.safetensors"));
  Tiny b;
  EXPECT_EQ(load_state_dict(*b, *reader).loaded, 3u);
  EXPECT_TRUE(at::equal(b->proj->weight, a->proj->weight));
  EXPECT_TRUE(at::equal(b->proj->bias, a->proj->bias));
  EXPECT_FLOAT_EQ(b->scale[0].item<float>(), 4.f);
}

TEST(StateDict, ListsEveryProblemInOneError) {
  test::TempDir dir;
  io::save_safetensors(dir.file("m.safetensors"), {{"proj.weight", torch::zeros({2, 4})}, {"extra.weight", torch::zeros({1})}});
  auto reader = io::open_weights(dir.file("m.safetensors"));
  Tiny m;
  try {
    load_state_dict(*m, *reader);
    FAIL() << "no error";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("missing 2 [proj.bias, scale]"), std::string::npos) << what;
    EXPECT_NE(what.find("unexpected 1 [extra.weight]"), std::string::npos) << what;
    EXPECT_NE(what.find("wrong shape 1 [proj.weight [2, 4] (expected [2, 3])]"), std::string::npos) << what;
  }
}

TEST(StateDict, KeyMapOptionalKeysAndSingletonDims) {
  test::TempDir dir;
  io::save_safetensors(dir.file("m.safetensors"), {{"q.w", torch::ones({2, 3, 1, 1})}, {"q.b", torch::zeros({2})},
                                                   {"position_ids", torch::zeros({1})}});
  auto reader = io::open_weights(dir.file("m.safetensors"));
  Tiny m;
  LoadOptions o;
  o.key_map = [](const std::string& k) { return k == "q.w" ? "proj.weight" : k == "q.b" ? "proj.bias" : k; };
  o.optional_key = [](const std::string& k) { return k == "scale"; };
  o.ignore_unexpected = [](const std::string& k) { return k == "position_ids"; };
  EXPECT_THROW(load_state_dict(*m, *reader, o), LoadError);  // [2,3,1,1] vs [2,3]
  o.squeeze_singleton_dims = true;
  const LoadReport r = load_state_dict(*m, *reader, o);
  EXPECT_EQ(r.loaded, 2u);
  EXPECT_EQ(r.skipped, std::vector<std::string>{"position_ids"});
  EXPECT_FLOAT_EQ(m->proj->weight.sum().item<float>(), 6.f);
}

}  // namespace
}  // namespace genvis::nn
