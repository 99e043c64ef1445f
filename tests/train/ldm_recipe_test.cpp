// The latent diffusion recipe end to end at toy size: every stage trains (losses fall), the
// exported folder generates through the unchanged pipeline, reruns skip finished stages, and
// config mistakes are reported all at once.
#include "core/error.h"
#include "core/file.h"
#include "io/image.h"
#include "io/weights.h"
#include "pipelines/stable_diffusion.h"
#include "support/metrics_log.h"
#include "support/test_support.h"
#include "train/ldm_recipe.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json tiny_recipe() {
  return json::parse(R"({
    "seed": 3,
    "dataset": {"name": "shapes", "resolution": 16, "size": 64},
    "tokenizer": {"vocab_size": 600},
    "vae": {
      "config": {"block_out_channels": [16, 32], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
                 "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "latent_channels": 4,
                 "layers_per_block": 1, "norm_num_groups": 8, "mid_block_add_attention": false},
      "kl_weight": 1e-4, "batch_size": 8,
      "train": {"steps": 30, "lr": 2e-3, "checkpoint_every": 1000, "log_every": 1000}
    },
    "unet": {"config": {"block_out_channels": [32, 32], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
                        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1,
                        "attention_head_dim": 2, "norm_num_groups": 8}},
    "text_encoder": {"config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                "num_attention_heads": 2}},
    "diffusion": {"batch_size": 16, "caption_dropout": 0.1,
                  "train": {"steps": 40, "lr": 2e-3, "ema_decay": 0.5, "checkpoint_every": 1000, "log_every": 1000}}
  })");
}

using test::losses;
using test::mean_of;

