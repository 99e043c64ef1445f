// Wan sampling helpers: latent normalisation round trip, the I2V condition layout, input errors.
#include "core/error.h"
#include "pipelines/wan/wan_sampling.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

TEST(WanSampling, ConditionNormalisesAndDenormaliseInverts) {
  const std::vector<double> mean = {0.5, -1.0}, std = {2.0, 0.25};
  const at::Tensor z = torch::randn({1, 2, 3, 4, 5});
  const at::Tensor c = wan_i2v_condition(z, mean, std);
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{1, 6, 3, 4, 5}));
  EXPECT_TRUE(at::equal(c.slice(1, 0, 4).select(2, 0), torch::ones({1, 4, 4, 5})));
  EXPECT_EQ(c.slice(1, 0, 4).slice(2, 1).abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(at::allclose(c.select(1, 4), (z.select(1, 0) - 0.5) / 2.0, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(c.select(1, 5), (z.select(1, 1) + 1.0) / 0.25, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(wan_denormalize(c.slice(1, 4), mean, std), z, 1e-5, 1e-6));
  EXPECT_THROW(wan_denormalize(z, {0.0}, {1.0}), UsageError);
}

TEST(WanSampling, DenoiseRefusesWhatItCannotRun) {
  nlohmann::json cfg = {{"patch_size", {1, 2, 2}}, {"num_attention_heads", 2}, {"attention_head_dim", 6},
                        {"in_channels", 4}, {"out_channels", 4}, {"text_dim", 8}, {"freq_dim", 8},
                        {"ffn_dim", 16}, {"num_layers", 1}};
  WanDenoiseInputs in;
  in.transformer = models::WanTransformer3DModel(models::WanTransformer3DConfig::from_json(cfg));
  in.cond = torch::randn({1, 3, 8});
  in.latents = torch::randn({1, 4, 1, 2, 2});
  in.steps = 2;
  in.guidance = 1.0;
  in.scheduler = schedulers::NoiseScheduleConfig::from_json({{"prediction_type", "epsilon"}});
  EXPECT_THROW(wan_denoise(in), UsageError);  // not a flow scheduler
  in.scheduler = schedulers::NoiseScheduleConfig::from_json(
      {{"prediction_type", "flow_prediction"}, {"use_flow_sigmas", true}, {"flow_shift", 3.0}});
  EXPECT_EQ(wan_denoise(in).sizes(), in.latents.sizes());
  in.guidance = 5.0;
  EXPECT_THROW(wan_denoise(in), UsageError);  // no negative embeddings
  in.uncond = torch::zeros({1, 3, 8});
  in.sampler = "euler";
  EXPECT_THROW(wan_denoise(in), UsageError);  // not a flow sampler
  in.sampler = "flow_euler";
  EXPECT_TRUE(wan_denoise(in).isfinite().all().item<bool>());
  in.latents = torch::randn({1, 6, 1, 2, 2});
  EXPECT_THROW(wan_denoise(in), UsageError);  // channels
}

}  // namespace
}  // namespace genvis::pipelines
