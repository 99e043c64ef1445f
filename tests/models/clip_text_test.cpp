// CLIP text encoders on tiny random configs: config checks, strict loading, the OpenCLIP key
// table, pooling and clip-skip semantics.
#include "core/error.h"
#include "io/safetensors.h"
#include "models/clip_text/clip_text_loader.h"
#include "support/test_support.h"

#include <nlohmann/json.hpp>
#include <set>
#include <torch/torch.h>

namespace genvis::models {
namespace {

CLIPTextConfig tiny_config(const std::string& act = "gelu", int64_t layers = 2) {
  CLIPTextConfig c;
  c.vocab_size = 49408;
  c.hidden_size = 8;
  c.intermediate_size = 12;
  c.projection_dim = 6;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 2;
  c.max_position_embeddings = 77;
  c.hidden_act = act;
  c.eos_token_id = 2;
  return c;
}

template <typename Model>
std::vector<std::pair<std::string, at::Tensor>> state_dict(Model& m) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : m->named_parameters()) out.emplace_back(p.key(), p.value().detach().clone());
  return out;
}

at::Tensor sample_ids() {
  // BOS, a few tokens, EOS, then padding with 49407 (SD1 tokenizer) or 0 (OpenCLIP tokenizer_2)
  at::Tensor ids = torch::full({2, 77}, 49407, at::kLong);
  ids[0][0] = 49406, ids[0][1] = 320, ids[0][2] = 1125, ids[0][3] = 49407;
  ids[1] = 0;
  ids[1][0] = 49406, ids[1][1] = 530, ids[1][2] = 49407;
  return ids;
}

TEST(CLIPTextConfig, ParsesTransformersConfig) {
  const auto c = CLIPTextConfig::from_json(nlohmann::json::parse(R"({
    "architectures": ["CLIPTextModelWithProjection"], "hidden_size": 1280, "intermediate_size": 5120,
    "projection_dim": 1280, "num_hidden_layers": 32, "num_attention_heads": 20, "hidden_act": "gelu",
    "layer_norm_eps": 1e-05, "eos_token_id": 2, "pad_token_id": 1, "bos_token_id": 0, "torch_dtype": "float16"})"));
  EXPECT_EQ(c.hidden_size, 1280);
  EXPECT_EQ(c.head_dim(), 64);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.vocab_size, 49408);  // default
  EXPECT_TRUE(c.has_projection());
  EXPECT_EQ(c.hidden_act, "gelu");
}

TEST(CLIPTextConfig, ListsEveryProblem) {
  try {
    CLIPTextConfig::from_json(nlohmann::json::parse(R"({
      "vocab_size": "many", "hidden_size": 10, "num_attention_heads": 3, "hidden_act": "relu",
      "layer_norm_eps": 0, "num_hidden_layers": -1, "architectures": ["BertModel"]})"),
                              "te/config.json");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("te/config.json"), std::string::npos) << what;
    EXPECT_NE(what.find("vocab_size has the wrong type: expected an integer"), std::string::npos) << what;
    EXPECT_NE(what.find("hidden_size 10 is not divisible by num_attention_heads 3"), std::string::npos) << what;
    EXPECT_NE(what.find("hidden_act must be"), std::string::npos) << what;
    EXPECT_NE(what.find("layer_norm_eps must be positive"), std::string::npos) << what;
    EXPECT_NE(what.find("num_hidden_layers must be positive"), std::string::npos) << what;
    EXPECT_NE(what.find("\"BertModel\" is not a CLIP text model"), std::string::npos) << what;
    EXPECT_NE(what.find("(6 problems)"), std::string::npos) << what;
  }
}

TEST(CLIPTextConfig, ModuleRejectsInvalidConfig) {
  CLIPTextConfig c = tiny_config();
  c.num_attention_heads = 3;
  EXPECT_THROW(CLIPTextModel{c}, UsageError);
}

TEST(CLIPTextModel, KeyNamesMatchTransformers) {
  CLIPTextModelWithProjection m(tiny_config());
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  for (const char* name : {"text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
                           "text_model.encoder.layers.1.self_attn.q_proj.weight", "text_model.encoder.layers.0.self_attn.out_proj.bias",
                           "text_model.encoder.layers.0.layer_norm1.weight", "text_model.encoder.layers.0.mlp.fc1.weight",
                           "text_model.encoder.layers.0.mlp.fc2.bias", "text_model.encoder.layers.0.layer_norm2.bias",
                           "text_model.final_layer_norm.weight", "text_projection.weight"})
    EXPECT_TRUE(names.count(name)) << name;
  EXPECT_FALSE(names.count("text_projection.bias"));
  EXPECT_EQ(names.size(), 2u + 2 * 16 + 2 + 1);
}

