// The DALL·E pipeline on a tiny random model folder: loads through the registry, generates the
// dVAE's size, sample i reproducible from seed + i alone, completion keeps the init image's top
// rows of tokens, reranking keeps the candidate the reranker scores best, and bad requests and
// inconsistent folders are refused.
#include "core/error.h"
#include "models/contrastive/contrastive_encoder.h"
#include "models/dalle/dalle_io.h"
#include "pipelines/dalle/dalle_pipeline.h"
#include "pipelines/registry.h"
#include "support/test_support.h"
#include "tokenizers/bpe_trainer.h"
#include "tokenizers/tokenizer_folder.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string make_model(const test::TempDir& dir, bool with_reranker) {
  torch::manual_seed(0);
  const std::vector<std::string> captions = {"a red circle", "a blue square", "a green star", "grinning face"};
  const std::string tok = dir.file("tok");
  tokenizers::save_tokenizer_folder(tokenizers::train_bpe(captions, {.vocab_size = 560}), tok);
  models::DiscreteVAE dvae(models::DVAEConfig::from_json(
      json{{"image_size", 16}, {"hidden_size", 4}, {"num_groups", 3}, {"vocab_size", 10}, {"embedding_dim", 8}}));
  models::DalleConfig c;
  c.text_vocab_size = 560, c.text_len = 6, c.image_vocab_size = 10, c.image_rows = 4, c.image_cols = 4;
  c.hidden_size = 16, c.num_heads = 2, c.num_layers = 2, c.mlp_ratio = 2, c.conv_kernel = 3;
  models::DalleTransformer transformer(c);
  std::string reranker;
  if (with_reranker) {
    models::ContrastiveEncoder enc(models::ContrastiveConfig::from_json(json::parse(R"({
      "projection_dim": 16,
      "vision_config": {"image_size": 16, "block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4},
      "text_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                      "max_position_embeddings": 12}})")),
                                   tok);
    reranker = dir.file("reranker");
    enc.save(reranker);
  }
  const std::string folder = dir.file("model");
  save_dalle_model(tok, dvae, transformer, reranker, folder);
  return folder;
}

TEST(DallePipeline, GeneratesReproduciblyCompletesAndReranks) {
  test::TempDir dir;
  const std::string folder = make_model(dir, true);
  auto p = load_pipeline({.model = folder});
  EXPECT_EQ(p->info().class_name, kDalleClass);
  EXPECT_EQ(p->info().native_width, 16);
  Request r;
  r.prompt = "a red circle";
  r.seed = 5;
  r.batch = 2;
  r.extras = {{"top_k", 5}};
  const Result two = p->generate(r);
  EXPECT_EQ(two.samples.sizes(), at::IntArrayRef({2, 3, 16, 16}));
  ASSERT_EQ(two.parameters.size(), 2u);
  EXPECT_EQ(*two.parameters[1].seed, 6u);
  r.batch = 1;
  r.seed = 6;
  const Result one = p->generate(r);
  // Sample i from seed + i alone: the same tokens, the same pixels up to batched arithmetic.
  EXPECT_TRUE(one.latents[0].equal(two.latents[1]));
  EXPECT_TRUE(one.samples[0].allclose(two.samples[1], 1e-5, 1e-5));

  // Completion: the top rows of the result's tokens are the init image's.
  auto& dalle = dynamic_cast<DallePipeline&>(*p);
  Request c = r;
  c.init_image = two.samples.narrow(0, 0, 1) * 2 - 1;
  c.extras["keep_rows"] = 3;
  const Result completed = p->generate(c);
  {
    torch::NoGradGuard no_grad;
    const at::Tensor want = dalle.model().dvae->encode(two.samples.narrow(0, 0, 1)).narrow(1, 0, 3);
    ASSERT_EQ(completed.latents.sizes(), at::IntArrayRef({1, 4, 4}));  // the image tokens
    EXPECT_TRUE(completed.latents.narrow(1, 0, 3).equal(want));
    EXPECT_TRUE(completed.samples.equal(dalle.model().dvae->decode(completed.latents)));
  }

  // Reranking: the kept image's score is the best of its candidates, candidate 0 (the
  // unreranked image) among them.
  Request k = r;
  k.extras["rerank"] = 4;
  const Result reranked = p->generate(k);
  const double score = std::stod(reranked.parameters[0].extra.back().second);
  const double best = rerank_scores(*dalle.model().reranker, reranked.samples, {r.prompt})[0].item<double>();
  EXPECT_NEAR(score, best, 1e-5);
  const double plain = rerank_scores(*dalle.model().reranker, one.samples, {r.prompt})[0].item<double>();
  EXPECT_GE(score, plain - 1e-6);

  Request bad = r;
  bad.extras = {{"rerank", 0}};
  EXPECT_THROW(p->generate(bad), UsageError);
  bad.extras = {{"top_p", 2.0}};
  EXPECT_THROW(p->generate(bad), UsageError);
  bad.extras = {{"colour", 1}};
  EXPECT_THROW(p->generate(bad), UsageError);
  bad.extras = {{"keep_rows", 2}};
  EXPECT_THROW(p->generate(bad), UsageError);
  bad.extras = json::object();
  bad.width = 32;
  EXPECT_THROW(p->generate(bad), UsageError);
  bad.width.reset();
  bad.steps = 10;
  EXPECT_THROW(p->generate(bad), UsageError);
}

