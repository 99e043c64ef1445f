// DF-GAN at tiny size: the official block layout from the config, shapes, identity-at-init of the
// affine layers, the hinge losses by hand, and the matching-aware gradient penalty against
// finite differences (its value from finite-difference input gradients, and its own gradient
// with respect to the discriminator's weights, which needs double backward).
#include "core/error.h"
#include "models/dfgan/dfgan_loss.h"
#include "models/dfgan/dfgan_model.h"
#include "nn/state_dict.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::models {
namespace {

using json = nlohmann::json;

DFGANConfig tiny_dfgan() { return DFGANConfig::from_json(json{{"image_size", 8}, {"ngf", 2}, {"ndf", 2}, {"z_dim", 4}, {"cond_dim", 3}}); }

TEST(DFGANConfig, BlockChannelsFollowTheOfficialCode) {
  // 64 px, nf 32: channels 32 * min(2^i, 8) for i < log2(64) - 1 = 5 -> 32, 64, 128, 256, 256.
  const DFGANConfig c = DFGANConfig::from_json(json{{"image_size", 64}, {"ngf", 32}, {"ndf", 32}});
  using P = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(c.generator_channels(), (P{{256, 256}, {256, 128}, {128, 64}, {64, 32}}));
  EXPECT_EQ(c.discriminator_channels(), (P{{32, 64}, {64, 128}, {128, 256}, {256, 256}}));
  EXPECT_EQ(c.generator_fc_channels(), 256);
  EXPECT_EQ(c.discriminator_out_channels(), 256);
  EXPECT_EQ(DFGANConfig::from_json(c.to_json()).to_json(), c.to_json());
  try {
    DFGANConfig::from_json(json{{"image_size", 48}, {"ngf", 0}, {"colour", 1}}, "bad.json");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    for (const char* part : {"bad.json", "image_size", "ngf", "unknown key colour"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in " << what;
  }
}

TEST(DFGAN, ShapesKeyNamesAndIdentityAffinesAtInit) {
  torch::manual_seed(0);
  const DFGANConfig c = tiny_dfgan();
  DFGANGenerator g(c);
  DFGANDiscriminator d(c);
  const at::Tensor z = torch::randn({2, 4}), s = torch::randn({2, 3});
  const at::Tensor x = g(z, s);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{2, 3, 8, 8}));
  EXPECT_LE(x.abs().max().item<double>(), 1.0);
  const at::Tensor f = d(x);
  ASSERT_EQ(f.sizes(), (std::vector<int64_t>{2, 4, 4, 4}));  // 8 px: one block, 2 * ndf
  EXPECT_EQ(d->score(f, s).sizes(), (std::vector<int64_t>{2}));
  // The official names.
  const auto keys = [](torch::nn::Module& m) {
    std::vector<std::string> k;
    for (const auto& [name, t] : nn::state_dict(m)) k.push_back(name);
    return k;
  };
  const auto names = keys(*g);
  for (const char* key : {"fc.weight", "GBlocks.0.fuse1.affine0.fc_gamma.linear1.weight", "GBlocks.0.c_sc.weight",
                          "to_rgb.1.weight"})
    EXPECT_TRUE(std::find(names.begin(), names.end(), key) != names.end()) << key;
  const auto dnames = keys(*d);
  for (const char* key : {"conv_img.weight", "DBlocks.0.conv_r.0.weight", "DBlocks.0.conv_r.2.weight",
                          "DBlocks.0.conv_s.weight", "DBlocks.0.gamma", "joint_conv.0.weight", "joint_conv.2.weight"})
    EXPECT_TRUE(std::find(dnames.begin(), dnames.end(), key) != dnames.end()) << key;
  // An affine layer starts as the identity, whatever the condition.
  DFGANAffine affine(3, 5);
  const at::Tensor h = torch::randn({2, 5, 4, 4});
  EXPECT_TRUE(torch::allclose(affine(h, torch::randn({2, 3})), h));
  EXPECT_THROW(g(torch::randn({2, 5}), s), UsageError);
  EXPECT_THROW(d(torch::randn({2, 3, 16, 16})), UsageError);
}

TEST(DFGAN, ClampOutputIsRawInTrainingAndClampedInEval) {
  // "clamp": the same weights as "tanh" (no parameter of its own); raw values while training,
  // the same values clamped to [-1, 1] in eval mode; "tanh" squashes them.
  json j = tiny_dfgan().to_json();
  j["output"] = "clamp";
  const DFGANConfig c = DFGANConfig::from_json(j);
  EXPECT_EQ(c.output, "clamp");
  EXPECT_EQ(DFGANConfig::from_json(c.to_json()).output, "clamp");
  EXPECT_EQ(tiny_dfgan().output, "tanh");
  torch::manual_seed(0);
  DFGANGenerator g(c);
  torch::manual_seed(0);
  DFGANGenerator t(tiny_dfgan());  // the same weights
  {
    torch::NoGradGuard no_grad;  // push the raw output past 1
    for (auto* m : {&g, &t}) (*m)->to_rgb[1]->as<torch::nn::Conv2dImpl>()->bias.fill_(3.0);
  }
  const at::Tensor z = torch::randn({2, 4}), s = torch::randn({2, 3});
  const at::Tensor raw = g(z, s);
  EXPECT_GT(raw.max().item<double>(), 1.5);
  EXPECT_TRUE(raw.requires_grad());
  EXPECT_TRUE(torch::allclose(t(z, s), torch::tanh(raw)));
  g->eval();
  const at::Tensor clamped = g(z, s);
  EXPECT_TRUE(torch::equal(clamped, raw.detach().clamp(-1.0, 1.0)));
  try {
    j["output"] = "sigmoid";
    DFGANConfig::from_json(j, "g.json");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("output must be"), std::string::npos) << e.what();
  }
}

