// UMT5 encoder (Wan 2.1's text encoder) against the fixture case umt5_encoder (transformers'
// UMT5EncoderModel, F16 weights computed in F32): last_hidden_state, every hidden_states entry and
// Wan's prompt_embeds within the manifest tolerance, and the input ids rebuilt from the manifest's
// prompts by the umt5_tokenizer case's tokenizer. Shapes and lengths come from the fixture files.
#include "io/weights.h"
#include "models/umt5/umt5_encoder.h"
#include "support/test_support.h"
#include "tokenizers/t5_tokenizer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>

namespace genvis::models {
namespace {

using json = nlohmann::json;

// The fixture path of the case's file ending in `suffix`.
std::string case_file(const json& c, const std::string& suffix) {
  for (const auto& f : c.at("files"))
    if (f.get<std::string>().ends_with(suffix)) return test::fixtures_dir() + "/" + f.get<std::string>();
  ADD_FAILURE() << c.at("name") << " lists no file ending in " << suffix;
  return {};
}

std::string folder_of(const std::string& file) { return std::filesystem::path(file).parent_path().string(); }

struct EncoderCase {
  json manifest = test::fixture_case("umt5_encoder");
  std::unique_ptr<io::WeightReader> io = io::open_weights(case_file(manifest, "io.safetensors"));
  test::Tolerance tol = test::fixture_tolerance("umt5_encoder");
  at::Tensor ref(const std::string& name) { return io->load(name, at::kFloat); }
};

TEST(UMT5EncoderParity, HiddenStatesAndPromptEmbeds) {
  GENVIS_REQUIRE_FIXTURES();
  torch::NoGradGuard no_grad;
  EncoderCase f;
  const std::string folder = folder_of(case_file(f.manifest, "config.json"));
  UMT5EncoderModel te = load_umt5_encoder(folder);
  const at::Tensor input_ids = f.io->load("input_ids"), attention_mask = f.io->load("attention_mask");
  const UMT5EncoderOutput out = te(input_ids, attention_mask);

  test::expect_close(out.last_hidden_state, f.ref("last_hidden_state"), f.tol, "umt5 last_hidden_state");
  const at::Tensor hidden_states = f.ref("hidden_states");  // [num_layers + 1, B, S, d_model]
  ASSERT_EQ(static_cast<int64_t>(out.hidden_states.size()), hidden_states.size(0));
  EXPECT_EQ(hidden_states.size(0), te->config.num_layers + 1);
  for (size_t i = 0; i < out.hidden_states.size(); ++i)
    test::expect_close(out.hidden_states[i], hidden_states[static_cast<int64_t>(i)], f.tol,
                       "umt5 hidden_states[" + std::to_string(i) + "]");
  // Padded positions are not zero in the encoder output (they attend to the real tokens)...
  const at::Tensor padded = attention_mask.eq(0);
  ASSERT_TRUE(padded.any().item<bool>()) << "the fixture should hold a padded prompt";
  EXPECT_GT(out.last_hidden_state.index({padded}).abs().max().item<double>(), 0.0);
  // ... and are zero in Wan's prompt_embeds.
  const at::Tensor embeds = wan_prompt_embeds(out.last_hidden_state, attention_mask, input_ids.size(1));
  test::expect_close(embeds, f.ref("prompt_embeds"), f.tol, "umt5 prompt_embeds");
  EXPECT_EQ(embeds.index({padded}).abs().max().item<double>(), 0.0);
}

// The manifest's prompts through prompt_clean and the umt5_tokenizer case's tokenizer, padded to the
// fixture's length, give the fixture's input_ids and attention_mask.
TEST(UMT5EncoderParity, InputIdsFromThePrompts) {
  GENVIS_REQUIRE_FIXTURES();
  EncoderCase f;
  const json tokenizer_case = test::fixture_case("umt5_tokenizer");
  const auto tok = tokenizers::T5Tokenizer::load(folder_of(case_file(tokenizer_case, "spiece.model")));
  const at::Tensor input_ids = f.io->load("input_ids"), attention_mask = f.io->load("attention_mask");
  const auto prompts = f.manifest.at("prompts").get<std::vector<std::string>>();
  ASSERT_EQ(static_cast<int64_t>(prompts.size()), input_ids.size(0));
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto e = tok.encode_padded(tokenizers::prompt_clean(prompts[i]), input_ids.size(1));
    const auto b = static_cast<int64_t>(i);
    EXPECT_TRUE(torch::equal(torch::tensor(e.input_ids), input_ids[b])) << "prompt " << i;
    EXPECT_TRUE(torch::equal(torch::tensor(e.attention_mask), attention_mask[b])) << "prompt " << i;
  }
}

}  // namespace
}  // namespace genvis::models
