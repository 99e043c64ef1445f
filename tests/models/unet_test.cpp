// UNet2DConditionModel: config validation, strict loading errors, inpainting shapes.
#include "core/error.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/unet2d_condition/ldm_keys.h"
#include "models/unet2d_condition/unet2d_condition.h"
#include "nn/state_dict.h"
#include "support/test_support.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

UNet2DConditionConfig tiny_config() {
  UNet2DConditionConfig c;
  c.block_out_channels = {32, 32};
  c.down_block_types = {"CrossAttnDownBlock2D", "DownBlock2D"};
  c.up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D"};
  c.layers_per_block = {1};
  c.cross_attention_dim = {16};
  c.attention_head_dim = {2};
  return c;
}

TEST(UNet2DConditionConfig, ListsEveryProblemAtOnce) {
  const nlohmann::json j = {{"block_out_channels", {32, 48}},
                            {"down_block_types", {"CrossAttnDownBlock2D", "DownBlock2D", "DownBlock2D"}},
                            {"up_block_types", {"UpBlock2D", "FancyUpBlock"}},
                            {"attention_head_dim", {2, 4, 8}},
                            {"addition_embed_type", "text_time"},
                            {"class_embed_type", "timestep"}};
  try {
    UNet2DConditionConfig::from_json(j, "unet/config.json");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    for (const char* part : {"unet/config.json", "down_block_types has 3 entries", "unsupported up block type 'FancyUpBlock'",
                             "attention_head_dim has 3 entries", "block_out_channels[1] = 48 is not a positive multiple",
                             "needs addition_time_embed_dim", "needs projection_class_embeddings_input_dim",
                             "class_embed_type"})
      EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
  }
}

TEST(UNet2DConditionConfig, ParsesIntOrListPerBlockFields) {
  const nlohmann::json j = {{"block_out_channels", {32, 64}},
                            {"down_block_types", {"DownBlock2D", "CrossAttnDownBlock2D"}},
                            {"up_block_types", {"CrossAttnUpBlock2D", "UpBlock2D"}},
                            {"attention_head_dim", {2, 4}},
                            {"transformer_layers_per_block", {1, 2}},
                            {"layers_per_block", 2},
                            {"cross_attention_dim", 32},
                            {"num_attention_heads", nullptr},
                            {"addition_embed_type", nullptr}};
  const auto c = UNet2DConditionConfig::from_json(j);
  EXPECT_EQ(c.heads_per_block(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(c.transformer_layers_list(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.layers_per_block_list(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(c.cross_attention_dim_list(), (std::vector<int64_t>{32, 32}));
  EXPECT_FALSE(c.addition_embed_type.has_value());
}

TEST(UNet2DConditionModel, MissingAndMisShapedTensorsInOneLoadError) {
  test::TempDir dir;
  UNet2DConditionModel unet(tiny_config());
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : unet->named_parameters()) {
    if (p.key() == "conv_out.bias" || p.key() == "time_embedding.linear_1.bias") continue;  // missing
    at::Tensor t = p.value().detach();
    if (p.key() == "conv_in.weight") t = torch::zeros({32, 5, 3, 3});                            // mis-shaped
    tensors.emplace_back(p.key(), t);
  }
  tensors.emplace_back("bogus.weight", torch::zeros({1}));
  io::save_safetensors(dir.file("unet.safetensors"), tensors);
  auto reader = io::open_weights(dir.file("unet.safetensors"));
  try {
    nn::load_state_dict(*unet, *reader);
    FAIL() << "no error";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    // A mis-shaped tensor is reported once, as mis-shaped, not also as missing.
    EXPECT_NE(what.find("missing 2 [conv_out.bias, time_embedding.linear_1.bias]"), std::string::npos) << what;
    EXPECT_NE(what.find("unexpected 1 [bogus.weight]"), std::string::npos) << what;
    EXPECT_NE(what.find("conv_in.weight [32, 5, 3, 3] (expected [32, 4, 3, 3])"), std::string::npos) << what;
  }
}

TEST(UNet2DConditionModel, InpaintingNineChannelsRunsWithOddSizes) {
  auto c = tiny_config();
  c.in_channels = 9;
  UNet2DConditionModel unet(c);
  unet->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor out = unet->forward(torch::randn({2, 9, 7, 5}), torch::tensor(500.0f), torch::randn({2, 77, 16}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 4, 7, 5}));
  EXPECT_TRUE(out.isfinite().all().item<bool>());
  EXPECT_THROW(unet->forward(torch::randn({1, 4, 8, 8}), torch::tensor(1.0f), torch::randn({1, 77, 16})), UsageError);
}

TEST(UNet2DConditionModel, SDXLNeedsAddedConditions) {
  auto c = tiny_config();
  c.addition_embed_type = "text_time";
  c.addition_time_embed_dim = 8;
  c.projection_class_embeddings_input_dim = 16 + 6 * 8;
  UNet2DConditionModel unet(c);
  torch::NoGradGuard no_grad;
  EXPECT_THROW(unet->forward(torch::randn({1, 4, 8, 8}), torch::tensor(1.0f), torch::randn({1, 77, 16})), UsageError);
  const auto out = unet->forward(torch::randn({1, 4, 8, 8}), torch::tensor(1.0f), torch::randn({1, 77, 16}),
                                 UNetAddedConditions{torch::randn({1, 16}), torch::tensor({{64.f, 64.f, 0.f, 0.f, 64.f, 64.f}})});
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 4, 8, 8}));
}