TEST(DallePipeline, CaptionsLongerThanTheTextStreamAreCutCountedAndWarnedAbout) {
  test::TempDir dir;
  const std::string folder = make_model(dir, false);
  auto p = load_pipeline({.model = folder});
  auto& dalle = dynamic_cast<DallePipeline&>(*p);
  const auto& tokenizer = *dalle.model().tokenizer;
  const auto& c = dalle.model().transformer->config;
  const std::string shorter = "a red";
  ASSERT_LE(static_cast<int64_t>(tokenizer.encode(shorter).size()), c.text_len);
  std::string longer = shorter;
  while (static_cast<int64_t>(tokenizer.encode(longer).size()) <= c.text_len) longer += " and a blue square";
  int64_t cut = -1;
  const at::Tensor ids = dalle_caption_ids(tokenizer, c, {shorter, longer, longer}, &cut);
  EXPECT_EQ(cut, 2);
  ASSERT_EQ(ids.sizes(), at::IntArrayRef({3, c.text_len}));
  // The long caption keeps its first text_len tokens; the short one's own ids come first.
  const auto long_ids = tokenizer.encode(longer);
  for (int64_t t = 0; t < c.text_len; ++t) EXPECT_EQ(ids[1][t].item<int64_t>(), long_ids[static_cast<size_t>(t)]) << t;
  const auto short_ids = tokenizer.encode(shorter);
  for (size_t t = 0; t < short_ids.size(); ++t) EXPECT_EQ(ids[0][static_cast<int64_t>(t)].item<int64_t>(), short_ids[t]);
  dalle_caption_ids(tokenizer, c, {shorter}, &cut);
  EXPECT_EQ(cut, 0);

  // Generating from a prompt that is cut says so; a short prompt does not.
  Request r;
  r.prompt = longer;
  testing::internal::CaptureStderr();
  p->generate(r);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("cut off"), std::string::npos);
  r.prompt = shorter;
  testing::internal::CaptureStderr();
  p->generate(r);
  EXPECT_EQ(testing::internal::GetCapturedStderr().find("cut off"), std::string::npos);
}

TEST(DallePipeline, RefusesRerankWithoutRerankerAndInconsistentFolders) {
  test::TempDir dir;
  const std::string folder = make_model(dir, false);
  auto p = load_pipeline({.model = folder});
  Request r;
  r.prompt = "grinning face";
  r.extras = {{"rerank", 2}};
  EXPECT_THROW(p->generate(r), UsageError);
  // A reranker given for one request serves that request only.
  const std::string reranker = fs::path(make_model(dir, true)).parent_path() / "reranker";
  r.extras["reranker"] = reranker;
  EXPECT_EQ(p->generate(r).parameters[0].extra.back().first, "Rerank score");
  r.extras.erase("reranker");
  EXPECT_THROW(p->generate(r), UsageError);
  // A transformer whose image vocabulary is not the dVAE's.
  json config = json::parse(std::ifstream(fs::path(folder) / "transformer" / "config.json"));
  config["image_vocab_size"] = 12;
  std::ofstream(fs::path(folder) / "transformer" / "config.json") << config.dump();
  EXPECT_THROW(load_pipeline({.model = folder}), LoadError);
  EXPECT_THROW(load_pipeline({.model = folder, .unet = "x"}), UsageError);
}

}  // namespace
}  // namespace genvis::pipelines
