// GradientSync's hooks in one process (the sum over processes is then the identity): the
// gradients it writes back equal plain accumulation over micro-batches, buckets start during the
// last backward in order, parameters no micro-batch reached keep no gradient, and nothing is
// touched once it is gone. The sum over processes itself: tests/train/distributed_integration_test.
#include "support/test_support.h"
#include "train/grad_sync.h"

#include <torch/torch.h>

namespace genvis::train {
namespace {

struct Net : torch::nn::Module {
  torch::nn::Linear a{nullptr}, b{nullptr}, unused{nullptr};
  Net() {
    torch::manual_seed(3);
    a = register_module("a", torch::nn::Linear(6, 32));
    b = register_module("b", torch::nn::Linear(32, 2));
    unused = register_module("unused", torch::nn::Linear(2, 2));
  }
  at::Tensor forward(const at::Tensor& x) { return b->forward(torch::tanh(a->forward(x))); }
};

at::Tensor micro_loss(Net& net, int64_t micro) {
  torch::manual_seed(100 + micro);
  const at::Tensor x = torch::randn({5, 6});
  return (net.forward(x) - x.narrow(1, 0, 2)).pow(2).mean();
}

TEST(GradientSync, WritesBackWhatAccumulationGivesAndStartsBucketsDuringBackward) {
  Net plain, synced;
  // Buckets of at most 256 bytes. At first in reverse registration order, where unused.* (never
  // given a gradient) shares the first bucket with b.bias and holds every bucket back; after the
  // first sum in the order the gradients came (b's, then a's), unused.* last, alone.
  GradientSync sync(named(synced.named_parameters()), 256);
  EXPECT_EQ(sync.buckets(), 4);
  for (int round = 0; round < 2; ++round) {
    for (auto* net : {&plain, &synced})
      for (auto& t : net->parameters()) t.mutable_grad() = at::Tensor();
    // Reference: three micro-batches accumulated by autograd alone.
    for (int64_t m = 0; m < 3; ++m) (micro_loss(plain, 10 * round + m) / 3.0).backward();
    double local = 0;
    for (int64_t m = 0; m < 3; ++m) {
      const at::Tensor l = micro_loss(synced, 10 * round + m);
      local += l.item<double>();
      if (m == 2) sync.arm();
      (l / 3.0).backward();
    }
    EXPECT_DOUBLE_EQ(sync.finish(local, "test"), local);  // one process: the sum is its own
    if (round == 0) {
      EXPECT_EQ(sync.started_during_backward(), 0);  // the unused parameters' bucket came first
    } else {
      EXPECT_GE(sync.buckets(), 4);
      EXPECT_EQ(sync.started_during_backward(), sync.buckets() - 1);  // all but the unused parameters' bucket
    }
    const auto p = plain.named_parameters(), s = synced.named_parameters();
    for (const auto& name : {"a.weight", "a.bias", "b.weight", "b.bias"}) {
      ASSERT_TRUE(s[name].grad().defined()) << name;
      EXPECT_TRUE(at::allclose(s[name].grad(), p[name].grad(), 1e-6, 1e-7)) << name << " round " << round;
    }
    EXPECT_FALSE(s["unused.weight"].grad().defined());
    EXPECT_FALSE(s["unused.bias"].grad().defined());
  }
}

TEST(GradientSync, AnUnarmedBackwardAndAGoneSyncLeaveGradientsAlone) {
  Net plain, synced;
  (micro_loss(plain, 0)).backward();
  {
    GradientSync sync(named(synced.named_parameters()), 256);
    (micro_loss(synced, 0)).backward();  // not armed: the hooks pass
    EXPECT_EQ(sync.started_during_backward(), 0);
  }
  // Its hooks are gone with it: another backward accumulates as usual.
  for (auto* net : {&plain, &synced}) net->zero_grad();
  micro_loss(plain, 1).backward();
  micro_loss(synced, 1).backward();
  for (const auto& item : plain.named_parameters()) {
    if (item.value().grad().defined()) {
      EXPECT_TRUE(at::equal(synced.named_parameters()[item.key()].grad(), item.value().grad())) << item.key();
    }
  }
}

}  // namespace
}  // namespace genvis::train