TEST(CLIPTextLoader, WrongShapedFileListsTensors) {
  test::TempDir dir;
  CLIPTextModel source(tiny_config());
  auto tensors = state_dict(source);
  for (auto& [name, t] : tensors)
    if (name == "text_model.encoder.layers.0.mlp.fc1.weight") t = torch::zeros({13, 8});
  std::erase_if(tensors, [](const auto& p) { return p.first == "text_model.final_layer_norm.bias"; });
  tensors.emplace_back("text_model.encoder.layers.7.mlp.fc1.weight", torch::zeros({12, 8}));
  tensors.emplace_back("text_model.embeddings.position_ids", torch::arange(77).unsqueeze(0));  // ignored
  io::save_safetensors(dir.file("model.safetensors"), tensors);
  auto reader = io::open_weights(dir.file("model.safetensors"));
  CLIPTextModel m(tiny_config());
  try {
    load_clip_text_weights(*m, *reader, "", CLIPTextLayout::Transformers);
    FAIL() << "no error";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("text_model.final_layer_norm.bias]; unexpected 1"), std::string::npos) << what;
    EXPECT_NE(what.find("unexpected 1 [text_model.encoder.layers.7.mlp.fc1.weight]"), std::string::npos) << what;
    EXPECT_NE(what.find("text_model.encoder.layers.0.mlp.fc1.weight [13, 8] (expected [12, 8])"), std::string::npos) << what;
    EXPECT_EQ(what.find("position_ids"), std::string::npos) << what;
  }
}

TEST(CLIPTextLoader, ComponentFolder) {
  test::TempDir dir;
  CLIPTextModelWithProjection source(tiny_config());
  io::save_safetensors(dir.file("model.safetensors"), state_dict(source));
  nlohmann::json config = {{"architectures", {"CLIPTextModelWithProjection"}}, {"hidden_size", 8}, {"intermediate_size", 12},
                           {"projection_dim", 6}, {"num_hidden_layers", 2}, {"num_attention_heads", 2},
                           {"hidden_act", "gelu"}, {"eos_token_id", 2}};
  test::write_bytes(dir.file("config.json"), config.dump());
  auto m = load_clip_text_model_with_projection(dir.path());
  EXPECT_FALSE(m->is_training());
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(m(sample_ids()).text_embeds, source(sample_ids()).text_embeds));
  // The projection-less model takes the same folder and ignores text_projection (SD2 does this).
  auto plain = load_clip_text_model(dir.path());
  EXPECT_TRUE(at::equal(plain(sample_ids()).last_hidden_state, source(sample_ids()).last_hidden_state));

  test::TempDir empty;
  EXPECT_THROW(find_clip_text_weights(empty.path()), LoadError);
}

TEST(CLIPTextLoader, OpenCLIPRoundTrip) {
  test::TempDir dir;
  torch::NoGradGuard no_grad;
  CLIPTextModelWithProjection source(tiny_config("gelu", 3));
  const auto hf = state_dict(source);
  const auto open_clip = transformers_to_open_clip(hf);
  std::map<std::string, at::Tensor> by_name(open_clip.begin(), open_clip.end());
  ASSERT_TRUE(by_name.count("transformer.resblocks.2.attn.in_proj_weight"));
  EXPECT_EQ(by_name["transformer.resblocks.2.attn.in_proj_weight"].sizes(), at::IntArrayRef({24, 8}));
  EXPECT_EQ(by_name["transformer.resblocks.0.attn.in_proj_bias"].sizes(), at::IntArrayRef({24}));
  EXPECT_EQ(by_name["text_projection"].sizes(), at::IntArrayRef({8, 6}));  // [C, P]
  for (const char* name : {"token_embedding.weight", "positional_embedding", "ln_final.weight", "ln_final.bias",
                           "transformer.resblocks.1.ln_1.weight", "transformer.resblocks.1.ln_2.bias",
                           "transformer.resblocks.1.mlp.c_fc.weight", "transformer.resblocks.1.mlp.c_proj.bias",
                           "transformer.resblocks.1.attn.out_proj.weight"})
    EXPECT_TRUE(by_name.count(name)) << name;
  EXPECT_EQ(open_clip.size(), hf.size() - 3 * 4);  // q/k/v weight+bias -> in_proj weight+bias

  std::vector<std::pair<std::string, at::Tensor>> file;
  for (const auto& [name, t] : open_clip) file.emplace_back(kSD2TextPrefix + name, t);
  file.emplace_back(std::string(kSD2TextPrefix) + "logit_scale", torch::tensor(1.f));
  io::save_safetensors(dir.file("sd2.safetensors"), file);
  auto reader = io::open_weights(dir.file("sd2.safetensors"));

  // Converting back through the view gives every transformers tensor bit-exactly.
  auto view = open_clip_as_transformers(*reader, kSD2TextPrefix);
  std::map<std::string, at::Tensor> back;
  for (auto& [name, t] : view->load_all()) back[name] = t;
  for (const auto& [name, t] : hf) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_TRUE(at::equal(back[name], t)) << name;
  }

  CLIPTextModelWithProjection loaded(tiny_config("gelu", 3));
  load_clip_text_weights(*loaded, *reader, kSD2TextPrefix, CLIPTextLayout::OpenCLIP);
  EXPECT_TRUE(at::equal(loaded(sample_ids()).text_embeds, source(sample_ids()).text_embeds));

  // SD2: the file has one more block than the 23-layer-style config; only allowed when asked.
  CLIPTextModel shorter(tiny_config("gelu", 2));
  EXPECT_THROW(load_clip_text_weights(*shorter, *reader, kSD2TextPrefix, CLIPTextLayout::OpenCLIP), LoadError);
  CLIPTextLoadOptions drop;
  drop.drop_extra_layers = true;
  const auto report = load_clip_text_weights(*shorter, *reader, kSD2TextPrefix, CLIPTextLayout::OpenCLIP, drop);
  EXPECT_EQ(report.loaded, shorter->parameters().size());
  EXPECT_TRUE(at::equal(shorter(sample_ids()).hidden_states[2], source(sample_ids()).hidden_states[2]));
}