TEST(LDMRecipe, TrainsExportsGeneratesAndSkipsFinishedStages) {
  test::TempDir dir;
  const auto config = LDMRecipeConfig::from_json(tiny_recipe());
  const LDMRecipeResult r = run_ldm_recipe(config, {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  EXPECT_EQ(r.ran, (std::vector<std::string>{"tokenizer", "vae", "diffusion", "export"}));

  // Losses fall (mean of the first vs the last few steps).
  const auto vae = losses(fs::path(dir.path()) / "vae" / "metrics.jsonl");
  ASSERT_EQ(vae.size(), 30u);
  EXPECT_LT(mean_of(vae, 25, 5), 0.7 * mean_of(vae, 0, 5));
  const auto diffusion = losses(fs::path(dir.path()) / "diffusion" / "metrics.jsonl");
  ASSERT_EQ(diffusion.size(), 40u);
  EXPECT_LT(mean_of(diffusion, 30, 10), 0.9 * mean_of(diffusion, 0, 10));
  EXPECT_TRUE(fs::exists(fs::path(dir.path()) / "diffusion" / "loss.png"));
  // Validation at the end: a loss on fixed batches and a grid of 8 samples (4 columns).
  const auto validation = losses(fs::path(dir.path()) / "diffusion" / "validation.jsonl");
  ASSERT_EQ(validation.size(), 1u);
  EXPECT_TRUE(std::isfinite(validation[0]));
  EXPECT_LT(validation[0], mean_of(diffusion, 0, 10));
  // Shapes: the pixel scorer's accuracies of the 8 samples join the loss.
  std::ifstream validation_file(fs::path(dir.path()) / "diffusion" / "validation.jsonl");
  std::string validation_line;
  std::getline(validation_file, validation_line);
  const json record = json::parse(validation_line);
  ASSERT_TRUE(record.contains("shapes_colour_accuracy")) << record.dump();
  EXPECT_GE(record["shapes_colour_accuracy"].get<double>(), 0.0);
  EXPECT_LE(record["shapes_colour_accuracy"].get<double>(), 1.0);
  // And the VAE's reconstructions were scored the same way (with MSE/PSNR) and shown.
  const json reconstruction = json::parse(std::ifstream(fs::path(dir.path()) / "vae" / "reconstruction.json"));
  EXPECT_EQ(reconstruction["samples"], 64);
  EXPECT_GT(reconstruction["psnr_db"].get<double>(), 0.0);
  EXPECT_NEAR(reconstruction["psnr_db"].get<double>(),
              10 * std::log10(4.0 / reconstruction["mse"].get<double>()), 1e-6);
  EXPECT_TRUE(reconstruction.contains("shapes_colour_shape_accuracy")) << reconstruction.dump();
  const io::Image pairs = io::read_png((fs::path(dir.path()) / "vae" / "reconstruction.png").string());
  EXPECT_GE(pairs.width, 8 * 16 * 4);
  const io::Image grid = io::read_png((fs::path(dir.path()) / "diffusion" / "samples" / "step-00000040.png").string());
  EXPECT_GE(grid.width, 4 * 16);
  EXPECT_GE(grid.height, 2 * 16);

  // The folder is a diffusers pipeline: the recipe's choices are in its configs.
  const fs::path model = r.model_dir;
  const json te = json::parse(std::ifstream(model / "text_encoder" / "config.json"));
  EXPECT_EQ(te["architectures"][0], "CLIPTextModel");
  const json index = json::parse(std::ifstream(model / "model_index.json"));
  EXPECT_EQ(index["_class_name"], "StableDiffusionPipeline");
  EXPECT_EQ(index["unet"][1], "UNet2DConditionModel");
  const json vae_config = json::parse(std::ifstream(model / "vae" / "config.json"));
  EXPECT_GT(vae_config["scaling_factor"].get<double>(), 0.0);
  EXPECT_NE(vae_config["scaling_factor"].get<double>(), 0.18215);

  pipelines::ModelSource source;
  source.model = model.string();
  auto sd = pipelines::load_stable_diffusion(source);
  EXPECT_EQ(sd.text_encoder->text_model->config.vocab_size, sd.tokenizer->vocab_size());
  EXPECT_EQ(sd.text_encoder->text_model->config.eos_token_id, sd.tokenizer->eos_id());
  pipelines::GenerateOptions o;
  o.prompt = "a red circle";
  o.steps = 4;
  o.cfg_scale = 3;
  o.width = o.height = 16;
  const auto g = pipelines::generate(sd, o);
  ASSERT_EQ(g.images.sizes(), (std::vector<int64_t>{1, 3, 16, 16}));
  EXPECT_TRUE(g.images.isfinite().all().item<bool>());

  // Again into the same folder: nothing trains, nothing changes.
  const auto unet_weights = model / "unet" / "diffusion_pytorch_model.safetensors";
  const auto written = fs::last_write_time(unet_weights);
  const LDMRecipeResult again = run_ldm_recipe(config, {.out_dir = dir.path()});
  EXPECT_TRUE(again.ran.empty());
  EXPECT_EQ(again.skipped.size(), 4u);
  EXPECT_EQ(fs::last_write_time(unet_weights), written);
  EXPECT_EQ(losses(fs::path(dir.path()) / "diffusion" / "metrics.jsonl").size(), 40u);
}

// bf16 autocast through the whole UNet/VAE/text encoder (convolutions and attention in bf16, the
// GroupNorms in f32 with f32 weights): it runs, and the losses fall as in f32.
TEST(LDMRecipe, Bf16AutocastTrainsBothStages) {
  test::TempDir dir;
  json j = tiny_recipe();
  j["vae"]["train"]["autocast"] = "bf16";
  j["diffusion"]["train"]["autocast"] = "bf16";
  j["diffusion"]["train"]["steps"] = 30;
  const LDMRecipeResult r = run_ldm_recipe(LDMRecipeConfig::from_json(j), {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  const auto vae = losses(fs::path(dir.path()) / "vae" / "metrics.jsonl");
  EXPECT_LT(mean_of(vae, 25, 5), 0.7 * mean_of(vae, 0, 5));
  const auto diffusion = losses(fs::path(dir.path()) / "diffusion" / "metrics.jsonl");
  ASSERT_EQ(diffusion.size(), 30u);
  EXPECT_LT(mean_of(diffusion, 20, 10), 0.9 * mean_of(diffusion, 0, 10));
  for (double l : diffusion) EXPECT_TRUE(std::isfinite(l));
}

// v-prediction with min-SNR weights (and object positions weighted): the losses fall, and the exported scheduler says v_prediction
// so that the pipeline reads the UNet's output as v.
TEST(LDMRecipe, VPredictionWithMinSnrAndForegroundWeightsTrainsAndExports) {
  test::TempDir dir;
  json j = tiny_recipe();
  j["diffusion"]["scheduler"] = {{"prediction_type", "v_prediction"}};
  j["diffusion"]["snr_gamma"] = 5.0;
  j["diffusion"]["foreground_weight"] = 3.0;  // and the object positions weighted up
  j["diffusion"]["train"]["steps"] = 30;
  const LDMRecipeResult r = run_ldm_recipe(LDMRecipeConfig::from_json(j), {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  const auto diffusion = losses(fs::path(dir.path()) / "diffusion" / "metrics.jsonl");
  ASSERT_EQ(diffusion.size(), 30u);
  for (double l : diffusion) EXPECT_TRUE(std::isfinite(l));
  EXPECT_LT(mean_of(diffusion, 20, 10), 0.9 * mean_of(diffusion, 0, 10));
  const json scheduler = json::parse(
      read_text_file((fs::path(r.model_dir) / "scheduler" / "scheduler_config.json").string(), 1 << 20));
  EXPECT_EQ(scheduler.at("prediction_type"), "v_prediction");
}

// diffusion.timesteps draws t from a density: the run trains, its state records the density, and
// resuming with another density is refused (the step Rng's draws would no longer match).
TEST(LDMRecipe, TimestepDensityIsRecordedAndKeptOnResume) {
  test::TempDir dir;
  json j = tiny_recipe();
  j["diffusion"]["timesteps"] = {{"density", "logit_normal"}, {"mean", -0.5}, {"std", 1.0}};
  j["diffusion"]["train"]["steps"] = 6;
  const LDMRecipeResult r = run_ldm_recipe(LDMRecipeConfig::from_json(j), {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  const auto diffusion = losses(fs::path(dir.path()) / "diffusion" / "metrics.jsonl");
  ASSERT_EQ(diffusion.size(), 6u);
  for (double l : diffusion) EXPECT_TRUE(std::isfinite(l));
  const fs::path checkpoints = fs::path(dir.path()) / "diffusion" / "checkpoints";
  std::string latest = read_text_file((checkpoints / "latest").string(), 1 << 10);
  while (!latest.empty() && std::isspace(static_cast<unsigned char>(latest.back()))) latest.pop_back();
  const json state = json::parse(read_text_file((checkpoints / latest / "state.json").string(), 1 << 20));
  EXPECT_EQ(state.at("extra").at("timesteps").at("density"), "logit_normal");
  EXPECT_DOUBLE_EQ(state.at("extra").at("timesteps").at("mean").get<double>(), -0.5);

  fs::remove_all(fs::path(dir.path()) / "model");
  j["diffusion"]["timesteps"]["mean"] = 0.5;
  j["diffusion"]["train"]["steps"] = 8;
  try {
    run_ldm_recipe(LDMRecipeConfig::from_json(j), {.out_dir = dir.path(), .resume = true});
    FAIL() << "resumed with another timestep density";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("timesteps"), std::string::npos) << e.what();
  }
}

// vae.init_logvar starts the posterior with little noise: after a few steps the cached latents'
// noise is still far below the layers' own start (logvar about 0), and out-of-range values are refused.
TEST(LDMRecipe, InitLogvarStartsThePosteriorQuiet) {
  const auto mean_logvar = [](const fs::path& folder) {
    const auto reader = io::open_weights((folder / "latents.safetensors").string());
    return reader->load("logvar", at::kFloat).mean().item<double>();
  };
  test::TempDir dir;
  json j = tiny_recipe();
  j["vae"]["train"]["steps"] = 5;
  j["diffusion"]["train"]["steps"] = 1;
  ASSERT_FALSE(run_ldm_recipe(LDMRecipeConfig::from_json(j), {.out_dir = dir.file("default")}).interrupted);
  j["vae"]["init_logvar"] = -6.0;
  ASSERT_FALSE(run_ldm_recipe(LDMRecipeConfig::from_json(j), {.out_dir = dir.file("quiet")}).interrupted);
  const double loud = mean_logvar(dir.file("default")), quiet = mean_logvar(dir.file("quiet"));
  EXPECT_GT(loud, -2.0);
  EXPECT_LT(quiet, -4.0);
  j["vae"]["init_logvar"] = 5.0;
  try {
    LDMRecipeConfig::from_json(j, "x.json");
    FAIL() << "accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("vae.init_logvar must be in [-20, 2]"), std::string::npos) << e.what();
  }
}

TEST(LDMRecipe, UnfinishedStageNeedsResume) {
  test::TempDir dir;
  json j = tiny_recipe();
  j["vae"]["train"]["steps"] = 2;
  j["vae"]["train"]["checkpoint_every"] = 1;
  j["diffusion"]["train"]["steps"] = 2;
  j["diffusion"]["train"]["checkpoint_every"] = 1;
  const auto config = LDMRecipeConfig::from_json(j);
  ASSERT_FALSE(run_ldm_recipe(config, {.out_dir = dir.path()}).interrupted);
  // Pretend the diffusion stage stopped after its checkpoint: its export is missing.
  fs::remove(fs::path(dir.path()) / "model" / "unet" / "config.json");
  EXPECT_THROW(run_ldm_recipe(config, {.out_dir = dir.path()}), UsageError);
  const auto r = run_ldm_recipe(config, {.out_dir = dir.path(), .resume = true});
  EXPECT_EQ(r.ran, (std::vector<std::string>{"diffusion"}));
  EXPECT_TRUE(fs::exists(fs::path(dir.path()) / "model" / "unet" / "config.json"));
}

// A VAE already in model/vae (copied from another run, or a run stopped between exporting it and
// writing the cache) is not retrained: only the latent cache is computed, and it is the cache the
// original run wrote. A VAE of another config is refused, naming the difference.
TEST(LDMRecipe, ExportedVaeIsReusedForTheLatentCache) {
  test::TempDir first, second, third;
  json j = tiny_recipe();
  j["vae"]["train"]["steps"] = 3;
  j["diffusion"]["train"]["steps"] = 2;
  const auto config = LDMRecipeConfig::from_json(j);
  ASSERT_FALSE(run_ldm_recipe(config, {.out_dir = first.path()}).interrupted);
  const fs::path a = first.path(), b = second.path();
  fs::create_directories(b / "model");
  fs::copy(a / "model" / "tokenizer", b / "model" / "tokenizer");
  fs::copy(a / "model" / "vae", b / "model" / "vae");
  fs::path weights = b / "model" / "vae" / "diffusion_pytorch_model.safetensors";
  const auto written = fs::last_write_time(weights);

  const LDMRecipeResult r = run_ldm_recipe(config, {.out_dir = b.string()});
  EXPECT_EQ(r.ran, (std::vector<std::string>{"vae", "diffusion", "export"}));
  EXPECT_FALSE(fs::exists(b / "vae" / "metrics.jsonl"));  // no VAE training step
  EXPECT_EQ(fs::last_write_time(weights), written);
  const auto original = io::open_weights((a / "latents.safetensors").string());
  const auto recomputed = io::open_weights((b / "latents.safetensors").string());
  for (const char* name : {"mean", "logvar"})
    test::expect_close(recomputed->load(name, at::kFloat), original->load(name, at::kFloat), {1e-6, 1e-6}, name);
  const json info_a = json::parse(std::ifstream(a / "latents.json"));
  const json info_b = json::parse(std::ifstream(b / "latents.json"));
  EXPECT_EQ(info_b["captions"], info_a["captions"]);
  EXPECT_NEAR(info_b["scaling_factor"].get<double>(), info_a["scaling_factor"].get<double>(), 1e-9);

  const fs::path c = third.path();
  fs::create_directories(c / "model");
  fs::copy(a / "model" / "tokenizer", c / "model" / "tokenizer");
  fs::copy(a / "model" / "vae", c / "model" / "vae");
  json other = j;
  other["vae"]["config"]["layers_per_block"] = 2;
  try {
    run_ldm_recipe(LDMRecipeConfig::from_json(other), {.out_dir = c.string()});
    FAIL() << "encoded latents with a VAE of another config";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("/layers_per_block"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(c / "latents.safetensors"));
}

// text_encoder.pretrain at toy size: the contrastive stage trains with the LDM's tokenizer.
json with_pretrain(json j, bool freeze) {
  j["text_encoder"]["pretrain"] = json::parse(R"({
    "model": {"projection_dim": 16,
              "vision_config": {"block_out_channels": [16, 32], "layers_per_block": 1, "norm_num_groups": 8}},
    "batch_size": 16,
    "eval": {"num": 16, "k": 8},
    "train": {"steps": 30, "lr": 3e-3, "warmup_steps": 5, "checkpoint_every": 1000, "log_every": 1000}
  })");
  j["text_encoder"]["freeze"] = freeze;
  j["diffusion"]["train"]["steps"] = 20;
  return j;
}

// The text encoder's exported weights and the contrastive tower's text_model.* weights.
std::pair<std::map<std::string, at::Tensor>, std::map<std::string, at::Tensor>> text_weights(const fs::path& out) {
  std::map<std::string, at::Tensor> te, tower;
  const auto a = io::open_weights((out / "model" / "text_encoder" / "model.safetensors").string());
  for (auto& [name, w] : a->load_all(at::kFloat)) te[name] = w;
  const auto b = io::open_weights((out / "text_pretrain" / "model" / "model.safetensors").string());
  for (auto& [name, w] : b->load_all(at::kFloat))
    if (name.rfind("text_model.", 0) == 0) tower[name] = w;
  return {te, tower};
}

// Frozen: the contrastive stage ran with the LDM's own tokenizer, its loss fell, and the exported
// text encoder IS its text tower (every tensor, bit for bit); the UNet trained on top of it.
TEST(LDMRecipe, ContrastivePretrainedFrozenTextEncoderIsTheTower) {
  test::TempDir dir;
  const auto r = run_ldm_recipe(LDMRecipeConfig::from_json(with_pretrain(tiny_recipe(), true)), {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  EXPECT_EQ(r.ran, (std::vector<std::string>{"tokenizer", "vae", "text_pretrain", "diffusion", "export"}));
  const fs::path out = dir.path();
  for (const char* file : {"vocab.json", "merges.txt"})
    EXPECT_EQ(test::read_bytes((out / "model" / "tokenizer" / file).string()),
              test::read_bytes((out / "text_pretrain" / "model" / "tokenizer" / file).string()))
        << file;
  const auto pre = losses(out / "text_pretrain" / "train" / "metrics.jsonl");
  ASSERT_EQ(pre.size(), 30u);
  EXPECT_LT(mean_of(pre, 25, 5), mean_of(pre, 0, 5));
  EXPECT_TRUE(fs::exists(out / "text_pretrain" / "eval.json"));
  const auto [te, tower] = text_weights(out);
  ASSERT_EQ(te.size(), tower.size());
  for (const auto& [name, w] : te) {
    ASSERT_TRUE(tower.count(name)) << name;
    EXPECT_TRUE(at::equal(w, tower.at(name))) << name;
  }
  const auto diffusion = losses(out / "diffusion" / "metrics.jsonl");
  ASSERT_EQ(diffusion.size(), 20u);
  for (double l : diffusion) EXPECT_TRUE(std::isfinite(l));

  // Rerun: every stage skipped, the pretraining included.
  const auto again = run_ldm_recipe(LDMRecipeConfig::from_json(with_pretrain(tiny_recipe(), true)), {.out_dir = dir.path()});
  EXPECT_TRUE(again.ran.empty());
  EXPECT_EQ(again.skipped.size(), 5u);
}

// Fine-tuned from the tower: the text encoder moved (it trained) but stayed near the tower it
// started from (a fresh initialisation would be as far from it as the tower is large).
TEST(LDMRecipe, ContrastivePretrainedTextEncoderStartsFromTheTower) {
  test::TempDir dir;
  json j = with_pretrain(tiny_recipe(), false);
  j["diffusion"]["train"]["checkpoint_every"] = 10;
  const auto config = LDMRecipeConfig::from_json(j);
  ASSERT_FALSE(run_ldm_recipe(config, {.out_dir = dir.path()}).interrupted);
  const auto [te, tower] = text_weights(dir.path());
  double moved = 0, size = 0;
  bool any_changed = false;
  for (const auto& [name, w] : te) {
    moved += (w - tower.at(name)).pow(2).sum().item<double>();
    size += tower.at(name).pow(2).sum().item<double>();
    any_changed = any_changed || !at::equal(w, tower.at(name));
  }
  EXPECT_TRUE(any_changed);
  EXPECT_LT(std::sqrt(moved / size), 0.2);

  // The diffusion checkpoint records the initialisation: resuming it as a run with a random
  // text encoder is refused, naming the difference.
  fs::remove(fs::path(dir.path()) / "model" / "unet" / "config.json");
  json random = tiny_recipe();
  random["diffusion"]["train"]["steps"] = 20;
  random["diffusion"]["train"]["checkpoint_every"] = 10;
  try {
    run_ldm_recipe(LDMRecipeConfig::from_json(random), {.out_dir = dir.path(), .resume = true});
    FAIL() << "resumed a contrastive-initialised run as a random one";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("text_encoder_init \"contrastive\" -> \"random\""), std::string::npos)
        << e.what();
  }
}

TEST(LDMRecipeConfig, PretrainProblemsAreListed) {
  json j = with_pretrain(tiny_recipe(), false);
  j["text_encoder"]["pretrain"]["model"]["text_config"] = json::object();
  j["text_encoder"]["pretrain"]["dataset"] = j["dataset"];
  try {
    LDMRecipeConfig::from_json(j, "x.json");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    for (const char* want : {"text_encoder.pretrain.model.text_config is text_encoder.config",
                             "text_encoder.pretrain.dataset"})
      EXPECT_NE(m.find(want), std::string::npos) << want << " not in: " << m;
  }
  j = with_pretrain(tiny_recipe(), false);
  j["text_encoder"]["pretrain"]["train"]["lr"] = -1;
  j["text_encoder"]["pretrain"]["bogus"] = 1;
  try {
    LDMRecipeConfig::from_json(j, "x.json");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    for (const char* want : {"text_encoder.pretrain", "bogus", "lr must be > 0"})
      EXPECT_NE(m.find(want), std::string::npos) << want << " not in: " << m;
  }
  j = tiny_recipe();
  j["text_encoder"]["freeze"] = true;
  EXPECT_THROW(LDMRecipeConfig::from_json(j), UsageError);
  const auto c = LDMRecipeConfig::from_json(with_pretrain(tiny_recipe(), true));
  ASSERT_TRUE(c.text_pretrain.has_value());
  EXPECT_TRUE(c.freeze_text_encoder);
  EXPECT_EQ(c.text_pretrain->model_config["text_config"]["hidden_size"], 32);
  EXPECT_EQ(c.text_pretrain->vocab_size, c.vocab_size);
  EXPECT_EQ(c.text_pretrain->dataset.name, "shapes");
}

TEST(LDMRecipeConfig, ListsEveryBadKeyAtOnce) {
  json j = tiny_recipe();
  j["vae"]["train"]["stepz"] = 3;
  j["dataset"].erase("resolution");
  j["diffusion"]["colour"] = 1;
  j["tokenizer"]["vocab_size"] = 10;
  j["text_encoder"]["config"]["vocab_size"] = 100;
  j["unet"]["config"]["cross_attention_dim"] = 768;
  j["diffusion"]["snr_gamma"] = 0;
  j["diffusion"]["foreground_weight"] = -1;
  j["diffusion"]["timesteps"] = {{"density", "gaussian"}, {"shift", -1.0}};
  j["diffusion"]["scheduler"] = {{"prediction_type", "flow"}};
  j["bogus"] = true;
  try {
    LDMRecipeConfig::from_json(j, "x.json");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    for (const char* want : {"x.json", "stepz", "missing key dataset.resolution", "unknown key diffusion.colour",
                             "tokenizer.vocab_size", "text_encoder.config.vocab_size",
                             "unet.config.cross_attention_dim", "unknown key config.bogus",
                             "diffusion.snr_gamma must be > 0", "diffusion.foreground_weight must be in [0, 1000]",
                             "diffusion.timesteps.density: unknown flow sigma density 'gaussian'",
                             "diffusion.timesteps.shift must be positive", "prediction_type must be epsilon or v_prediction"})
      EXPECT_NE(m.find(want), std::string::npos) << want << " not in: " << m;
  }
}

TEST(LDMRecipeConfig, ShippedConfigsParse) {
  for (const char* name :
       {"ldm-shapes-quick.json", "experiments/ldm-shapes-tiny.json", "ldm-emoji.json", "experiments/te-joint-3k.json",
        "experiments/te-contrastive-3k.json", "experiments/te-frozen-3k.json", "experiments/te-joint-4600.json",
        "ldm-emoji-contrastive.json", "ldm-shapes.json", "ldm-emoji-64.json"})
    EXPECT_NO_THROW(LDMRecipeConfig::from_file((std::filesystem::path(GENVIS_SOURCE_DIR) / "configs" / name).string()))
        << name;
}

TEST(LDMRecipeCli, HelpAndBadConfigPath) {
  const std::string cli = std::string(GENVIS_BINARY_DIR) + "/genvis";
  if (!fs::exists(cli)) GTEST_SKIP() << "the genvis binary is not built";
  auto r = test::run_command(cli + " train ldm --help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("--resume"), std::string::npos) << r.out;
  r = test::run_command(cli + " train ldm --config /nonexistent/ldm.json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent/ldm.json"), std::string::npos) << r.err;
  std::string trimmed = r.err;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  EXPECT_EQ(trimmed.find('\n'), std::string::npos) << r.err;
}

}  // namespace
}  // namespace genvis::train
