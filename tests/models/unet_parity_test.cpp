// UNet2DConditionModel against diffusers 0.31 (fixtures unet_sd1, unet_sd2, unet_sdxl and the
// single-file SD1 checkpoint): F16 weights, float32 compute.
#include "io/weights.h"
#include "models/unet2d_condition/unet2d_condition.h"
#include "support/test_support.h"

#include <torch/torch.h>

namespace genvis::models {
namespace {

void check_unet(UNet2DConditionModel& unet, const std::string& case_name, double max_abs_tol, double rel_l2_tol) {
  auto io = io::open_weights(test::fixtures_dir() + "/" + case_name + "/io.safetensors");
  torch::NoGradGuard no_grad;
  std::optional<UNetAddedConditions> added;
  if (io->contains("text_embeds")) added = UNetAddedConditions{io->load("text_embeds", at::kFloat), io->load("time_ids", at::kFloat)};
  const at::Tensor got = unet->forward(io->load("sample", at::kFloat), io->load("timestep", at::kFloat),
                                       io->load("encoder_hidden_states", at::kFloat), added);
  const at::Tensor want = io->load("out", at::kFloat);
  ASSERT_EQ(got.sizes(), want.sizes());
  const double max_abs = (got - want).abs().max().item<double>();
  const double rel_l2 = ((got - want).norm() / want.norm()).item<double>();
  std::cout << case_name << ": max_abs " << max_abs << " rel_l2 " << rel_l2 << "\n";
  EXPECT_LE(max_abs, max_abs_tol) << case_name;
  EXPECT_LE(rel_l2, rel_l2_tol) << case_name;
}

TEST(UNet2DConditionParity, SD1) {
  GENVIS_REQUIRE_FIXTURES();
  auto unet = load_unet2d_condition(test::fixtures_dir() + "/unet_sd1");
  check_unet(unet, "unet_sd1", 5e-5, 2e-5);
}

TEST(UNet2DConditionParity, SD2LinearProjectionHeadList) {
  GENVIS_REQUIRE_FIXTURES();
  auto unet = load_unet2d_condition(test::fixtures_dir() + "/unet_sd2");
  check_unet(unet, "unet_sd2", 5e-5, 2e-5);
}

TEST(UNet2DConditionParity, SDXLTextTime) {
  GENVIS_REQUIRE_FIXTURES();
  auto unet = load_unet2d_condition(test::fixtures_dir() + "/unet_sdxl");
  check_unet(unet, "unet_sdxl", 5e-5, 5e-5);
}

TEST(UNet2DConditionParity, SD1SingleFileLdmLayout) {
  GENVIS_REQUIRE_FIXTURES();
  const auto config = UNet2DConditionConfig::from_file(test::fixtures_dir() + "/unet_sd1/config.json");
  auto unet = load_unet2d_condition_single_file(test::fixtures_dir() + "/single_file/sd1_tiny_ldm.safetensors", config);
  check_unet(unet, "unet_sd1", 5e-5, 2e-5);
  // The key table must reproduce the diffusers tensors exactly.
  auto ref = load_unet2d_condition(test::fixtures_dir() + "/unet_sd1");
  const auto params = unet->named_parameters();
  for (const auto& p : ref->named_parameters()) EXPECT_TRUE(at::equal(p.value(), params[p.key()])) << p.key();
}

}  // namespace
}  // namespace genvis::models