TEST(DFGANLoss, HingeLossesByHand) {
  const at::Tensor real = torch::tensor({2.0, 0.5}), fake = torch::tensor({-2.0, 0.0}), mis = torch::tensor({1.0, -0.5});
  // real: relu(1-2)=0, relu(0.5)=0.5 -> 0.25; fake: 0, 1 -> 0.5; mismatched: 2, 0.5 -> 1.25.
  EXPECT_NEAR(dfgan::discriminator_loss(real, fake, mis).item<double>(), 0.25 + 0.5 * (0.5 + 1.25), 1e-12);
  EXPECT_NEAR(dfgan::generator_loss(fake).item<double>(), 1.0, 1e-12);
  const at::Tensor f = torch::arange(3).view({3, 1});
  EXPECT_TRUE(dfgan::roll_batch(f).equal(torch::tensor({1, 2, 0}).view({3, 1})));
}

// D(x, s) per sample, in double, for finite differences.
at::Tensor logits(DFGANDiscriminator& d, const at::Tensor& x, const at::Tensor& s) { return d->score(d(x), s); }

TEST(DFGANLoss, GradientPenaltyMatchesFiniteDifferences) {
  torch::manual_seed(1);
  const DFGANConfig c = tiny_dfgan();
  DFGANDiscriminator d(c);
  d->to(at::kDouble);
  {
    // Let the residual branches contribute (gamma starts at 0).
    torch::NoGradGuard no_grad;
    for (auto& item : d->named_parameters())
      if (item.key().find("gamma") != std::string::npos) item.value().fill_(0.7);
  }
  const at::Tensor x0 = torch::randn({2, 3, 8, 8}, at::kDouble), s0 = torch::randn({2, 3}, at::kDouble);
  const double k = 2.0, p = 6.0, h = 1e-6;

  // 1) The value: k * mean ||(dD/dx, dD/ds)||^p with both gradients by central differences.
  double expected = 0;
  {
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < 2; ++i) {
      double sq = 0;
      for (const bool image : {true, false}) {
        const at::Tensor base = image ? x0 : s0;
        for (int64_t j = 0; j < base[i].numel(); ++j) {
          at::Tensor plus = base.clone(), minus = base.clone();
          plus[i].view({-1})[j] += h;
          minus[i].view({-1})[j] -= h;
          const double fp = (image ? logits(d, plus, s0) : logits(d, x0, plus))[i].item<double>();
          const double fm = (image ? logits(d, minus, s0) : logits(d, x0, minus))[i].item<double>();
          const double g = (fp - fm) / (2 * h);
          sq += g * g;
        }
      }
      expected += k * std::pow(sq, p / 2) / 2;
    }
  }
  const auto penalty = [&] {
    const at::Tensor x = x0.clone().requires_grad_(true), s = s0.clone().requires_grad_(true);
    return dfgan::matching_aware_gradient_penalty(logits(d, x, s), x, s, k, p);
  };
  const at::Tensor gp = penalty();
  EXPECT_NEAR(gp.item<double>(), expected, 1e-5 * std::max(1.0, expected));

  // 2) Its gradient with respect to the discriminator's weights (double backward) against
  // central differences of the penalty itself, on a few entries of a few tensors.
  d->zero_grad();
  gp.backward();
  int checked = 0;
  for (auto& item : d->named_parameters()) {
    const std::string& name = item.key();
    at::Tensor& param = item.value();
    if (name != "joint_conv.0.weight" && name != "DBlocks.0.conv_r.0.weight" && name != "conv_img.bias") continue;
    for (const int64_t j : {int64_t{0}, param.numel() / 2, param.numel() - 1}) {
      const double analytic = param.grad().view({-1})[j].item<double>();
      double fd;
      {
        torch::NoGradGuard no_grad;
        param.view({-1})[j] += h;
      }
      const double up = penalty().item<double>();
      {
        torch::NoGradGuard no_grad;
        param.view({-1})[j] -= 2 * h;
      }
      const double down = penalty().item<double>();
      {
        torch::NoGradGuard no_grad;
        param.view({-1})[j] += h;
      }
      fd = (up - down) / (2 * h);
      EXPECT_NEAR(analytic, fd, 1e-4 * std::max(1.0, std::abs(fd))) << name << "[" << j << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 9);
  EXPECT_THROW(dfgan::matching_aware_gradient_penalty(logits(d, x0, s0), x0, s0), UsageError);
}

