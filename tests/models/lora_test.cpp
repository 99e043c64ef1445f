// LoRA math (adapters on the fly vs merged, zero-initialised up), kohya key tables on the fixture
// UNets (SD1 diffusers names, SDXL original LDM names), and malformed files refused clearly.
#include "core/error.h"
#include "io/safetensors.h"
#include "models/clip_text/clip_text_loader.h"
#include "models/lora/lora_file.h"
#include "models/single_file/ldm_export_keys.h"
#include "models/unet2d_condition/ldm_keys.h"
#include "nn/lora.h"
#include "nn/transformer2d.h"
#include "support/test_support.h"

#include <torch/torch.h>

namespace genvis::models {
namespace {

TEST(LoRAAdapter, NewAdapterLeavesOutputsUnchangedAndTrainsDown) {
  torch::manual_seed(0);
  torch::nn::Linear layer(8, 6);
  const at::Tensor x = torch::randn({3, 8});
  const at::Tensor before = nn::linear(x, layer);
  nn::LoRAAdapter a(nn::LoRAAdapterOptions{.in = 8, .out = 6, .rank = 2, .alpha = 1});
  EXPECT_TRUE(at::equal(a->lora_up, torch::zeros({6, 2})));
  EXPECT_GT(a->lora_down.abs().sum().item<double>(), 0.0);
  nn::attach_lora(*layer, a);
  EXPECT_TRUE(at::allclose(nn::linear(x, layer), before));
  // The gradient reaches up (down's gradient is zero while up is zero, as in kohya).
  nn::linear(x, layer).sum().backward();
  EXPECT_GT(a->lora_up.grad().abs().sum().item<double>(), 0.0);
}

TEST(LoRAAdapter, OnTheFlyEqualsMergedForLinearAndConv) {
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  torch::nn::Linear lin(8, 6);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(8, 6, 1));
  for (bool is_conv : {false, true}) {
    nn::LoRAAdapter a(nn::LoRAAdapterOptions{.in = 8, .out = 6, .rank = 3, .alpha = 2, .conv = is_conv, .multiplier = 0.7});
    a->lora_up.normal_();
    const at::Tensor x = is_conv ? torch::randn({2, 8, 4, 5}) : torch::randn({4, 8});
    torch::nn::Module& layer = is_conv ? static_cast<torch::nn::Module&>(*conv) : *lin;
    nn::attach_lora(layer, a);
    const at::Tensor fly = is_conv ? nn::conv1x1(x, conv) : nn::linear(x, lin);
    nn::detach_lora(layer);
    const at::Tensor base = is_conv ? nn::conv1x1(x, conv) : nn::linear(x, lin);
    EXPECT_GT((fly - base).abs().max().item<double>(), 1e-3);  // the adapter does something
    at::Tensor w = is_conv ? conv->weight : lin->weight;
    const at::Tensor saved = w.clone();
    nn::merge_lora(w, a->lora_down, a->lora_up, a->scale(), 0.7);
    const at::Tensor merged = is_conv ? nn::conv1x1(x, conv) : nn::linear(x, lin);
    EXPECT_TRUE(at::allclose(merged, fly, 1e-5, 1e-5)) << (is_conv ? "conv" : "linear");
    EXPECT_TRUE(at::allclose(w - saved, a->delta_weight(), 1e-6, 1e-6));
    w.copy_(saved);
  }
}

TEST(LoRAAdapter, MergeComposesAKernelInDown) {
  // LoCon: down [r,in,3,3], up [out,r,1,1] -> a 3x3 weight delta equal to running both convs.
  torch::manual_seed(2);
  const at::Tensor down = torch::randn({2, 4, 3, 3}), up = torch::randn({5, 2, 1, 1}), x = torch::randn({1, 4, 7, 7});
  at::Tensor w = torch::zeros({5, 4, 3, 3});
  nn::merge_lora(w, down, up, 1.0);
  EXPECT_TRUE(at::allclose(at::conv2d(x, w, {}, 1, 1), at::conv2d(at::conv2d(x, down, {}, 1, 1), up), 1e-4, 1e-4));
  EXPECT_THROW(nn::merge_lora(w, torch::randn({2, 4, 1, 1}), up, 1.0), UsageError);  // 1x1 down on a 3x3 layer
  EXPECT_THROW(nn::merge_lora(w, down, torch::randn({5, 3, 1, 1}), 1.0), UsageError);  // rank mismatch
}

TEST(LoRAAdapter, AttachRefusesWrongLayers) {
  torch::nn::Linear lin(8, 6);
  EXPECT_THROW(nn::attach_lora(*lin, nn::LoRAAdapter(nn::LoRAAdapterOptions{.in = 6, .out = 6, .rank = 2})), UsageError);
  torch::nn::Conv2d conv3(torch::nn::Conv2dOptions(8, 6, 3));
  EXPECT_THROW(nn::attach_lora(*conv3, nn::LoRAAdapter(nn::LoRAAdapterOptions{.in = 8, .out = 6, .rank = 2, .conv = true})),
               UsageError);
  torch::nn::LayerNorm norm(torch::nn::LayerNormOptions({8}));
  EXPECT_THROW(nn::attach_lora(*norm, nn::LoRAAdapter(nn::LoRAAdapterOptions{.in = 8, .out = 8, .rank = 2})), UsageError);
}

// A LoRA on every attention Linear of a UNet, written by us and read back.
std::vector<LoRAModule> attention_modules(torch::nn::Module& unet) {
  std::vector<LoRAModule> out;
  torch::manual_seed(3);
  for (const auto& item : unet.named_modules()) {
    auto* lin = dynamic_cast<torch::nn::LinearImpl*>(item.value().get());
    if (!lin || item.key().find("attentions.") == std::string::npos) continue;
    out.push_back({"unet", item.key(), torch::randn({2, lin->weight.size(1)}), torch::randn({lin->weight.size(0), 2}), 1.0});
  }
  return out;
}

TEST(LoRAKeys, SDXLKohyaNamesAreTheOriginalLdmNames) {
  GENVIS_REQUIRE_FIXTURES();
  auto unet = load_unet2d_condition(test::fixtures_dir() + "/unet_sdxl");
  torch::nn::Linear stand_in(4, 4);  // marks the model as SDXL (two text encoders)
  LoRATargets sdxl{unet.ptr().get(), &unet->config, nullptr, stand_in.ptr().get()};
  const auto modules = attention_modules(*unet);
  ASSERT_GT(modules.size(), 10u);
  test::TempDir dir;
  save_lora_kohya(dir.file("xl.safetensors"), sdxl, modules);
  auto reader = io::open_weights(dir.file("xl.safetensors"));
  EXPECT_EQ(reader->metadata().at("ss_base_model_version"), "sdxl_base_v1-0");
  size_t checked = 0;
  for (const auto& info : reader->tensors()) {
    if (info.name.size() < 17 || info.name.substr(info.name.size() - 17) != ".lora_down.weight") continue;
    EXPECT_TRUE(info.name.find("input_blocks_") != std::string::npos || info.name.find("output_blocks_") != std::string::npos ||
                info.name.find("middle_block_") != std::string::npos)
        << info.name;
    ++checked;
  }
  EXPECT_EQ(checked, modules.size());
  // Each name, read back through the forward (LDM -> diffusers) table, is the module's.
  for (const auto& m : modules) {
    const std::string ldm = unet_key_to_ldm(m.module + ".weight", unet->config);
    EXPECT_EQ(unet_key_from_ldm(ldm, unet->config), m.module + ".weight");
    std::string kohya = "lora_unet_" + ldm.substr(0, ldm.size() - 7);
    std::replace(kohya.begin(), kohya.end(), '.', '_');
    EXPECT_EQ(kohya_lora_name(sdxl, "unet", m.module), kohya);
  }
  const LoRAFile back = read_lora(dir.file("xl.safetensors"), sdxl);
  ASSERT_EQ(back.modules.size(), modules.size());
  for (size_t i = 0; i < modules.size(); ++i) {
    const auto it = std::find_if(back.modules.begin(), back.modules.end(),
                                 [&](const LoRAModule& m) { return m.module == modules[i].module; });
    ASSERT_NE(it, back.modules.end()) << modules[i].module;
    EXPECT_TRUE(at::equal(it->up.to(at::kFloat), modules[i].up.to(at::kHalf).to(at::kFloat)));
  }
}

TEST(LoRAKeys, SD1KohyaNamesAreDiffusersNames) {
  GENVIS_REQUIRE_FIXTURES();
  auto unet = load_unet2d_condition(test::fixtures_dir() + "/unet_sd1");
  LoRATargets sd1{unet.ptr().get(), &unet->config, nullptr, nullptr};
  EXPECT_EQ(kohya_lora_name(sd1, "unet", "down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_out.0"),
            "lora_unet_down_blocks_0_attentions_1_transformer_blocks_0_attn2_to_out_0");
  EXPECT_EQ(kohya_lora_name(sd1, "text_encoder", "text_model.encoder.layers.0.mlp.fc1"),
            "lora_te_text_model_encoder_layers_0_mlp_fc1");
}

class LoRAFileErrors : public ::testing::Test {
protected:
  void SetUp() override {
    if (!test::have_fixtures()) GTEST_SKIP() << "fixtures absent";
    unet = load_unet2d_condition(test::fixtures_dir() + "/unet_sd1");
    targets = {unet.ptr().get(), &unet->config, nullptr, nullptr};
  }
  // The LoadError message for a file holding `tensors`.
  std::string error_for(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
    io::save_safetensors(dir.file("bad.safetensors"), tensors);
    try {
      read_lora(dir.file("bad.safetensors"), targets);
    } catch (const LoadError& e) {
      return e.what();
    }
    return "";
  }
  UNet2DConditionModel unet{nullptr};
  LoRATargets targets;
  test::TempDir dir;
  const std::string q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
};

TEST_F(LoRAFileErrors, NamesEachProblem) {
  const int64_t c = unet->config.block_out_channels[0];
  EXPECT_NE(error_for({{q + ".lora_down.weight", torch::ones({4, c + 1})}, {q + ".lora_up.weight", torch::ones({c, 4})}})
                .find("does not fit"),
            std::string::npos);
  EXPECT_NE(error_for({{q + ".lora_down.weight", torch::ones({4, c})}}).find("no up weight"), std::string::npos);
  EXPECT_NE(error_for({{q + ".lora_down.weight", torch::full({4, c}, NAN)}, {q + ".lora_up.weight", torch::ones({c, 4})}})
                .find("non-finite"),
            std::string::npos);
  EXPECT_NE(error_for({{"lora_unet_input_blocks_99_1_proj_in.lora_down.weight", torch::ones({4, c})},
                       {"lora_unet_input_blocks_99_1_proj_in.lora_up.weight", torch::ones({c, 4})}})
                .find("not found in this model"),
            std::string::npos);
  EXPECT_NE(error_for({{q + ".hada_w1_a", torch::ones({4, c})}}).find("LyCORIS"), std::string::npos);
  EXPECT_NE(error_for({{"model.diffusion_model.out.2.weight", torch::ones({4, c})}}).find("not LoRA weights"),
            std::string::npos);
  EXPECT_NE(error_for({}).find("no LoRA weights"), std::string::npos);
}

TEST_F(LoRAFileErrors, TruncatedFileIsALoadError) {
  const int64_t c = unet->config.block_out_channels[0];
  io::save_safetensors(dir.file("ok.safetensors"),
                       {{q + ".lora_down.weight", torch::ones({4, c})}, {q + ".lora_up.weight", torch::ones({c, 4})}});
  EXPECT_EQ(read_lora(dir.file("ok.safetensors"), targets).modules.size(), 1u);
  const std::string bytes = test::read_bytes(dir.file("ok.safetensors"));
  test::write_bytes(dir.file("cut.safetensors"), bytes.substr(0, bytes.size() - 9));
  EXPECT_THROW(read_lora(dir.file("cut.safetensors"), targets), LoadError);
  test::write_bytes(dir.file("junk.safetensors"), "not a weight file at all");
  EXPECT_THROW(read_lora(dir.file("junk.safetensors"), targets), LoadError);
}

}  // namespace
}  // namespace genvis::models
