// DreamBooth, LoRA and Textual Inversion on the shipped default model (32 px, a few steps each)
// with the red-star subject of examples/: the loss falls, outputs load back, class images are
// cached, resuming is exact, and bad configurations are refused with every problem named.
#include "core/error.h"
#include "io/weights.h"
#include "models/clip_text/embedding_file.h"
#include "pipelines/adapters.h"
#include "support/metrics_log.h"
#include "support/test_support.h"
#include "train/personalize_recipe.h"

#include <filesystem>
#include <map>
#include <torch/torch.h>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;

std::string source_path(const std::string& rel) { return (fs::path(GENVIS_SOURCE_DIR) / rel).string(); }

PersonalizeConfig base_config(PersonalizeMethod method) {
  PersonalizeConfig c;
  c.method = method;
  c.model = source_path("models/genvis-emoji-32");
  c.instance_dir = source_path("examples/red-star");
  c.instance_prompt = "a sks star";
  c.batch_size = 2;
  c.class_steps = 4;
  c.train.steps = 40;
  c.train.lr = 2e-3;
  c.train.checkpoint_every = 10;
  c.train.log_every = 1;
  c.train.validate_every = 0;
  c.validation_prompts = {"a sks star"};
  return c;
}

// Mean loss of the first and the last `n` steps.
std::pair<double, double> first_last(const std::string& out, size_t n) {
  const auto l = test::losses(fs::path(out) / "metrics.jsonl");
  EXPECT_GE(l.size(), 2 * n);
  return {test::mean_of(l, 0, n), test::mean_of(l, l.size() - n, n)};
}

TEST(PersonalizeRecipe, LoRAWithPriorPreservationLearnsAndCachesClassImages) {
  test::TempDir dir;
  PersonalizeConfig c = base_config(PersonalizeMethod::LoRA);
  c.class_prompt = "a star";
  c.num_class_images = 4;
  c.class_dir = dir.file("class");
  const auto r = run_personalize(c, {.out_dir = dir.file("run")});
  EXPECT_EQ(r.instance_images, 4);
  EXPECT_EQ(r.class_images, 4);
  EXPECT_EQ(r.class_images_generated, 4);
  EXPECT_TRUE(fs::exists(dir.file("class/class-0003.png")));
  const auto [first, last] = first_last(dir.file("run"), 10);
  EXPECT_LT(last, first);
  EXPECT_TRUE(fs::exists(dir.file("run/samples/step-00000040.png")));
  // The file is a kohya LoRA that loads onto the model it was trained on.
  auto model = pipelines::load_stable_diffusion({.model = c.model});
  const auto report = pipelines::load_lora(model, r.output, 1.0);
  EXPECT_GT(report.merged, 10u);
  auto reader = io::open_weights(r.output);
  EXPECT_EQ(reader->metadata().at("ss_network_module"), "networks.lora");
  EXPECT_EQ(reader->metadata().at("genvis_method"), "lora");
  // A second run reuses the cached class images.
  const auto again = run_personalize(c, {.out_dir = dir.file("run2")});
  EXPECT_EQ(again.class_images_generated, 0);
}

TEST(PersonalizeRecipe, LoRAResumeIsExact) {
  test::TempDir dir;
  PersonalizeConfig c = base_config(PersonalizeMethod::LoRA);
  c.train.steps = 12;
  c.train.min_lr = c.train.lr;  // a constant rate: the schedule does not depend on the total steps
  c.save_dtype = "f32";
  const auto straight = run_personalize(c, {.out_dir = dir.file("straight")});
  c.train.steps = 6;
  run_personalize(c, {.out_dir = dir.file("split")});
  c.train.steps = 12;
  EXPECT_THROW(run_personalize(c, {.out_dir = dir.file("split")}), UsageError);  // checkpoints need --resume
  const auto resumed = run_personalize(c, {.out_dir = dir.file("split"), .resume = true});
  auto a = io::open_weights(straight.output), b = io::open_weights(resumed.output);
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (const auto& info : a->tensors()) EXPECT_TRUE(at::equal(a->load(info.name), b->load(info.name))) << info.name;
}

