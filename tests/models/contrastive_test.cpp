// The contrastive text-image encoder at tiny size: config round trip and error reporting, the
// folder round trip (identical embeddings), preprocessing and text padding.
#include "core/error.h"
#include "models/contrastive/contrastive_encoder.h"
#include "support/test_support.h"
#include "tokenizers/bpe_trainer.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json tiny_config_json() {
  return json::parse(R"({
    "projection_dim": 16, "logit_scale_init_value": 2.0,
    "vision_config": {"image_size": 16, "block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4},
    "text_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                    "max_position_embeddings": 12}
  })");
}

std::string make_tokenizer(const test::TempDir& dir) {
  const std::vector<std::string> captions = {"a red circle", "a blue square", "a green star", "a red square",
                                             "grinning face", "woman firefighter: dark skin tone"};
  const std::string folder = dir.file("tok");
  tokenizers::save_tokenizer_folder(tokenizers::train_bpe(captions, {.vocab_size = 560}), folder);
  return folder;
}

TEST(ContrastiveConfig, RoundTripsThroughJSON) {
  const ContrastiveConfig c = ContrastiveConfig::from_json(tiny_config_json(), "tiny");
  EXPECT_EQ(c.projection_dim, 16);
  EXPECT_EQ(c.vision_config.block_out_channels, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(c.text_config.max_position_embeddings, 12);
  const json j = c.to_json();
  EXPECT_EQ(ContrastiveConfig::from_json(j, "again").to_json(), j);
  // Defaults fill what is not given.
  const ContrastiveConfig d = ContrastiveConfig::from_json(json::object(), "empty");
  EXPECT_EQ(d.vision_config.image_size, 32);
  EXPECT_EQ(d.text_config.max_position_embeddings, 32);
}

TEST(ContrastiveConfig, ReportsEveryBadKeyAtOnce) {
  json j = tiny_config_json();
  j["colour"] = 1;
  j["vision_config"]["depth"] = 3;
  j["text_config"]["heads"] = 2;
  j["projection_dim"] = "wide";
  j["vision_config"]["block_out_channels"] = json::array({8, 18});
  try {
    ContrastiveConfig::from_json(j, "bad.json");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad.json"), std::string::npos) << what;
    EXPECT_NE(what.find("unknown key colour"), std::string::npos) << what;
    EXPECT_NE(what.find("unknown key vision_config.depth"), std::string::npos) << what;
    EXPECT_NE(what.find("unknown key text_config.heads"), std::string::npos) << what;
    EXPECT_NE(what.find("projection_dim has the wrong type"), std::string::npos) << what;
    EXPECT_NE(what.find("18 is not a positive multiple of norm_num_groups 4"), std::string::npos) << what;
  }
}

TEST(ContrastiveEncoder, SaveLoadGivesIdenticalEmbeddings) {
  test::TempDir dir;
  torch::manual_seed(0);
  ContrastiveEncoder enc(ContrastiveConfig::from_json(tiny_config_json()), make_tokenizer(dir));
  EXPECT_EQ(enc.config().text_config.eos_token_id, enc.tokenizer().eos_id());
  const at::Tensor images = torch::rand({3, 3, 16, 16});
  const std::vector<std::string> texts = {"a red circle", "a blue square", "grinning face"};
  const at::Tensor img = enc.embed_images(images), txt = enc.embed_texts(texts);
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 16}));
  ASSERT_EQ(txt.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(img.scalar_type(), at::kFloat);
  EXPECT_TRUE(torch::allclose(img.norm(2, 1), torch::ones({3})));
  EXPECT_TRUE(torch::allclose(txt.norm(2, 1), torch::ones({3})));

  enc.save(dir.file("enc"));
  for (const char* f : {"config.json", "model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt"})
    EXPECT_TRUE(fs::exists(fs::path(dir.file("enc")) / f)) << f;
  ContrastiveEncoder loaded = ContrastiveEncoder::load(dir.file("enc"));
  EXPECT_TRUE(torch::equal(loaded.embed_images(images), img));
  EXPECT_TRUE(torch::equal(loaded.embed_texts(texts), txt));
  EXPECT_EQ(loaded.config().to_json(), enc.config().to_json());

  // A saved copy of the loaded one loads again (tokenizer files travel).
  loaded.save(dir.file("enc2"));
  EXPECT_TRUE(torch::equal(ContrastiveEncoder::load(dir.file("enc2")).embed_texts(texts), txt));
}

TEST(ContrastiveEncoder, PreprocessesAnySizeAndPadsTextsFreely) {
  test::TempDir dir;
  torch::manual_seed(1);
  ContrastiveEncoder enc(ContrastiveConfig::from_json(tiny_config_json()), make_tokenizer(dir));
  // 48x32: centre square 32x32, area-averaged to 16x16; [0,1] -> [-1,1].
  const at::Tensor big = torch::rand({2, 3, 48, 32});
  const at::Tensor x = enc.preprocess_images(big);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{2, 3, 16, 16}));
  const at::Tensor expected = at::adaptive_avg_pool2d(big.narrow(2, 8, 32), {16, 16}) * 2 - 1;
  EXPECT_TRUE(torch::allclose(x, expected));
  EXPECT_EQ(enc.embed_images(torch::rand({2, 3, 8, 8})).size(0), 2);

  // Padding to a longer batch row does not change a caption's embedding (causal mask, first EOS).
  const at::Tensor alone = enc.embed_texts({"a red circle"});
  const at::Tensor batched = enc.embed_texts({"a red circle", "woman firefighter: dark skin tone and more words"});
  EXPECT_TRUE(torch::allclose(alone[0], batched[0], 1e-5, 1e-6));
  EXPECT_LT(enc.tokenize({"a red circle"}).size(1), enc.tokenize({"a red circle", "woman firefighter: dark skin tone"}).size(1));
  // Long captions are truncated to max_position_embeddings.
  EXPECT_EQ(enc.tokenize({std::string(200, 'x') + " y z w v u t s r q p o n m"}).size(1), 12);
}

TEST(ContrastiveEncoder, LoadErrorsNameWhatIsMissing) {
  test::TempDir dir;
  EXPECT_THROW(ContrastiveEncoder::load(dir.file("nowhere")), LoadError);
  torch::manual_seed(2);
  ContrastiveEncoder enc(ContrastiveConfig::from_json(tiny_config_json()), make_tokenizer(dir));
  enc.save(dir.file("enc"));
  fs::remove(fs::path(dir.file("enc")) / "model.safetensors");
  try {
    ContrastiveEncoder::load(dir.file("enc"));
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace genvis::models
