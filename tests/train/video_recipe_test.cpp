// The text-to-video recipe end to end at toy size: every stage trains (losses fall), the exported
// folder loads through the registry and generates clips of the asked durations, the first frame
// (image-to-video) and the first frames (continuation) are kept exactly, a stopped stage resumes
// to the same weights bit for bit, and config and request mistakes are refused, all at once.
#include "core/error.h"
#include "core/file.h"
#include "data/registry.h"
#include "io/image_tensor.h"
#include "io/weights.h"
#include "models/autoencoder_kl_wan/autoencoder_kl_wan.h"
#include "pipelines/genvis_video/genvis_video_pipeline.h"
#include "pipelines/registry.h"
#include "support/metrics_log.h"
#include "support/test_support.h"
#include "train/video_recipe.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <memory>

namespace genvis::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::losses;
using test::mean_of;

json tiny_video_recipe() {
  return json::parse(R"({
    "seed": 5,
    "dataset": {"name": "shapes-video", "resolution": 16, "size": 48},
    "buckets": [{"frames": 9, "height": 16, "width": 16, "weight": 2}, {"frames": 5, "height": 16, "width": 24}],
    "tokenizer": {"vocab_size": 600},
    "vae": {
      "config": {"base_dim": 16, "z_dim": 4, "dim_mult": [1, 2, 2], "num_res_blocks": 1,
                 "temperal_downsample": [true, true]},
      "kl_weight": 1e-4, "init_logvar": -6, "batch_size": 4,
      "train": {"steps": 80, "lr": 3e-3, "warmup_steps": 10, "checkpoint_every": 1000, "log_every": 1000}
    },
    "transformer": {"config": {"patch_size": [1, 2, 2], "num_attention_heads": 2, "attention_head_dim": 16,
                               "ffn_dim": 64, "freq_dim": 32, "num_layers": 2}},
    "text_encoder": {"config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                "num_attention_heads": 2}},
    "dit": {"batch_size": 8, "caption_dropout": 0.1, "frame_condition": 0.5, "foreground_weight": 4,
            "train": {"steps": 80, "lr": 3e-3, "warmup_steps": 10, "ema_decay": 0.5, "checkpoint_every": 1000,
                      "log_every": 1000}}
  })");
}

// One recipe run shared by the tests that only read its output.
class VideoRecipeRun : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>();
    result_ = run_video_recipe(VideoRecipeConfig::from_json(tiny_video_recipe()), {.out_dir = dir_->path()});
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static fs::path out() { return dir_->path(); }
  static std::unique_ptr<pipelines::Pipeline> load() { return pipelines::load_pipeline({.model = (out() / "model").string()}); }
  static inline std::unique_ptr<test::TempDir> dir_;
  static inline VideoRecipeResult result_;
};

