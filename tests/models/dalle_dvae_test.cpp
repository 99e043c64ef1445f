// DALL·E's discrete VAE at tiny size: OpenAI's key names and shapes, the Gumbel-softmax
// relaxation (a distribution, its temperature, the straight-through sampler's value and
// gradient), the annealing schedules, the logit-Laplace likelihood (a density on (0,1)), the KL
// to the uniform prior, codebook use, and both reconstruction losses falling over a few steps.
#include "core/error.h"
#include "models/dalle/dvae.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::models {
namespace {

using json = nlohmann::json;

DVAEConfig tiny() {
  return DVAEConfig::from_json(json{{"image_size", 16}, {"hidden_size", 8}, {"num_groups", 3}, {"blocks_per_group", 1},
                                    {"vocab_size", 12}, {"embedding_dim", 6}});
}

TEST(DVAE, OfficialKeyNamesAndShapes) {
  torch::manual_seed(0);
  const DVAEConfig c = tiny();
  EXPECT_EQ(c.downsample(), 4);
  EXPECT_EQ(c.grid_size(), 4);
  DiscreteVAE vae(c);
  const auto params = vae->named_parameters();
  for (const char* key : {"encoder.blocks.input.w", "encoder.blocks.group_1.block_1.res_path.conv_1.w",
                          "encoder.blocks.group_2.block_1.id_path.w", "encoder.blocks.group_3.block_1.res_path.conv_4.b",
                          "encoder.blocks.output.conv.w", "decoder.blocks.input.w",
                          "decoder.blocks.group_1.block_1.id_path.w", "decoder.blocks.output.conv.w"})
    EXPECT_NE(params.find(key), nullptr) << key;
  EXPECT_EQ(params.find("encoder.blocks.group_1.block_1.id_path.w"), nullptr);  // same width: identity
  EXPECT_EQ(params["encoder.blocks.input.w"].sizes(), at::IntArrayRef({8, 3, 7, 7}));
  EXPECT_EQ(params["encoder.blocks.output.conv.w"].sizes(), at::IntArrayRef({12, 32, 1, 1}));  // 8 * 2^2 -> vocab
  EXPECT_EQ(params["decoder.blocks.input.w"].sizes(), at::IntArrayRef({6, 12, 1, 1}));
  EXPECT_EQ(params["decoder.blocks.group_1.block_1.res_path.conv_1.w"].sizes(), at::IntArrayRef({8, 6, 1, 1}));
  EXPECT_EQ(params["decoder.blocks.output.conv.w"].sizes(), at::IntArrayRef({6, 8, 1, 1}));  // 2 x RGB

  const at::Tensor images = torch::rand({2, 3, 16, 16});
  const at::Tensor codes = vae->encode(images);
  EXPECT_EQ(codes.sizes(), at::IntArrayRef({2, 4, 4}));
  EXPECT_EQ(codes.scalar_type(), at::kLong);
  const at::Tensor decoded = vae->decode(codes);
  EXPECT_EQ(decoded.sizes(), images.sizes());
  EXPECT_GE(decoded.min().item<double>(), 0.0);
  EXPECT_LE(decoded.max().item<double>(), 1.0);
  EXPECT_THROW(vae->decode(torch::full({1, 4, 4}, 12, at::kLong)), UsageError);
  EXPECT_THROW(vae->encode(torch::rand({1, 3, 10, 16})), UsageError);
  EXPECT_THROW(DVAEConfig::from_json(json{{"image_size", 20}, {"num_groups", 4}}), LoadError);
  EXPECT_TRUE(dvae_unmap_pixels(dvae_map_pixels(images)).allclose(images, 1e-5, 1e-6));
}

TEST(DVAE, GumbelSoftmaxRelaxationAndStraightThrough) {
  Rng rng(3);
  const at::Tensor logits = torch::randn({64, 5, 2, 2});
  const at::Tensor soft = gumbel_softmax(logits, 1.0, false, rng);
  EXPECT_TRUE(soft.sum(1).allclose(torch::ones({64, 2, 2}), 1e-5, 1e-6));
  EXPECT_GE(soft.min().item<double>(), 0.0);
  // A low temperature concentrates each sample on one code; a high one spreads it.
  const double peak_cold = gumbel_softmax(logits, 1.0 / 16, false, rng).amax(1).mean().item<double>();
  const double peak_hot = gumbel_softmax(logits, 4.0, false, rng).amax(1).mean().item<double>();
  EXPECT_GT(peak_cold, 0.9);
  EXPECT_LT(peak_hot, 0.6);
  // Samples follow softmax(logits): the argmax frequency of a 2-code case matches its probability.
  const at::Tensor two = torch::tensor({1.0f, 0.0f}).view({1, 2}).expand({20000, 2}).contiguous();
  const double first = (gumbel_softmax(two, 1.0, false, rng).argmax(1) == 0).to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(first, 1.0 / (1.0 + std::exp(-1.0)), 0.015);
  // Straight-through: the value is exactly one-hot, the gradient that of the soft sample.
  const at::Tensor x = torch::randn({4, 6}).requires_grad_();
  const at::Tensor weights = torch::randn({4, 6});
  Rng a(9), b(9);
  const at::Tensor hard = gumbel_softmax(x, 0.5, true, a);
  EXPECT_TRUE((hard.sum(1) == 1).all().item<bool>());
  EXPECT_TRUE(((hard == 0) | (hard == 1)).all().item<bool>());
  const at::Tensor g_hard = torch::autograd::grad({(hard * weights).sum()}, {x})[0];
  const at::Tensor g_soft = torch::autograd::grad({(gumbel_softmax(x, 0.5, false, b) * weights).sum()}, {x})[0];
  EXPECT_TRUE(g_hard.allclose(g_soft, 1e-5, 1e-6));
  EXPECT_THROW(gumbel_softmax(x, 0.0, false, a), UsageError);
}

TEST(DVAE, AnnealingSchedules) {
  EXPECT_DOUBLE_EQ(dvae_temperature(0, 1000), 1.0);
  EXPECT_DOUBLE_EQ(dvae_temperature(1000, 1000), 1.0 / 16);
  EXPECT_DOUBLE_EQ(dvae_temperature(5000, 1000), 1.0 / 16);
  EXPECT_NEAR(dvae_temperature(500, 1000), (1.0 + 1.0 / 16) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(dvae_kl_weight(0, 100, 6.6), 0.0);
  EXPECT_DOUBLE_EQ(dvae_kl_weight(100, 100, 6.6), 6.6);
  double previous = 2;
  for (int64_t s = 0; s <= 1000; s += 50) {
    const double t = dvae_temperature(s, 1000);
    EXPECT_LE(t, previous);
    previous = t;
  }
}

TEST(DVAE, LogitLaplaceIsADensityOnTheUnitInterval) {
  // Integrate exp(-nll) over (0,1) by the midpoint rule for a few locations and scales.
  const int64_t n = 200000;
  const at::Tensor x = (torch::arange(n, at::kDouble) + 0.5) / n;
  for (const auto& [mu, log_b] : std::vector<std::pair<double, double>>{{0.0, 0.0}, {1.5, -1.0}, {-2.0, 0.5}}) {
    const at::Tensor nll = logit_laplace_nll(x, torch::full({n}, mu, at::kDouble), torch::full({n}, log_b, at::kDouble));
    EXPECT_NEAR((-nll).exp().mean().item<double>(), 1.0, 2e-3) << mu << " " << log_b;
  }
  // Its mode (in logit space) is the location.
  const at::Tensor at_mode = logit_laplace_nll(torch::tensor({0.5}, at::kDouble), torch::tensor({0.0}, at::kDouble),
                                               torch::tensor({0.0}, at::kDouble));
  EXPECT_NEAR(at_mode.item<double>(), std::log(2.0) + 2 * std::log(0.5), 1e-12);
}

TEST(DVAE, KLToUniformAndCodebookUse) {
  torch::manual_seed(4);
  DiscreteVAE vae(tiny());
  // Zero encoder output: q uniform, KL 0.
  {
    torch::NoGradGuard no_grad;
    vae->encoder->output->w.zero_();
    vae->encoder->output->b.zero_();
  }
  Rng rng(1);
  const DVAELoss l = dvae_loss(vae, torch::rand({2, 3, 16, 16}), {.temperature = 1.0, .kl_weight = 1.0}, rng);
  EXPECT_NEAR(l.kl.item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(l.loss.item<double>(), l.reconstruction.item<double>(), 1e-6);
  // Peaked q: KL = log K per position, divided by the pixel values per image.
  {
    torch::NoGradGuard no_grad;
    vae->encoder->output->b.fill_(-1000);
    vae->encoder->output->b[0] = 1000;
  }
  const DVAELoss peaked = dvae_loss(vae, torch::rand({2, 3, 16, 16}), {.temperature = 1.0, .kl_weight = 0.0}, rng);
  EXPECT_NEAR(peaked.kl.item<double>(), std::log(12.0) * 16 / (3 * 16 * 16), 1e-5);

  const CodebookUse all = codebook_use(torch::arange(12).repeat({3}), 12);
  EXPECT_NEAR(all.perplexity, 12.0, 1e-9);
  EXPECT_EQ(all.dead_codes, 0);
  const CodebookUse two = codebook_use(torch::tensor({0, 5, 0, 5}), 12);
  EXPECT_NEAR(two.perplexity, 2.0, 1e-9);
  EXPECT_EQ(two.dead_codes, 10);
  EXPECT_THROW(dvae_loss(vae, torch::rand({1, 3, 16, 16}), {.reconstruction = "l1"}, rng), UsageError);
  // Pixel weights: the reconstruction term is their weighted mean (checked against the per-pixel
  // errors of the same reconstruction).
  const at::Tensor x = torch::rand({2, 3, 16, 16});
  at::Tensor w = torch::ones({2, 1, 16, 16});
  w.narrow(2, 0, 4).fill_(7.0);
  Rng r1(5), r2(5);
  const DVAELoss plain = dvae_loss(vae, x, {.reconstruction = "mse"}, r1);
  const DVAELoss weighted = dvae_loss(vae, x, {.reconstruction = "mse", .pixel_weight = w}, r2);
  const at::Tensor err = (plain.images - x).pow(2);
  EXPECT_NEAR(plain.reconstruction.item<double>(), err.mean().item<double>(), 1e-6);
  EXPECT_NEAR(weighted.reconstruction.item<double>(),
              ((err * w).sum() / w.expand_as(err).sum()).item<double>(), 1e-6);
  EXPECT_THROW(dvae_loss(vae, x, {.pixel_weight = torch::ones({2, 16, 16})}, rng), UsageError);
}

TEST(DVAE, BothReconstructionLossesFall) {
  for (const std::string recon : {"logit_laplace", "mse"}) {
    torch::manual_seed(5);
    DiscreteVAE vae(tiny());
    torch::optim::Adam opt(vae->parameters(), torch::optim::AdamOptions(5e-3));
    // Two flat-coloured images with a square: easy to reconstruct through 4x4 codes.
    at::Tensor images = torch::zeros({2, 3, 16, 16});
    images[0].narrow(0, 0, 1).fill_(0.9);
    images[1].narrow(0, 2, 1).fill_(0.8);
    images.narrow(2, 4, 8).narrow(3, 4, 8).fill_(0.5);
    Rng rng(7);
    const DVAELossOptions o{.temperature = 1.0, .kl_weight = 0.0, .reconstruction = recon};
    double mse_first = 0, mse_last = 0, recon_first = 0, recon_last = 0;
    for (int i = 0; i < 120; ++i) {
      opt.zero_grad();
      const DVAELoss l = dvae_loss(vae, images, o, rng);
      l.loss.backward();
      opt.step();
      const double mse = (l.images - images).pow(2).mean().item<double>();
      if (i == 0) mse_first = mse, recon_first = l.reconstruction.item<double>();
      mse_last = mse, recon_last = l.reconstruction.item<double>();
    }
    EXPECT_LT(mse_last, mse_first * 0.5) << recon;
    EXPECT_LT(recon_last, recon_first - 0.5 * std::abs(recon_first)) << recon;
  }
}

}  // namespace
}  // namespace genvis::models