TEST(DFGAN, AFewDiscriminatorThenGeneratorStepsLowerTheirLosses) {
  torch::manual_seed(2);
  const DFGANConfig c = tiny_dfgan();
  DFGANGenerator g(c);
  DFGANDiscriminator d(c);
  const at::Tensor real = torch::rand({8, 3, 8, 8}) * 2 - 1, s = torch::randn({8, 3}), z = torch::randn({8, 4});
  torch::optim::Adam dopt(d->parameters(), torch::optim::AdamOptions(2e-3).betas({0.0, 0.9}));
  torch::optim::Adam gopt(g->parameters(), torch::optim::AdamOptions(1e-3).betas({0.0, 0.9}));
  const auto d_loss = [&] {
    const at::Tensor x = real.clone().requires_grad_(true), sent = s.clone().requires_grad_(true);
    const at::Tensor f = d(x);
    const at::Tensor r = d->score(f, sent);
    const at::Tensor fake = d->score(d(g(z, s).detach()), sent);
    return dfgan::discriminator_loss(r, fake, d->score(dfgan::roll_batch(f), sent)) +
           dfgan::matching_aware_gradient_penalty(r, x, sent);
  };
  const double d0 = d_loss().item<double>();
  for (int i = 0; i < 150; ++i) {
    dopt.zero_grad();
    d_loss().backward();
    dopt.step();
  }
  const double d1 = d_loss().item<double>();
  EXPECT_LT(d1, 0.9 * d0) << d0 << " -> " << d1;
  // The generator against the trained discriminator (its weights left alone).
  const auto g_loss = [&] { return dfgan::generator_loss(d->score(d(g(z, s)), s)); };
  const double g0 = g_loss().item<double>();
  const at::Tensor d_before = d->joint_conv[0]->as<torch::nn::Conv2dImpl>()->weight.clone();
  for (int i = 0; i < 20; ++i) {
    gopt.zero_grad();
    g_loss().backward();
    gopt.step();
  }
  EXPECT_LT(g_loss().item<double>(), g0);
  EXPECT_TRUE(torch::equal(d->joint_conv[0]->as<torch::nn::Conv2dImpl>()->weight, d_before));
}

}  // namespace
}  // namespace genvis::models