TEST_F(VideoRecipeRun, TrainsEveryStageAndLossesFall) {
  ASSERT_FALSE(result_.interrupted);
  EXPECT_EQ(result_.ran, (std::vector<std::string>{"tokenizer", "vae", "dit", "export"}));
  const auto vae = losses(out() / "vae" / "metrics.jsonl");
  ASSERT_EQ(vae.size(), 80u);
  EXPECT_LT(mean_of(vae, 70, 10), 0.75 * mean_of(vae, 0, 10));
  const auto dit = losses(out() / "dit" / "metrics.jsonl");
  ASSERT_EQ(dit.size(), 80u);
  EXPECT_LT(mean_of(dit, 70, 10), 0.8 * mean_of(dit, 0, 10));

  // The latent cache: every clip at every bucket's size, and the statistics the VAE carries.
  const json info = json::parse(read_text_file((out() / "latents.json").string(), size_t{1} << 24));
  EXPECT_EQ(info.at("captions").size(), 48u);
  const auto b0 = io::open_weights((out() / "latents" / "bucket-0.safetensors").string());
  EXPECT_EQ(b0->load("mean").sizes(), at::IntArrayRef({48, 4, 3, 4, 4}));   // 9 frames -> 3, 16 px -> 4
  const auto b1 = io::open_weights((out() / "latents" / "bucket-1.safetensors").string());
  EXPECT_EQ(b1->load("mean").sizes(), at::IntArrayRef({48, 4, 2, 4, 6}));   // 5 frames -> 2, 24 px -> 6
  // The object masks at the latent grid: some positions, far from all (one small object per clip).
  const at::Tensor fg = b0->load("foreground");
  EXPECT_EQ(fg.scalar_type(), at::kByte);
  EXPECT_EQ(fg.sizes(), at::IntArrayRef({48, 1, 3, 4, 4}));
  const double fg_share = fg.to(at::kFloat).mean().item<double>();
  EXPECT_GT(fg_share, 0.01);
  EXPECT_LT(fg_share, 0.6);
  const auto vae_config = models::AutoencoderKLWanConfig::from_file((out() / "model" / "vae" / "config.json").string());
  ASSERT_EQ(vae_config.latents_mean.size(), 4u);
  ASSERT_EQ(vae_config.latents_std.size(), 4u);
  for (double s : vae_config.latents_std) EXPECT_GT(s, 0.0);
  const json reconstruction = json::parse(read_text_file((out() / "vae" / "reconstruction.json").string(), 1 << 20));
  EXPECT_TRUE(reconstruction.contains("9x16x16")) << reconstruction.dump();
  // shapes-video: the clip scorer on the real clips and their reconstructions (the latents'
  // ceiling); the real clips score as the data says they should.
  const json& r9 = reconstruction["9x16x16"];
  EXPECT_GT(r9["real_shapes_video_colour_shape_accuracy"].get<double>(), 0.5) << r9.dump();
  for (const char* k : {"reconstructed_shapes_video_colour_shape_accuracy", "reconstructed_shapes_video_motion_accuracy"}) {
    ASSERT_TRUE(r9.contains(k)) << k;
    EXPECT_GE(r9[k].get<double>(), 0.0);
    EXPECT_LE(r9[k].get<double>(), 1.0);
  }
  EXPECT_TRUE(fs::exists(out() / "dit" / "samples" / "step-00000080.png"));
  EXPECT_TRUE(fs::exists(out() / "vae" / "reconstruction.png"));

  // A rerun skips every finished stage.
  const auto again = run_video_recipe(VideoRecipeConfig::from_json(tiny_video_recipe()), {.out_dir = out().string()});
  EXPECT_TRUE(again.ran.empty());
  EXPECT_EQ(again.skipped, (std::vector<std::string>{"tokenizer", "vae", "dit", "export"}));
}

TEST_F(VideoRecipeRun, ExportedFolderGeneratesThroughTheRegistry) {
  ASSERT_FALSE(result_.interrupted);
  EXPECT_EQ(pipelines::pipeline_class_of({.model = (out() / "model").string()}), pipelines::kGenvisVideoClass);
  const auto p = load();
  const auto& info = p->info();
  EXPECT_EQ(info.native_width, 16);
  EXPECT_EQ(info.size_multiple, 8);  // VAE 4 x patch 2
  EXPECT_TRUE(info.supports.video && info.supports.image_to_image);
  pipelines::Request r;
  r.prompt = "a red square moving to the right";
  r.steps = 3;
  const auto out9 = p->generate(r);  // the model's default: the first bucket
  EXPECT_EQ(out9.samples.sizes(), at::IntArrayRef({1, 3, 9, 16, 16}));
  r.num_frames = 13;  // a duration not trained on
  r.width = 24;
  r.height = 16;
  const auto out13 = p->generate(r);
  EXPECT_EQ(out13.samples.sizes(), at::IntArrayRef({1, 3, 13, 16, 24}));
  EXPECT_TRUE(at::isfinite(out13.samples).all().item<bool>());
  // Seeded: the same request gives the same clip; batch rows use seed + i.
  r.num_frames = 5, r.width = 16;
  r.batch = 2;
  r.seed = 7;
  const auto two = p->generate(r);
  r.batch = 1;
  r.seed = 8;
  const auto one = p->generate(r);
  EXPECT_TRUE(at::allclose(one.samples[0], two.samples[1], 1e-5, 1e-5));
  // The first-block cache: a threshold no step meets is the plain run; a loose one reuses the
  // cached blocks and changes the clip; the UNet's interval is refused by name.
  r.cache_threshold = 1e-9;
  EXPECT_TRUE(at::allclose(p->generate(r).samples, one.samples, 1e-5, 1e-5));
  r.cache_threshold = 0.9;
  const auto cached = p->generate(r);
  EXPECT_FALSE(at::allclose(cached.samples, one.samples, 1e-5, 1e-5));
  EXPECT_TRUE(at::isfinite(cached.samples).all().item<bool>());
  r.cache_threshold = 0;
  r.cache_interval = 2;
  EXPECT_THROW(p->generate(r), UsageError);
}

