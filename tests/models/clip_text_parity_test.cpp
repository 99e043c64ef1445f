// CLIP text encoders against the fixture cases clip_l, clip_g and single_file_sd1 (F16 weights,
// computed in F32), plus the OpenCLIP single-file layout built from the clip_g tensors.
#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "models/clip_text/clip_text_loader.h"
#include "support/test_support.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

using test::expect_close;
using test::Tolerance;
Tolerance case_tolerance(const std::string& name) { return test::fixture_tolerance(name); }

struct Fixture {
  std::unique_ptr<io::WeightReader> io;
  at::Tensor input_ids;
  Tolerance tol;
  at::Tensor ref(const std::string& name) { return io->load(name, at::kFloat); }
};

Fixture open_case(const std::string& name) {
  Fixture f;
  f.io = io::open_weights(test::fixtures_dir() + "/" + name + "/io.safetensors");
  f.input_ids = f.io->load("input_ids");
  f.tol = case_tolerance(name);
  return f;
}

// Every output the case records; `text_model` gives the final LN for the clip-skip output.
void check_outputs(Fixture& f, const CLIPTextOutput& out, CLIPTextTransformerImpl& text_model, const std::string& tag) {
  torch::NoGradGuard no_grad;
  expect_close(out.last_hidden_state, f.ref("last_hidden_state"), f.tol, tag + " last_hidden_state");
  expect_close(out.pooler_output, f.ref("pooler_output"), f.tol, tag + " pooler_output");
  expect_close(torch::stack(out.hidden_states), f.ref("hidden_states"), f.tol, tag + " hidden_states");
  expect_close(out.hidden_states.end()[-2], f.ref("penultimate_hidden_state"), f.tol, tag + " penultimate_hidden_state");
  expect_close(sd_prompt_embeds(text_model, f.input_ids, 1), f.ref("penultimate_final_layer_norm"), f.tol,
               tag + " penultimate_final_layer_norm (clip_skip 1)");
  expect_close(sd_prompt_embeds(text_model, f.input_ids, 0), f.ref("last_hidden_state"), f.tol,
               tag + " sd_prompt_embeds (clip_skip 0)");
  if (f.io->contains("text_embeds")) {
    ASSERT_TRUE(out.text_embeds.defined());
    expect_close(out.text_embeds, f.ref("text_embeds"), f.tol, tag + " text_embeds");
  }
}

TEST(CLIPTextParity, ClipL) {
  GENVIS_REQUIRE_FIXTURES();
  torch::NoGradGuard no_grad;
  Fixture f = open_case("clip_l");
  CLIPTextModel te = load_clip_text_model(test::fixtures_dir() + "/clip_l");
  EXPECT_EQ(te->text_model->config.hidden_act, "quick_gelu");
  check_outputs(f, te(f.input_ids), *te->text_model, "clip_l");
}

TEST(CLIPTextParity, ClipG) {
  GENVIS_REQUIRE_FIXTURES();
  torch::NoGradGuard no_grad;
  Fixture f = open_case("clip_g");
  CLIPTextModelWithProjection te = load_clip_text_model_with_projection(test::fixtures_dir() + "/clip_g");
  EXPECT_EQ(te->text_model->config.hidden_act, "gelu");
  check_outputs(f, te(f.input_ids), *te->text_model, "clip_g");
}

TEST(CLIPTextParity, SingleFileSD1) {
  GENVIS_REQUIRE_FIXTURES();
  torch::NoGradGuard no_grad;
  Fixture f = open_case("clip_l");
  CLIPTextModel te(CLIPTextConfig::from_file(test::fixtures_dir() + "/clip_l/config.json"));
  auto reader = io::open_weights(test::fixtures_dir() + "/single_file/sd1_tiny_ldm.safetensors");
  const nn::LoadReport report = load_clip_text_weights(*te, *reader, kSD1TextPrefix, CLIPTextLayout::Transformers);
  EXPECT_EQ(report.loaded, te->parameters().size());
  te->eval();
  check_outputs(f, te(f.input_ids), *te->text_model, "single_file_sd1");
}

// No OpenCLIP single file is in the fixtures: write the clip_g tensors in that layout under the
// SDXL prefix (with a logit_scale and another embedder beside it) and expect identical outputs.
TEST(CLIPTextParity, SingleFileOpenCLIPFromClipG) {
  GENVIS_REQUIRE_FIXTURES();
  torch::NoGradGuard no_grad;
  Fixture f = open_case("clip_g");
  auto hf = io::open_weights(test::fixtures_dir() + "/clip_g/model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> file;
  for (auto& [name, t] : transformers_to_open_clip(hf->load_all())) file.emplace_back(kSDXLText2Prefix + name, t);
  file.emplace_back(std::string(kSDXLText2Prefix) + "logit_scale", torch::tensor(4.6f));
  file.emplace_back(std::string(kSDXLTextPrefix) + "text_model.final_layer_norm.weight", torch::ones({16}));
  test::TempDir dir;
  io::save_safetensors(dir.file("sdxl.safetensors"), file);
  auto reader = io::open_weights(dir.file("sdxl.safetensors"));
  ASSERT_TRUE(reader->contains("conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"));

  CLIPTextModelWithProjection te(CLIPTextConfig::from_file(test::fixtures_dir() + "/clip_g/config.json"));
  load_clip_text_weights(*te, *reader, kSDXLText2Prefix, CLIPTextLayout::OpenCLIP);
  te->eval();
  CLIPTextModelWithProjection ref = load_clip_text_model_with_projection(test::fixtures_dir() + "/clip_g");
  const CLIPTextOutput out = te(f.input_ids), expected = ref(f.input_ids);
  EXPECT_TRUE(at::equal(out.last_hidden_state, expected.last_hidden_state));
  EXPECT_TRUE(at::equal(out.text_embeds, expected.text_embeds));
  check_outputs(f, out, *te->text_model, "openclip_single_file");
}

// SDXL conditioning from the two fixture encoders: [L penultimate | G penultimate], G text_embeds.
TEST(CLIPTextParity, SDXLPromptEmbeds) {
  GENVIS_REQUIRE_FIXTURES();
  torch::NoGradGuard no_grad;
  Fixture l = open_case("clip_l"), g = open_case("clip_g");
  CLIPTextModel te = load_clip_text_model(test::fixtures_dir() + "/clip_l");
  CLIPTextModelWithProjection te2 = load_clip_text_model_with_projection(test::fixtures_dir() + "/clip_g");
  const SDXLPromptEmbeds e = sdxl_prompt_embeds(te, te2, l.input_ids, g.input_ids);
  const at::Tensor expected = torch::cat({l.ref("penultimate_hidden_state"), g.ref("penultimate_hidden_state")}, -1);
  expect_close(e.prompt_embeds, expected, l.tol, "sdxl prompt_embeds");
  expect_close(e.pooled_prompt_embeds, g.ref("text_embeds"), g.tol, "sdxl pooled_prompt_embeds");
}

}  // namespace
}  // namespace genvis::models