TEST(CLIPTextModel, PoolsAtFirstEOS) {
  torch::NoGradGuard no_grad;
  CLIPTextModel m(tiny_config());
  const at::Tensor ids = sample_ids();
  EXPECT_EQ(m->text_model->eos_positions(ids)[0].item<int64_t>(), 3);  // ties: first 49407
  EXPECT_EQ(m->text_model->eos_positions(ids)[1].item<int64_t>(), 2);
  const CLIPTextOutput out = m(ids);
  EXPECT_TRUE(at::equal(out.pooler_output[0], out.last_hidden_state[0][3]));
  EXPECT_TRUE(at::equal(out.pooler_output[1], out.last_hidden_state[1][2]));

  CLIPTextConfig c = tiny_config();
  c.eos_token_id = 1125;  // non-legacy: first occurrence of eos_token_id
  CLIPTextModel m2(c);
  EXPECT_EQ(m2->text_model->eos_positions(ids)[0].item<int64_t>(), 2);
}

TEST(CLIPTextModel, CausalAndClipSkip) {
  torch::NoGradGuard no_grad;
  CLIPTextModel m(tiny_config("quick_gelu", 3));
  at::Tensor ids = sample_ids();
  const CLIPTextOutput out = m(ids);
  ASSERT_EQ(out.hidden_states.size(), 4u);
  // Causal: changing a later token leaves earlier positions untouched.
  at::Tensor changed = ids.clone();
  changed[0][10] = 1234;
  EXPECT_TRUE(at::equal(m(changed).last_hidden_state.slice(1, 0, 10), out.last_hidden_state.slice(1, 0, 10)));

  auto& tm = *m->text_model;
  EXPECT_TRUE(at::equal(sd_prompt_embeds(m, ids, 0), out.last_hidden_state));
  EXPECT_TRUE(at::allclose(sd_prompt_embeds(m, ids, 1), tm.final_layer_norm(out.hidden_states[2])));
  EXPECT_TRUE(at::allclose(sd_prompt_embeds(m, ids, 3), tm.final_layer_norm(out.hidden_states[0])));
  EXPECT_THROW(sd_prompt_embeds(m, ids, 4), UsageError);
  EXPECT_THROW(sd_prompt_embeds(m, ids, -1), UsageError);

  CLIPTextModelWithProjection g(tiny_config("gelu", 3));
  const CLIPTextOutput gout = g(ids);
  const SDXLPromptEmbeds e = sdxl_prompt_embeds(m, g, ids, ids);
  EXPECT_EQ(e.prompt_embeds.sizes(), at::IntArrayRef({2, 77, 16}));
  EXPECT_TRUE(at::equal(e.prompt_embeds.slice(-1, 0, 8), out.hidden_states[2]));
  EXPECT_TRUE(at::equal(e.prompt_embeds.slice(-1, 8, 16), gout.hidden_states[2]));
  EXPECT_TRUE(at::equal(e.pooled_prompt_embeds, gout.text_embeds));
  const SDXLPromptEmbeds skip1 = sdxl_prompt_embeds(m, g, ids, ids, 1);
  EXPECT_TRUE(at::equal(skip1.prompt_embeds.slice(-1, 0, 8), out.hidden_states[1]));
  EXPECT_THROW(sdxl_prompt_embeds(m, g, ids, ids, 3), UsageError);
}

TEST(CLIPTextModel, RejectsBadInput) {
  CLIPTextModel m(tiny_config());
  EXPECT_THROW(m(torch::zeros({2, 77})), UsageError);
  EXPECT_THROW(m(torch::zeros({1, 78}, at::kLong)), UsageError);
}

}  // namespace
}  // namespace genvis::models