// The given frame comes back as the VAE's reconstruction of it, whatever the transformer does:
// its latent frame is put back at every step, and the causal VAE decodes frame 0 from it alone.
TEST_F(VideoRecipeRun, ImageToVideoKeepsTheFirstFrame) {
  ASSERT_FALSE(result_.interrupted);
  const auto p = load();
  auto vae = models::load_autoencoder_kl_wan((out() / "model" / "vae").string());
  // Two first frames of the dataset with different backgrounds.
  const auto clips = data::make_video_dataset({.name = "shapes-video", .resolution = 16, .num_frames = 5, .seed = 9});
  at::Tensor images[2];
  for (size_t i = 0, found = 0; found < 2; ++i) {
    const data::VideoSample c = clips->get(i);
    if (found == 1 && c.meta["background"]["colour"] == clips->get(0).meta["background"]["colour"]) continue;
    images[found++] = io::image_to_tensor(c.frames[0]);  // [1,3,16,16] in [-1,1]
  }
  ASSERT_GT((images[0] - images[1]).abs().mean().item<double>(), 0.2);
  at::Tensor first[2], expected[2];
  for (int k = 0; k < 2; ++k) {
    pipelines::Request r;
    r.prompt = "a blue circle moving up";
    r.steps = 4;
    r.num_frames = 9;
    r.init_image = images[k];
    const auto clip = p->generate(r);
    ASSERT_EQ(clip.samples.sizes(), at::IntArrayRef({1, 3, 9, 16, 16}));
    first[k] = clip.samples.select(2, 0);
    torch::NoGradGuard no_grad;
    expected[k] = (vae->decode(vae->encode(images[k].unsqueeze(2)).mean).select(2, 0) / 2 + 0.5).clamp(0, 1);
    EXPECT_LT((first[k] - expected[k]).abs().max().item<double>(), 1e-4) << k;
  }
  // The two given frames lead to two different first frames.
  EXPECT_GT((first[0] - first[1]).abs().mean().item<double>(), 0.05);
}

TEST_F(VideoRecipeRun, ContinuationKeepsTheGivenFrames) {
  ASSERT_FALSE(result_.interrupted);
  const auto p = load();
  const at::Tensor video = at::rand({1, 3, 9, 16, 16}) * 2 - 1;
  pipelines::Request r;
  r.prompt = "a green star rotating clockwise";
  r.steps = 4;
  r.num_frames = 13;
  r.init_video = video;
  r.extras = {{"keep_frames", 5}};
  const auto clip = p->generate(r);
  ASSERT_EQ(clip.samples.sizes(), at::IntArrayRef({1, 3, 13, 16, 16}));
  auto vae = models::load_autoencoder_kl_wan((out() / "model" / "vae").string());
  torch::NoGradGuard no_grad;
  const at::Tensor expected = (vae->decode(vae->encode(video.narrow(2, 0, 5)).mean) / 2 + 0.5).clamp(0, 1);
  EXPECT_LT((clip.samples.narrow(2, 0, 5) - expected).abs().max().item<double>(), 1e-4);
}

