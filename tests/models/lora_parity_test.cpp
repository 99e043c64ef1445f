// LoRA files against the fixture cases lora_kohya_sd1 and lora_peft_sd1: the tiny SD1 UNet and
// CLIP-L with the adapter merged (and applied on the fly) reproduce the reference outputs.
#include "io/weights.h"
#include "models/clip_text/clip_text_loader.h"
#include "models/lora/lora_file.h"
#include "nn/lora.h"
#include "support/test_support.h"

#include <torch/torch.h>

namespace genvis::models {
namespace {

struct Tiny {
  UNet2DConditionModel unet{nullptr};
  CLIPTextModel text_encoder{nullptr};
  LoRATargets targets() { return {unet.ptr().get(), &unet->config, text_encoder.ptr().get(), nullptr}; }
};

Tiny load_tiny() {
  Tiny t;
  t.unet = load_unet2d_condition(test::fixtures_dir() + "/unet_sd1");
  t.text_encoder = load_clip_text_model(test::fixtures_dir() + "/clip_l");
  return t;
}

std::string adapter(const std::string& name) { return test::fixtures_dir() + "/adapters/" + name; }

void check_outputs(Tiny& t, const std::string& case_name, const std::string& mult) {
  torch::NoGradGuard no_grad;
  auto io = io::open_weights(adapter("lora_io.safetensors"));
  const at::Tensor out = t.unet->forward(io->load("sample", at::kFloat), io->load("timestep", at::kFloat),
                                         io->load("encoder_hidden_states", at::kFloat));
  test::expect_close(out, io->load("unet_out_mult_" + mult, at::kFloat), test::fixture_tolerance(case_name, "unet"),
                     case_name + " unet x" + mult);
  const at::Tensor hidden = t.text_encoder->forward(io->load("input_ids")).last_hidden_state;
  test::expect_close(hidden, io->load("clip_last_hidden_state_mult_" + mult, at::kFloat),
                     test::fixture_tolerance(case_name, "clip"), case_name + " clip x" + mult);
}

TEST(LoRAParity, KohyaFileResolvesEveryModule) {
  GENVIS_REQUIRE_FIXTURES();
  Tiny t = load_tiny();
  const LoRAFile lora = read_lora(adapter("lora_kohya_sd1.safetensors"), t.targets());
  EXPECT_EQ(lora.format, "kohya");
  size_t unet = 0, te = 0, conv = 0;
  for (const auto& m : lora.modules) {
    (m.component == "unet" ? unet : te)++;
    if (m.down.dim() == 4) ++conv;
    EXPECT_EQ(m.rank(), 4);
    EXPECT_DOUBLE_EQ(m.scale(), 0.5);
  }
  EXPECT_EQ(unet, 72u);
  EXPECT_EQ(te, 18u);
  EXPECT_EQ(conv, 12u);  // proj_in / proj_out are 1x1 convolutions in this SD1 UNet
}

TEST(LoRAParity, KohyaMergedAtBothMultipliers) {
  GENVIS_REQUIRE_FIXTURES();
  for (const auto& [mult, value] : {std::pair{"1.0", 1.0}, std::pair{"0.7", 0.7}}) {
    Tiny t = load_tiny();
    const LoRAFile lora = read_lora(adapter("lora_kohya_sd1.safetensors"), t.targets());
    const auto report = apply_lora(lora, t.targets(), value, LoRAMode::Merge);
    EXPECT_EQ(report.merged, 90u);
    check_outputs(t, "lora_kohya_sd1", mult);
  }
}

TEST(LoRAParity, KohyaOnTheFlyAtBothMultipliers) {
  GENVIS_REQUIRE_FIXTURES();
  for (const auto& [mult, value] : {std::pair{"1.0", 1.0}, std::pair{"0.7", 0.7}}) {
    Tiny t = load_tiny();
    const LoRAFile lora = read_lora(adapter("lora_kohya_sd1.safetensors"), t.targets());
    const auto report = apply_lora(lora, t.targets(), value, LoRAMode::OnTheFly);
    EXPECT_EQ(report.attached, 90u);  // every module of this LoRA sits in attention blocks or CLIP layers
    EXPECT_EQ(report.merged, 0u);
    check_outputs(t, "lora_kohya_sd1", mult);
    // Detaching restores the base model exactly.
    for (auto* m : {static_cast<torch::nn::Module*>(t.unet.ptr().get()), static_cast<torch::nn::Module*>(t.text_encoder.ptr().get())})
      nn::detach_lora(*m);
    Tiny base = load_tiny();
    torch::NoGradGuard no_grad;
    auto io = io::open_weights(adapter("lora_io.safetensors"));
    const at::Tensor ids = io->load("input_ids");
    EXPECT_TRUE(at::equal(t.text_encoder->forward(ids).last_hidden_state, base.text_encoder->forward(ids).last_hidden_state));
  }
}

// Separate text-encoder and UNet multipliers (<lora:name:te:unet>): the UNet matches the
// reference at 0.7 and the text encoder at 1.0, in both modes.
TEST(LoRAParity, KohyaWithItsOwnTextEncoderMultiplier) {
  GENVIS_REQUIRE_FIXTURES();
  for (const LoRAMode mode : {LoRAMode::Merge, LoRAMode::OnTheFly}) {
    Tiny t = load_tiny();
    const LoRAFile lora = read_lora(adapter("lora_kohya_sd1.safetensors"), t.targets());
    apply_lora(lora, t.targets(), 0.7, mode, 1.0);
    torch::NoGradGuard no_grad;
    auto io = io::open_weights(adapter("lora_io.safetensors"));
    const at::Tensor out = t.unet->forward(io->load("sample", at::kFloat), io->load("timestep", at::kFloat),
                                           io->load("encoder_hidden_states", at::kFloat));
    test::expect_close(out, io->load("unet_out_mult_0.7", at::kFloat), test::fixture_tolerance("lora_kohya_sd1", "unet"),
                       "unet x0.7");
    test::expect_close(t.text_encoder->forward(io->load("input_ids")).last_hidden_state,
                       io->load("clip_last_hidden_state_mult_1.0", at::kFloat),
                       test::fixture_tolerance("lora_kohya_sd1", "clip"), "clip x1.0");
  }
}

TEST(LoRAParity, PeftFileMerged) {
  GENVIS_REQUIRE_FIXTURES();
  Tiny t = load_tiny();
  const LoRAFile lora = read_lora(adapter("lora_peft_sd1.safetensors"), t.targets());
  EXPECT_EQ(lora.format, "peft");
  EXPECT_EQ(lora.modules.size(), 90u);
  for (const auto& m : lora.modules) EXPECT_DOUBLE_EQ(m.scale(), 1.0);  // no alpha stored: alpha = rank
  apply_lora(lora, t.targets(), 1.0, LoRAMode::Merge);
  check_outputs(t, "lora_peft_sd1", "1.0");
}

TEST(LoRAParity, KohyaWrittenByUsReadsBackIdentically) {
  GENVIS_REQUIRE_FIXTURES();
  Tiny t = load_tiny();
  const LoRAFile peft = read_lora(adapter("lora_peft_sd1.safetensors"), t.targets());
  test::TempDir dir;
  save_lora_kohya(dir.file("out.safetensors"), t.targets(), peft.modules);
  // Our kohya names equal the reference kohya file's (the fixture says diffusers' own conversion
  // of the PEFT file gives exactly its keys).
  auto ours = io::open_weights(dir.file("out.safetensors"));
  auto ref = io::open_weights(adapter("lora_kohya_sd1.safetensors"));
  std::set<std::string> our_names, ref_names;
  for (const auto& i : ours->tensors()) our_names.insert(i.name);
  for (const auto& i : ref->tensors()) ref_names.insert(i.name);
  EXPECT_EQ(our_names, ref_names);
  EXPECT_EQ(ours->metadata().at("ss_network_module"), "networks.lora");
  EXPECT_EQ(ours->metadata().at("ss_network_dim"), "4");
  const LoRAFile back = read_lora(dir.file("out.safetensors"), t.targets());
  ASSERT_EQ(back.modules.size(), peft.modules.size());
  for (size_t i = 0; i < back.modules.size(); ++i) {
    const auto& a = back.modules[i];
    const auto it = std::find_if(peft.modules.begin(), peft.modules.end(),
                                 [&](const LoRAModule& m) { return m.module == a.module && m.component == a.component; });
    ASSERT_NE(it, peft.modules.end()) << a.module;
    EXPECT_TRUE(at::equal(a.down.to(at::kFloat), it->down.to(at::kFloat))) << a.module;
    EXPECT_TRUE(at::equal(a.up.to(at::kFloat), it->up.to(at::kFloat))) << a.module;
    EXPECT_DOUBLE_EQ(a.scale(), it->scale());
  }
  apply_lora(back, t.targets(), 1.0, LoRAMode::Merge);
  check_outputs(t, "lora_peft_sd1", "1.0");
}

}  // namespace
}  // namespace genvis::models
