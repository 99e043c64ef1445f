// Textual-inversion embeddings against the fixture case textual_inversion: an AUTOMATIC1111
// embedding (2 vectors, name = file name, matched on BPE ids) and a diffusers learned_embeds file
// (1 vector, its key as the token) spliced into CLIP-L's token embeddings; plus file round trips
// and malformed files.
#include "core/error.h"
#include "io/safetensors.h"
#include "pipelines/adapters.h"
#include "support/tiny_models.h"
#include "tokenizers/prompt_weights.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

std::string adapter(const std::string& name) { return test::fixtures_dir() + "/adapters/" + name; }

std::vector<std::string> prompts(const std::string& key) {
  std::ifstream in(adapter("ti_prompts.json"));
  std::vector<std::string> out;
  for (const auto& p : nlohmann::json::parse(in)) out.push_back(p.at(key).get<std::string>());
  return out;
}

// [B,77] ids of the prompts through the A1111 chunking with the model's embeddings.
at::Tensor ids_for(StableDiffusion& model, const std::vector<std::string>& texts) {
  std::vector<at::Tensor> rows;
  for (const auto& t : texts) {
    tokenizers::ChunkOptions o;
    o.embeddings = model.embeddings.get();
    const auto tokens = tokenizers::tokenize_weighted(*model.tokenizer, t, o);
    EXPECT_EQ(tokens.chunks.size(), 1u);
    rows.push_back(torch::tensor(tokens.chunks.front(), at::kLong));
  }
  return at::stack(rows);
}

TEST(TextualInversionParity, A1111AndDiffusersEmbeddings) {
  GENVIS_REQUIRE_FIXTURES();
  auto model = test::tiny_sd1_model();
  auto io = io::open_weights(adapter("ti_io.safetensors"));
  torch::NoGradGuard no_grad;

  const models::EmbeddingFile a = models::read_embedding_file(adapter("genvis-style.safetensors"));
  EXPECT_EQ(a.name, "genvis-style");
  EXPECT_EQ(a.format, "a1111");
  add_embedding(model, a);
  const at::Tensor ids_a = ids_for(model, prompts("a1111_prompt"));
  EXPECT_TRUE(at::equal(ids_a, io->load("input_ids_a")));
  auto& te = model.text_encoder->text_model;
  test::expect_close(te->embeddings->token_embeddings(ids_a), io->load("inputs_embeds_a", at::kFloat),
                     test::fixture_tolerance("textual_inversion"), "inputs_embeds_a");
  test::expect_close(model.text_encoder->forward(ids_a).last_hidden_state, io->load("last_hidden_state_a", at::kFloat),
                     test::fixture_tolerance("textual_inversion"), "last_hidden_state_a");
  // The pipeline's own prompt encoding takes the same path.
  const at::Tensor ctx = encode_prompt(model, prompts("a1111_prompt")[0], 0).context;
  test::expect_close(ctx[0], io->load("last_hidden_state_a", at::kFloat)[0], test::fixture_tolerance("textual_inversion"),
                     "encode_prompt a");
  // Without the embedding the text is plain BPE, and the output differs.
  StableDiffusion plain = test::tiny_sd1_model();
  EXPECT_TRUE(at::equal(ids_for(plain, prompts("a1111_prompt")), io->load("input_ids_bpe_a")));

  const models::EmbeddingFile b = models::read_embedding_file(adapter("learned_embeds.safetensors"));
  EXPECT_EQ(b.name, "<genvis-style>");
  EXPECT_EQ(b.format, "diffusers");
  add_embedding(model, b);  // after (a): ids 49410
  const at::Tensor ids_b = ids_for(model, prompts("diffusers_prompt_b"));
  EXPECT_TRUE(at::equal(ids_b, io->load("input_ids_b")));
  test::expect_close(model.text_encoder->forward(ids_b).last_hidden_state, io->load("last_hidden_state_b", at::kFloat),
                     test::fixture_tolerance("textual_inversion"), "last_hidden_state_b");
}

TEST(TextualInversion, FileRoundTripAndDirectory) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  models::EmbeddingFile e = models::read_embedding_file(adapter("genvis-style.safetensors"));
  e.name = "my-thing";
  models::save_embedding_file(dir.file("my-thing.safetensors"), e, {{"step", "12"}});
  // The A1111 layout under the legacy .pt key name reads the same.
  io::save_safetensors(dir.file("other.safetensors"), {{"string_to_param.*", e.vectors * 2}});
  const auto all = models::read_embedding_dir(dir.path());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "my-thing");
  EXPECT_TRUE(at::equal(all[0].vectors, e.vectors));
  EXPECT_EQ(all[1].name, "other");
  EXPECT_TRUE(at::equal(all[1].vectors, e.vectors * 2));
  auto model = test::tiny_sd1_model();
  EXPECT_EQ(load_embeddings(model, dir.path()), 2u);
  ASSERT_NE(model.embeddings->find("other"), nullptr);
  EXPECT_EQ(model.embeddings->find("other")->first_id, 49410);
  EXPECT_EQ(model.text_encoder->text_model->embeddings->extra_token_embeddings.size(0), 4);
}

TEST(TextualInversion, MalformedFilesAreRefusedByName) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  auto model = test::tiny_sd1_model();
  const auto error = [&](const std::vector<std::pair<std::string, at::Tensor>>& tensors) -> std::string {
    io::save_safetensors(dir.file("bad.safetensors"), tensors);
    try {
      add_embedding(model, models::read_embedding_file(dir.file("bad.safetensors")));
    } catch (const LoadError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error({{"emb_params", torch::ones({2, 32})}}).find("do not fit this text encoder"), std::string::npos);
  EXPECT_NE(error({{"emb_params", torch::full({2, 16}, NAN)}}).find("non-finite"), std::string::npos);
  EXPECT_NE(error({{"emb_params", torch::ones({2, 3, 16})}}).find("expected [N, C]"), std::string::npos);
  EXPECT_NE(error({{"a", torch::ones({16})}, {"b", torch::ones({16})}}).find("not an embedding file"), std::string::npos);
  EXPECT_NE(error({{"clip_l", torch::ones({1, 16})}, {"clip_g", torch::ones({1, 32})}}).find("cannot be used"),
            std::string::npos);
  test::write_bytes(dir.file("cut.safetensors"), "\x10\0\0\0\0\0\0\0{\"a\":");
  EXPECT_THROW(models::read_embedding_file(dir.file("cut.safetensors")), LoadError);
  EXPECT_FALSE(model.embeddings && !model.embeddings->empty());  // nothing half-added
}

TEST(LoRAPromptTags, ExtractedWithTheirWeights) {
  std::vector<PromptLoRA> found;
  EXPECT_EQ(extract_lora_tags("a cat <lora:style:0.6>, <lora:b> and <lora:c:0.5:1.5>", found), "a cat ,  and ");
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].name, "style");
  EXPECT_DOUBLE_EQ(found[0].unet_multiplier, 0.6);
  EXPECT_DOUBLE_EQ(found[0].text_encoder_multiplier, 0.6);
  EXPECT_DOUBLE_EQ(found[1].unet_multiplier, 1.0);
  EXPECT_DOUBLE_EQ(found[2].text_encoder_multiplier, 0.5);
  EXPECT_DOUBLE_EQ(found[2].unet_multiplier, 1.5);
  EXPECT_THROW(extract_lora_tags("<lora:x:abc>", found), UsageError);
  EXPECT_THROW(extract_lora_tags("<lora::1>", found), UsageError);
}

}  // namespace
}  // namespace genvis::pipelines