TEST_F(VideoRecipeRun, BadRequestsAreRefusedNamingTheField) {
  ASSERT_FALSE(result_.interrupted);
  const auto p = load();
  const auto message = [&](pipelines::Request r) {
    try {
      p->generate(r);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  pipelines::Request r;
  r.prompt = "a star";
  r.steps = 2;
  r.num_frames = 8;
  EXPECT_NE(message(r).find("use 5 or 9"), std::string::npos) << message(r);
  r.num_frames = 9;
  r.width = 20;  // not a multiple of 8
  EXPECT_NE(message(r).find("width"), std::string::npos) << message(r);
  r.width = 16;
  r.extras = {{"keep_frames", 5}};
  EXPECT_NE(message(r).find("--init-video"), std::string::npos) << message(r);
  r.init_video = at::zeros({1, 3, 9, 16, 16});
  r.extras = {{"keep_frames", 4}};
  EXPECT_NE(message(r).find("keep_frames must be 1 + 4k"), std::string::npos) << message(r);
  r.extras = {{"keep_frames", 9}};
  EXPECT_NE(message(r).find("leaves nothing to generate"), std::string::npos) << message(r);
}

// vae.from: another run's VAE is copied in and only the latent cache is computed (the same latents
// as that run's); a VAE of another config, or a folder without one, is refused naming it.
TEST_F(VideoRecipeRun, VaeFromReusesAnotherRunsVae) {
  ASSERT_FALSE(result_.interrupted);
  const std::string from = (out() / "model" / "vae").string();
  test::TempDir dir;
  json j = tiny_video_recipe();
  j["vae"]["from"] = from;
  j["dit"]["train"]["steps"] = 2;
  const auto r = run_video_recipe(VideoRecipeConfig::from_json(j), {.out_dir = dir.path()});
  ASSERT_FALSE(r.interrupted);
  EXPECT_EQ(r.ran, (std::vector<std::string>{"tokenizer", "vae", "dit", "export"}));
  EXPECT_FALSE(fs::exists(fs::path(dir.path()) / "vae" / "metrics.jsonl")) << "the VAE was trained again";
  const auto a = io::open_weights(from + "/diffusion_pytorch_model.safetensors");
  const auto b = io::open_weights(dir.file("model/vae/diffusion_pytorch_model.safetensors"));
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (const auto& t : a->tensors()) EXPECT_TRUE(at::equal(a->load(t.name), b->load(t.name))) << t.name;
  for (const char* bucket : {"latents/bucket-0.safetensors", "latents/bucket-1.safetensors"}) {
    const at::Tensor ours = io::open_weights(dir.file(bucket))->load("mean");
    const at::Tensor theirs = io::open_weights((out() / bucket).string())->load("mean");
    EXPECT_TRUE(at::allclose(ours, theirs, 1e-5, 1e-6)) << bucket;
  }
  EXPECT_TRUE(fs::exists(fs::path(dir.path()) / "model" / "model_index.json"));

  const auto refused = [](const json& config, const std::string& expected) {
    test::TempDir elsewhere;
    try {
      run_video_recipe(VideoRecipeConfig::from_json(config), {.out_dir = elsewhere.path()});
      ADD_FAILURE() << "accepted, expected: " << expected;
    } catch (const UsageError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("vae.from"), std::string::npos) << m;
      EXPECT_NE(m.find(expected), std::string::npos) << m;
    }
  };
  json other = j;
  other["vae"]["config"]["z_dim"] = 8;
  refused(other, "z_dim");
  other = j;
  other["vae"]["from"] = from + "/missing";
  refused(other, "not found");
}

// Stopping the transformer stage after its checkpoint and resuming gives the weights of one
// uninterrupted run, bit for bit (constant learning rate: the schedule's length changes).
TEST(VideoRecipe, ResumedStageMatchesAnUninterruptedRun) {
  test::TempDir whole, split;
  json j = tiny_video_recipe();
  j["vae"]["train"]["steps"] = 3;
  j["dit"]["train"] = {{"steps", 6}, {"lr", 1e-3}, {"min_lr", 1e-3}, {"ema_decay", 0.5}, {"checkpoint_every", 3},
                       {"log_every", 1000}};
  ASSERT_FALSE(run_video_recipe(VideoRecipeConfig::from_json(j), {.out_dir = whole.path()}).interrupted);
  json first = j;
  first["dit"]["train"]["steps"] = 3;
  ASSERT_FALSE(run_video_recipe(VideoRecipeConfig::from_json(first), {.out_dir = split.path()}).interrupted);
  fs::remove(fs::path(split.path()) / "model" / "transformer" / "config.json");  // as if stopped after step 3
  EXPECT_THROW(run_video_recipe(VideoRecipeConfig::from_json(j), {.out_dir = split.path()}), UsageError);
  const auto r = run_video_recipe(VideoRecipeConfig::from_json(j), {.out_dir = split.path(), .resume = true});
  EXPECT_EQ(r.ran, (std::vector<std::string>{"dit"}));
  const auto a = io::open_weights(whole.file("model/transformer/diffusion_pytorch_model.safetensors"));
  const auto b = io::open_weights(split.file("model/transformer/diffusion_pytorch_model.safetensors"));
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (const auto& t : a->tensors()) EXPECT_TRUE(at::equal(a->load(t.name), b->load(t.name))) << t.name;
}

TEST(VideoRecipeConfig, ListsEveryBadKeyAtOnce) {
  json j = tiny_video_recipe();
  j["colour"] = 1;
  j["buckets"][0]["frames"] = 8;
  j["buckets"][1]["width"] = 20;
  j["vae"]["config"]["latents_mean"] = {0, 0, 0, 0};
  j["transformer"]["config"]["image_dim"] = 64;
  j["dit"]["frame_condition"] = 2;
  j["dit"]["timesteps"] = {{"density", "cosine"}};
  j["vae"]["foreground_weight"] = -1;
  j["vae"]["from"] = "";
  j["dit"]["foreground_weight"] = 2000;
  try {
    VideoRecipeConfig::from_json(j, "video.json");
    FAIL() << "accepted";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("video.json"), std::string::npos) << m;
    for (const char* part : {"colour", "buckets[0].frames 8 must be 1 + 4k", "buckets[1]: height and width must be multiples of 8",
                             "latents_mean is measured by the recipe", "image_dim", "dit.frame_condition", "dit.timesteps.density",
                             "vae.foreground_weight", "vae.from must name a VAE folder", "dit.foreground_weight"})
      EXPECT_NE(m.find(part), std::string::npos) << part << " not in: " << m;
  }
  json image = tiny_video_recipe();
  image["dataset"]["name"] = "shapes";
  EXPECT_THROW(VideoRecipeConfig::from_json(image), UsageError);
}

TEST(VideoRecipeConfig, ShippedConfigsParse) {
  for (const char* name : {"video-shapes-quick.json", "video-shapes.json", "experiments/video-vae-2x.json",
                           "experiments/video-scaling-s.json", "experiments/video-scaling-m.json", "experiments/video-scaling-l.json",
                           "experiments/video-shapes-dit-fg20.json"}) {
    const std::string path = std::string(GENVIS_SOURCE_DIR) + "/configs/" + name;
    EXPECT_NO_THROW(VideoRecipeConfig::from_file(path)) << path;
  }
}

}  // namespace
}  // namespace genvis::train