// DeepCache: a refreshing pass is the plain forward; a cached pass on the same inputs gives the
// same output (the skipped part would have computed what is cached); on other inputs it runs only
// the outer blocks and differs; a cache of another batch or size is refreshed, not misused.
TEST(UNet2DConditionModel, DeepCachePasses) {
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  UNet2DConditionModel unet(tiny_config());
  unet->eval();
  const int64_t ctx_dim = tiny_config().cross_attention_dim.front();
  const at::Tensor x = torch::randn({2, 4, 16, 16}), ctx = torch::randn({2, 5, ctx_dim});
  const at::Tensor t1 = torch::tensor({500.f}), t2 = torch::tensor({480.f});
  const at::Tensor plain1 = unet->forward(x, t1, ctx), plain2 = unet->forward(x + 0.1, t2, ctx);
  UNetDeepCache cache;
  EXPECT_TRUE(unet->forward(x, t1, ctx, std::nullopt, cache, /*refresh=*/true).equal(plain1));
  EXPECT_TRUE(unet->forward(x, t1, ctx, std::nullopt, cache, false).equal(plain1));
  const at::Tensor cached2 = unet->forward(x + 0.1, t2, ctx, std::nullopt, cache, false);
  EXPECT_FALSE(cached2.equal(plain2));
  EXPECT_LT((cached2 - plain2).abs().max().item<double>(), (plain2 - plain1).abs().max().item<double>() * 10);
  EXPECT_EQ(cache.full, 1);
  EXPECT_EQ(cache.shallow, 2);
  // Another batch size: refreshed.
  const at::Tensor one = unet->forward(x.narrow(0, 0, 1), t1, ctx.narrow(0, 0, 1), std::nullopt, cache, false);
  EXPECT_TRUE(at::allclose(one, plain1.narrow(0, 0, 1), 1e-5, 1e-5));
  EXPECT_EQ(cache.full, 2);
}

TEST(UNetLdmKeys, MapsOriginalNames) {
  auto c = tiny_config();
  c.layers_per_block = {2};
  EXPECT_EQ(unet_key_from_ldm("input_blocks.1.0.in_layers.0.weight", c), "down_blocks.0.resnets.0.norm1.weight");
  EXPECT_EQ(unet_key_from_ldm("input_blocks.2.1.proj_in.weight", c), "down_blocks.0.attentions.1.proj_in.weight");
  EXPECT_EQ(unet_key_from_ldm("input_blocks.3.0.op.bias", c), "down_blocks.0.downsamplers.0.conv.bias");
  EXPECT_EQ(unet_key_from_ldm("input_blocks.4.0.skip_connection.weight", c), "down_blocks.1.resnets.0.conv_shortcut.weight");
  EXPECT_EQ(unet_key_from_ldm("middle_block.2.emb_layers.1.bias", c), "mid_block.resnets.1.time_emb_proj.bias");
  EXPECT_EQ(unet_key_from_ldm("output_blocks.2.1.conv.weight", c), "up_blocks.0.upsamplers.0.conv.weight");
  EXPECT_EQ(unet_key_from_ldm("output_blocks.3.1.norm.weight", c), "up_blocks.1.attentions.0.norm.weight");
  EXPECT_EQ(unet_key_from_ldm("label_emb.0.2.weight", c), "add_embedding.linear_2.weight");
  EXPECT_EQ(unet_key_from_ldm("out.2.bias", c), "conv_out.bias");
  EXPECT_EQ(unet_key_from_ldm("input_blocks.9.0.op.bias", c), "input_blocks.9.0.op.bias");  // unknown: unchanged
}

}  // namespace
}  // namespace genvis::models