TEST(PersonalizeRecipe, LoRATargetsChooseTheAdaptedLayers) {
  test::TempDir dir;
  PersonalizeConfig c = base_config(PersonalizeMethod::LoRA);
  c.train.steps = 1;
  std::map<std::string, size_t> counts;
  for (const std::string targets : {"transformer", "attention"}) {
    c.lora_targets = targets;
    const auto r = run_personalize(c, {.out_dir = dir.file(targets)});
    auto model = pipelines::load_stable_diffusion({.model = c.model});
    const auto lora = models::read_lora(r.output, pipelines::lora_targets(model));
    counts[targets] = lora.modules.size();
    for (const auto& m : lora.modules) {
      EXPECT_NE(m.module.find("attentions."), std::string::npos) << m.module;
      if (targets == "attention") {
        EXPECT_NE(m.module.find(".attn"), std::string::npos) << m.module;
      }
    }
  }
  EXPECT_GT(counts["transformer"], counts["attention"]);
  EXPECT_GT(counts["attention"], 0u);
}

TEST(PersonalizeRecipe, TextualInversionLearnsVectorsFromTheInitializer) {
  test::TempDir dir;
  PersonalizeConfig c = base_config(PersonalizeMethod::TextualInversion);
  c.placeholder = "sks";
  c.initializer = "star";
  c.num_vectors = 2;
  c.train.lr = 5e-2;
  const auto r = run_personalize(c, {.out_dir = dir.file("run")});
  EXPECT_EQ(fs::path(r.output).filename(), "sks.safetensors");
  const auto e = models::read_embedding_file(r.output);
  EXPECT_EQ(e.name, "sks");
  ASSERT_EQ(e.vectors.dim(), 2);
  EXPECT_EQ(e.vectors.size(0), 2);
  const auto [first, last] = first_last(dir.file("run"), 10);
  EXPECT_LT(last, first);
  // The vectors moved away from "star"'s token embedding, and the embedding loads by name.
  auto model = pipelines::load_stable_diffusion({.model = c.model});
  const auto ids = model.tokenizer->encode("star");
  const at::Tensor init = model.text_encoder->text_model->embeddings->token_embedding->weight[ids[0]].to(at::kFloat);
  EXPECT_GT((e.vectors[0] - init).abs().max().item<double>(), 1e-3);
  pipelines::add_embedding(model, e);
  const auto cond = pipelines::encode_prompt(model, "a sks star", 0).context;
  const auto plain = pipelines::encode_prompt(model, "a star", 0).context;
  EXPECT_FALSE(at::allclose(cond, plain));
}

TEST(PersonalizeRecipe, FullDreamBoothWritesALoadableModel) {
  test::TempDir dir;
  PersonalizeConfig c = base_config(PersonalizeMethod::DreamBooth);
  c.class_prompt = "a star";
  c.num_class_images = 2;
  c.train.steps = 8;
  c.train.lr = 1e-4;
  c.save_dtype = "f32";
  const auto r = run_personalize(c, {.out_dir = dir.file("run")});
  EXPECT_EQ(r.output, dir.file("run/model"));
  EXPECT_TRUE(fs::exists(dir.file("run/model/personalization.json")));
  EXPECT_FALSE(fs::exists(dir.file("run/model/README.md")));  // the base's model card stays behind
  auto tuned = pipelines::load_stable_diffusion({.model = r.output});
  auto base = pipelines::load_stable_diffusion({.model = c.model});
  double changed = 0;
  const auto params = tuned.unet->named_parameters();
  for (const auto& p : base.unet->named_parameters())
    changed = std::max(changed, (params[p.key()] - p.value()).abs().max().item<double>());
  EXPECT_GT(changed, 1e-6);
  // The text encoder was not trained: bit-identical.
  const auto te = tuned.text_encoder->named_parameters();
  for (const auto& p : base.text_encoder->named_parameters()) EXPECT_TRUE(at::equal(te[p.key()], p.value())) << p.key();
}

TEST(PersonalizeRecipe, BadConfigurationsNameEveryProblem) {
  test::TempDir dir;
  PersonalizeConfig c = base_config(PersonalizeMethod::TextualInversion);
  c.instance_dir = dir.file("missing");
  c.num_vectors = 0;
  c.class_prompt = "a star";
  try {
    c.validate();
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    for (const char* expected : {"--instance-dir", "--placeholder", "--initializer", "--num-vectors", "prior preservation"})
      EXPECT_NE(what.find(expected), std::string::npos) << expected << " in: " << what;
  }
  PersonalizeConfig db = base_config(PersonalizeMethod::DreamBooth);
  db.model = source_path("models/genvis-emoji-32/unet/diffusion_pytorch_model.safetensors");  // a single file
  EXPECT_THROW(db.validate(), UsageError);
  db.lora = true;
  EXPECT_NO_THROW(db.validate());
}

}  // namespace
}  // namespace genvis::train
