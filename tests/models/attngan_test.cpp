// AttnGAN at tiny size: stage sizes from the config, the official key names, shapes, the
// word-context attention on hand-made inputs (and that masked words get none), the conditioning
// augmentation, and the losses by hand.
#include "core/error.h"
#include "models/attngan/attngan_loss.h"
#include "models/attngan/attngan_model.h"
#include "nn/state_dict.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::models {
namespace {

using json = nlohmann::json;

AttnGANConfig tiny() {
  return AttnGANConfig::from_json(json{{"image_size", 32}, {"branch_num", 3}, {"gf_dim", 4}, {"df_dim", 2}, {"z_dim", 5},
                                       {"condition_dim", 3}, {"embedding_dim", 6}, {"r_num", 1}});
}

std::vector<std::string> keys(torch::nn::Module& m) {
  std::vector<std::string> k;
  for (const auto& [name, t] : nn::state_dict(m)) k.push_back(name);
  return k;
}

bool has(const std::vector<std::string>& names, const std::string& key) {
  return std::find(names.begin(), names.end(), key) != names.end();
}

TEST(AttnGANConfig, StagesScaleFromTheFinalSize) {
  const auto c = AttnGANConfig::from_json(json{{"image_size", 64}, {"branch_num", 3}});
  EXPECT_EQ(c.stage_sizes(), (std::vector<int64_t>{16, 32, 64}));
  EXPECT_EQ(c.init_upsamples(), 2);  // 4 -> 8 -> 16
  // The paper's: 256 px in three stages starts at 64 px, four upsamplings from gf_dim * 16.
  const auto paper = AttnGANConfig::from_json(json{{"image_size", 256}, {"branch_num", 3}});
  EXPECT_EQ(paper.stage_sizes(), (std::vector<int64_t>{64, 128, 256}));
  EXPECT_EQ(paper.init_upsamples(), 4);
  EXPECT_EQ(AttnGANConfig::from_json(c.to_json()).to_json(), c.to_json());
  try {
    AttnGANConfig::from_json(json{{"image_size", 16}, {"branch_num", 3}, {"gf_dim", 0}, {"colour", 1}}, "bad.json");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    for (const char* part : {"bad.json", "first stage's size", "gf_dim", "unknown key colour"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in " << what;
  }
}

TEST(AttnGAN, ShapesAndOfficialKeyNames) {
  torch::manual_seed(0);
  const auto c = tiny();
  AttnGANGenerator g(c);
  const int64_t b = 3, t = 4;
  const at::Tensor words = torch::randn({b, 6, t});
  const at::Tensor mask = torch::tensor({1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0}, at::kBool).view({b, t});
  const auto out = g(torch::randn({b, 5}), torch::randn({b, 3}), torch::randn({b, 6}), words, mask);
  ASSERT_EQ(out.images.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    const int64_t s = c.stage_sizes()[k];
    EXPECT_EQ(out.images[k].sizes(), (std::vector<int64_t>{b, 3, s, s}));
    EXPECT_LE(out.images[k].abs().max().item<double>(), 1.0);
  }
  ASSERT_EQ(out.attention.size(), 2u);
  EXPECT_EQ(out.attention[0].sizes(), (std::vector<int64_t>{b, t, 8, 8}));
  EXPECT_EQ(out.attention[1].sizes(), (std::vector<int64_t>{b, t, 16, 16}));
  EXPECT_EQ(out.mu.sizes(), (std::vector<int64_t>{b, 3}));
  // Masked words get no attention; each pixel's attention sums to 1.
  EXPECT_EQ(out.attention[0][1].narrow(0, 2, 2).abs().max().item<double>(), 0.0);
  EXPECT_EQ(out.attention[1][2].narrow(0, 1, 3).abs().max().item<double>(), 0.0);
  EXPECT_TRUE(torch::allclose(out.attention[1].sum(1), torch::ones({b, 16, 16}), 1e-5, 1e-5));

  const auto gk = keys(*g);
  for (const char* key :
       {"ca_net.fc.weight", "ca_net.fc.bias", "h_net1.fc.0.weight", "h_net1.fc.1.running_mean", "h_net1.upsample1.1.weight",
        "h_net1.upsample1.2.weight", "h_net2.att.conv_context.weight",
        "h_net2.residual.0.block.0.weight", "h_net2.residual.0.block.1.weight", "h_net2.residual.0.block.3.weight",
        "h_net2.residual.0.block.4.weight", "h_net2.upsample.1.weight", "h_net3.upsample.2.bias", "img_net1.img.0.weight",
        "img_net3.img.0.weight"})
    EXPECT_TRUE(has(gk, key)) << key;
  EXPECT_FALSE(has(gk, "h_net1.upsample2.1.weight"));  // 4 -> 8 only at an 8 px base
  // h_net1: [c, z] -> gf_dim * 2^u channels at 4x4, GLU'd from twice that.
  EXPECT_EQ(g->h_net1->fc[0]->as<torch::nn::Linear>()->weight.sizes(), (std::vector<int64_t>{8 * 16 * 2, 8}));

  AttnGANDiscriminators d(c);
  ASSERT_EQ(d->stages.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    const at::Tensor f = d->stages[k](out.images[k]);
    EXPECT_EQ(f.sizes(), (std::vector<int64_t>{b, 16, 4, 4}));
    EXPECT_EQ(d->stages[k]->unconditional(f).sizes(), (std::vector<int64_t>{b}));
    EXPECT_EQ(d->stages[k]->conditional(f, torch::randn({b, 6})).sizes(), (std::vector<int64_t>{b}));
  }
  const auto dk = keys(*d);
  for (const char* key :
       {"netD0.img_code_s16.0.weight",
        "netD1.img_code_s32.0.weight", "netD1.img_code_s32.1.weight", "netD1.img_code_s32_1.0.weight",
        "netD2.img_code_s32.0.weight", "netD2.img_code_s64.0.weight", "netD2.img_code_s64_1.0.weight",
        "netD2.img_code_s64_2.1.weight", "netD2.UNCOND_DNET.outlogits.0.weight", "netD2.COND_DNET.jointConv.0.weight",
        "netD2.COND_DNET.jointConv.1.weight", "netD2.COND_DNET.outlogits.0.bias"})
    EXPECT_TRUE(has(dk, key)) << key;
  EXPECT_FALSE(has(dk, "netD0.img_code_s16.2.weight"));  // 8 px -> 4x4: one convolution
  // At a 16 px base (64 px in three stages): two, the second batch-normed, ending at 8 * df.
  AttnGANDiscriminator d16(AttnGANConfig::from_json(json{{"image_size", 64}, {"df_dim", 2}, {"embedding_dim", 6}}), 0);
  const auto k16 = keys(*d16);
  for (const char* key : {"img_code_s16.0.weight", "img_code_s16.2.weight", "img_code_s16.3.running_var"})
    EXPECT_TRUE(has(k16, key)) << key;
  EXPECT_EQ(d16(torch::randn({2, 3, 16, 16})).sizes(), (std::vector<int64_t>{2, 16, 4, 4}));
  EXPECT_THROW(g(torch::randn({b, 4}), torch::randn({b, 3}), torch::randn({b, 6}), words, mask), UsageError);
  EXPECT_THROW(d->stages[0](torch::randn({b, 3, 16, 16})), UsageError);
}

TEST(AttnGAN, WordAttentionOnHandMadeInputs) {
  // Two pixels, two words, conv_context the identity: scores are h . e.
  AttnGANWordAttention att(2, 2);
  {
    torch::NoGradGuard no_grad;
    att->conv_context->weight.copy_(torch::eye(2).view({2, 2, 1, 1}));
  }
  const at::Tensor h = torch::tensor({1.0, 0.0, 0.0, 2.0}).view({1, 2, 1, 2});  // pixel 0 = (1, 0), pixel 1 = (0, 2)
  const at::Tensor e = torch::tensor({3.0, 0.0, 0.0, 1.0}).view({1, 2, 2});     // word 0 = (3, 0), word 1 = (0, 1)
  const auto all = att(h, e, torch::ones({1, 2}, at::kBool));
  // pixel 0: scores (3, 0); pixel 1: (0, 2).
  const double a00 = std::exp(3.0) / (std::exp(3.0) + 1.0), a11 = std::exp(2.0) / (1.0 + std::exp(2.0));
  EXPECT_NEAR(all.attention[0][0][0][0].item<double>(), a00, 1e-6);
  EXPECT_NEAR(all.attention[0][1][0][1].item<double>(), a11, 1e-6);
  // context of pixel 0 = a00 * word 0 + (1 - a00) * word 1.
  EXPECT_NEAR(all.context[0][0][0][0].item<double>(), 3.0 * a00, 1e-6);
  EXPECT_NEAR(all.context[0][1][0][0].item<double>(), 1.0 - a00, 1e-6);
  // With word 1 masked, every pixel attends to word 0 alone.
  const auto one = att(h, e, torch::tensor({true, false}).view({1, 2}));
  EXPECT_TRUE(torch::allclose(one.attention[0][0], torch::ones({1, 2})));
  EXPECT_TRUE(torch::allclose(one.context[0][0], torch::full({1, 2}, 3.0)));
}

TEST(AttnGAN, ConditioningAugmentation) {
  AttnGANConditioning ca(4, 2);
  const at::Tensor s = torch::randn({3, 4});
  const auto zero = ca(s, torch::zeros({3, 2}));
  EXPECT_TRUE(torch::allclose(zero.c, zero.mu));
  const at::Tensor eps = torch::randn({3, 2});
  const auto noisy = ca(s, eps);
  EXPECT_TRUE(torch::allclose(noisy.c, noisy.mu + torch::exp(noisy.logvar / 2) * eps, 1e-6, 1e-6));
  // fc then GLU: mu and logvar are the first and second halves of glu(fc(s)).
  const at::Tensor x = ca->fc(s);
  const at::Tensor glu = x.narrow(1, 0, 4) * torch::sigmoid(x.narrow(1, 4, 4));
  EXPECT_TRUE(torch::allclose(zero.mu, glu.narrow(1, 0, 2)));
  EXPECT_TRUE(torch::allclose(zero.logvar, glu.narrow(1, 2, 2)));
}

TEST(AttnGANLoss, ByHand) {
  const auto bce1 = [](double x) { return std::log1p(std::exp(-x)); };  // -log sigmoid(x)
  const auto bce0 = [](double x) { return std::log1p(std::exp(x)); };   // -log(1 - sigmoid(x))
  const at::Tensor ur = torch::tensor({1.0, -1.0}), cr = torch::tensor({2.0, 0.0}), uf = torch::tensor({-2.0, 0.5}),
                   cf = torch::tensor({0.0, -3.0}), cw = torch::tensor({1.5});
  const double expected = ((bce1(1) + bce1(-1)) / 2 + (bce1(2) + bce1(0)) / 2) / 2 +
                          ((bce0(-2) + bce0(0.5)) / 2 + (bce0(0) + bce0(-3)) / 2 + bce0(1.5)) / 3;
  EXPECT_NEAR(attngan::discriminator_loss(ur, cr, uf, cf, cw).item<double>(), expected, 1e-6);
  EXPECT_NEAR(attngan::generator_adversarial_loss(uf, cf).item<double>(),
              (bce1(-2) + bce1(0.5)) / 2 + (bce1(0) + bce1(-3)) / 2, 1e-6);
  // KL of N(mu, e^logvar) to N(0, 1), per element 0.5 (mu^2 + e^logvar - 1 - logvar).
  const at::Tensor mu = torch::tensor({0.0, 1.0}).view({1, 2}), logvar = torch::tensor({0.0, std::log(2.0)}).view({1, 2});
  EXPECT_NEAR(attngan::kl_loss(mu, logvar).item<double>(), (0.0 + 0.5 * (1 + 2 - 1 - std::log(2.0))) / 2, 1e-6);
  const at::Tensor f = torch::arange(3).view({3, 1});
  EXPECT_TRUE(torch::equal(attngan::mismatched(f), torch::arange(2).view({2, 1})));
  EXPECT_TRUE(torch::equal(attngan::shifted(f), torch::arange(1, 3).view({2, 1})));
  EXPECT_THROW(attngan::mismatched(torch::zeros({1, 1})), UsageError);
}

TEST(AttnGAN, AFewDiscriminatorThenGeneratorStepsLowerTheirLosses) {
  torch::manual_seed(3);
  const auto c = tiny();
  AttnGANGenerator g(c);
  AttnGANDiscriminators d(c);
  const int64_t b = 8;
  const at::Tensor real = torch::rand({b, 3, 32, 32}) * 2 - 1, s = torch::randn({b, 6}), words = torch::randn({b, 6, 3});
  const at::Tensor mask = torch::ones({b, 3}, at::kBool), z = torch::randn({b, 5}), eps = torch::randn({b, 3});
  torch::optim::Adam dopt(d->parameters(), torch::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
  torch::optim::Adam gopt(g->parameters(), torch::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
  const std::vector<int64_t> sizes = c.stage_sizes();
  // Batch statistics are part of the model in training: eval mode keeps the losses comparable.
  const auto d_loss = [&] {
    std::vector<at::Tensor> fake;
    {
      torch::NoGradGuard no_grad;
      g->eval();
      fake = g(z, eps, s, words, mask).images;
    }
    at::Tensor loss = torch::zeros({});
    for (size_t k = 0; k < sizes.size(); ++k) {
      auto& dk = d->stages[k];
      const at::Tensor r = dk(at::adaptive_avg_pool2d(real, {sizes[k], sizes[k]})), f = dk(fake[k]);
      loss = loss + attngan::discriminator_loss(dk->unconditional(r), dk->conditional(r, s), dk->unconditional(f),
                                                dk->conditional(f, s),
                                                dk->conditional(attngan::mismatched(r), attngan::shifted(s)));
    }
    return loss;
  };
  d->eval();
  const double d0 = d_loss().item<double>();
  d->train();
  for (int i = 0; i < 30; ++i) {
    dopt.zero_grad();
    d_loss().backward();
    dopt.step();
  }
  d->eval();
  const double d1 = d_loss().item<double>();
  EXPECT_LT(d1, 0.9 * d0) << d0 << " -> " << d1;
  // The generator against the trained discriminators (their weights left alone).
  const auto g_loss = [&] {
    const auto out = g(z, eps, s, words, mask);
    at::Tensor loss = attngan::kl_loss(out.mu, out.logvar);
    for (size_t k = 0; k < sizes.size(); ++k) {
      const at::Tensor f = d->stages[k](out.images[k]);
      loss = loss + attngan::generator_adversarial_loss(d->stages[k]->unconditional(f), d->stages[k]->conditional(f, s));
    }
    return loss;
  };
  g->eval();
  const double g0 = g_loss().item<double>();
  const at::Tensor d_before = d->stages[2]->cond_outlogits[0]->as<torch::nn::Conv2dImpl>()->weight.clone();
  for (int i = 0; i < 20; ++i) {
    g->train();
    gopt.zero_grad();
    g_loss().backward();
    gopt.step();
  }
  g->eval();
  EXPECT_LT(g_loss().item<double>(), g0);
  EXPECT_TRUE(torch::equal(d->stages[2]->cond_outlogits[0]->as<torch::nn::Conv2dImpl>()->weight, d_before));
}

}  // namespace
}  // namespace genvis::models
