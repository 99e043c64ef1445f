// Runs the genvis binary as a user would.
#include "io/image.h"
#include "io/infotext.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "support/test_support.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <zip.h>

namespace genvis {
namespace {

namespace fs = std::filesystem;
using test::run_command;
using test::shell_quote;

// One line, naming the problem, no backtrace.
void expect_one_line_error(const test::CommandResult& r, int code, const std::string& part) {
  EXPECT_EQ(r.exit_code, code) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), r.err.find("Run 'genvis --help'") != std::string::npos ? 2 : 1)
      << r.err;
  EXPECT_EQ(r.err.rfind("genvis: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(part), std::string::npos) << r.err;
}

TEST(Cli, HelpAndVersion) {
  auto r = test::run_genvis("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("info"), std::string::npos);
  EXPECT_NE(r.out.find("convert"), std::string::npos);
  for (const char* sub : {"info", "convert"}) {
    r = test::run_genvis(std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
  }
  r = test::run_genvis("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("genvis 0.", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("libtorch"), std::string::npos);
}

TEST(Cli, UsageErrorsExitTwo) {
  expect_one_line_error(test::run_genvis(""), 2, "command is required");
  expect_one_line_error(test::run_genvis("frobnicate"), 2, "frobnicate");
  expect_one_line_error(test::run_genvis("info"), 2, "paths");
  expect_one_line_error(test::run_genvis("info --no-such-option x"), 2, "--no-such-option");
  expect_one_line_error(test::run_genvis("convert a.ckpt b.safetensors --dtype int3"), 2, "int3");
  expect_one_line_error(test::run_genvis("--threads -4 info x"), 2, "threads");
}

TEST(CliFixtures, GenerateBadInputIsOneLine) {
  GENVIS_REQUIRE_FIXTURES();
  const std::string f = test::fixtures_dir();
  const std::string base = "generate --text-encoder " + f + "/clip_l --unet " + f + "/unet_sd1 --vae " + f +
                           "/vae --vocab " + test::shared_dir() + "/data/bpe_simple_vocab_16e6.txt.gz -p x ";
  expect_one_line_error(test::run_genvis(base + "--steps 0"), 2, "--steps");
  expect_one_line_error(test::run_genvis(base + "--width 65"), 2, "multiples of 8");
  expect_one_line_error(test::run_genvis(base + "--cfg-scale -1"), 2, "--cfg-scale");
  expect_one_line_error(test::run_genvis(base + "--sampler warp"), 2, "warp");
  expect_one_line_error(test::run_genvis(base + "--init-image /nonexistent.png"), 3, "/nonexistent.png");
  expect_one_line_error(test::run_genvis("generate -p x --unet " + f + "/vae"), 2, "--text-encoder");
  expect_one_line_error(test::run_genvis("generate -p x --text-encoder " + f + "/clip_l --unet " + f + "/vae --vae " + f +
                               "/vae --vocab /etc/hostname"),
                        3, "/etc/hostname");
}

TEST(CliFixtures, InpaintAndSdxlFromComponents) {
  GENVIS_REQUIRE_FIXTURES();
  const std::string f = test::fixtures_dir();
  const std::string vocab = test::shared_dir() + "/data/bpe_simple_vocab_16e6.txt.gz";
  test::TempDir dir;
  io::Image image = io::Image::blank(32, 24, 3, 8, 128);
  io::write_png(dir.file("init.png"), image);
  io::Image mask = io::Image::blank(32, 24, 1);
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 32; ++x) mask.at(x, y, 0) = 255;
  io::write_png(dir.file("mask.png"), mask);
  const io::Image small_mask = io::Image::blank(16, 24, 1, 8, 255);
  io::write_png(dir.file("small_mask.png"), small_mask);

  const std::string sd1 = "generate --text-encoder " + f + "/clip_l --unet " + f + "/unet_sd1 --vae " + f +
                          "/vae --vocab " + vocab + " -p x --steps 2 --width 32 --height 24 ";
  auto r = test::run_genvis(sd1 + "--init-image " + dir.file("init.png") + " --mask " + dir.file("mask.png") + " -o " +
                  dir.file("inpainted.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(io::read_png(dir.file("inpainted.png")).width, 32);
  expect_one_line_error(test::run_genvis(sd1 + "--mask " + dir.file("mask.png")), 2, "--init-image");
  expect_one_line_error(test::run_genvis(sd1 + "--init-image " + dir.file("init.png") + " --mask " + dir.file("small_mask.png")),
                        2, "mask is 16x24");
  expect_one_line_error(test::run_genvis(sd1 + "--init-image " + dir.file("init.png") + " --mask /nonexistent-mask.png"), 3,
                        "/nonexistent-mask.png");
  expect_one_line_error(test::run_genvis(sd1 + "--prediction-type sideways"), 2, "sideways");

  const std::string sdxl = "generate --text-encoder " + f + "/clip_l --text-encoder-2 " + f + "/clip_g --unet " + f +
                           "/unet_sdxl --vae " + f + "/vae --vocab " + vocab + " -p x --steps 2 --width 32 --height 24 ";
  r = test::run_genvis(sdxl + "-o " + dir.file("xl.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(io::read_png(dir.file("xl.png")).height, 24);
  expect_one_line_error(test::run_genvis("generate --text-encoder " + f + "/clip_l --unet " + f + "/unet_sdxl --vae " + f +
                               "/vae --vocab " + vocab + " -p x"),
                        2, "--text-encoder-2");
}

TEST(CliFixtures, SingleFileModelErrors) {
  GENVIS_REQUIRE_FIXTURES();
  const std::string file = test::fixtures_dir() + "/single_file/sd1_tiny_ldm.safetensors";
  const std::string vocab = " --vocab " + test::shared_dir() + "/data/bpe_simple_vocab_16e6.txt.gz";
  test::TempDir dir;
  {
    std::ofstream(dir.file("bad.json")) << "{\"unet\": ";
    std::ofstream(dir.file("unknown.json")) << R"({"transformer": {"num_layers": 2}})";
  }
  expect_one_line_error(test::run_genvis("generate -p x --model " + file), 2, "--vocab");
  expect_one_line_error(test::run_genvis("generate -p x --model /nonexistent.safetensors" + vocab), 3, "/nonexistent.safetensors");
  expect_one_line_error(test::run_genvis("generate -p x --model " + file + vocab + " --model-config " + dir.file("bad.json")), 3,
                        "bad.json");
  expect_one_line_error(test::run_genvis("generate -p x --model " + file + vocab + " --model-config " + dir.file("unknown.json")),
                        2, "transformer");
  expect_one_line_error(test::run_genvis("generate -p x --model " + test::fixtures_dir() + vocab + " --model-config " +
                               dir.file("unknown.json")),
                        2, "--model-config");
  // A component file is not a single-file checkpoint: the error names what was looked for.
  const auto r = test::run_genvis("generate -p x --model " + test::fixtures_dir() + "/unet_sd1/diffusion_pytorch_model.safetensors" +
                        vocab);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("model.diffusion_model"), std::string::npos) << r.err;
}

TEST(Cli, LoadErrorsExitThree) {
  test::TempDir dir;
  expect_one_line_error(test::run_genvis("info " + dir.file("missing.safetensors")), 3, "missing.safetensors");
  test::write_bytes(dir.file("trunc.safetensors"), std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", 13));
  expect_one_line_error(test::run_genvis("info " + dir.file("trunc.safetensors")), 3, "trunc.safetensors");
  test::write_bytes(dir.file("text.bin"), "hello world, this is not a model");
  expect_one_line_error(test::run_genvis("info " + dir.file("text.bin")), 3, "unrecognised");
}

// Every weight file in the fixtures: tensor names, shapes and dtypes printed by `genvis info`
// equal those read independently from the raw safetensors header.
TEST(CliFixtures, InfoMatchesEveryFixtureHeader) {
  GENVIS_REQUIRE_FIXTURES();
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(test::fixtures_dir())) {
    if (!e.is_regular_file() || e.path().extension() != ".safetensors") continue;
    ++files;
    const std::string path = e.path().string();
    const auto r = test::run_genvis("info --json --tensors " + shell_quote(path));
    ASSERT_EQ(r.exit_code, 0) << path << ": " << r.err;
    const auto info = nlohmann::json::parse(r.out);

    std::ifstream in(path, std::ios::binary);
    uint64_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 8);
    std::string header(n, '\0');
    in.read(header.data(), static_cast<std::streamsize>(n));
    auto raw = nlohmann::json::parse(header);
    raw.erase("__metadata__");

    EXPECT_EQ(info["tensor_count"].get<size_t>(), raw.size()) << path;
    ASSERT_EQ(info["tensors"].size(), raw.size()) << path;
    uint64_t params = 0;
    for (const auto& t : info["tensors"]) {
      const auto& ref = raw.at(t["name"].get<std::string>());
      EXPECT_EQ(t["shape"], ref["shape"]) << path << " " << t["name"];
      EXPECT_EQ(t["dtype"], ref["dtype"]) << path << " " << t["name"];
      uint64_t numel = 1;
      for (const auto& d : ref["shape"]) numel *= d.get<uint64_t>();
      params += numel;
    }
    EXPECT_EQ(info["parameter_count"].get<uint64_t>(), params) << path;
  }
  EXPECT_GE(files, 40u);
}

TEST(CliFixtures, RecognisesSingleFileSD1) {
  GENVIS_REQUIRE_FIXTURES();
  const std::string path = test::fixtures_dir() + "/single_file/sd1_tiny_ldm.safetensors";
  auto r = test::run_genvis("info --json " + shell_quote(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["layout"], "sd-single-file");
  EXPECT_EQ(info["family"], "sd1");
  EXPECT_EQ(info["tensor_count"], 594);
  EXPECT_EQ(info["dtypes"]["F16"], 594);
  r = test::run_genvis("info " + shell_quote(path));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("layout:     sd-single-file"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("family:     sd1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tensors:    594"), std::string::npos) << r.out;
}

TEST(CliFixtures, ComponentFolder) {
  GENVIS_REQUIRE_FIXTURES();
  const auto r = test::run_genvis("info --json " + shell_quote(test::fixtures_dir() + "/unet_sd1"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["kind"], "diffusers-component");
  EXPECT_EQ(info["class_name"], "UNet2DConditionModel");
  bool found = false;
  for (const auto& f : info["files"])
    if (f["layout"] == "diffusers-unet") found = f["tensor_count"] == 302;
  EXPECT_TRUE(found) << r.out;
}

TEST(Cli, DiffusersPipelineFolder) {
  test::TempDir dir;
  fs::create_directories(dir.file("unet"));
  fs::create_directories(dir.file("vae"));
  test::write_bytes(dir.file("model_index.json"),
                    R"({"_class_name":"StableDiffusionPipeline","unet":["diffusers","UNet2DConditionModel"],)"
                    R"("vae":["diffusers","AutoencoderKL"],"text_encoder":["transformers","CLIPTextModel"]})");
  test::write_bytes(dir.file("unet/config.json"), R"({"_class_name":"UNet2DConditionModel"})");
  io::save_safetensors(dir.file("unet/diffusion_pytorch_model.safetensors"),
                       {{"conv_in.weight", at::zeros({8, 4, 3, 3})}, {"time_embedding.linear_1.weight", at::zeros({2, 2})},
                        {"down_blocks.0.resnets.0.conv1.weight", at::zeros({8, 8, 3, 3})}});
  test::write_bytes(dir.file("vae/config.json"), R"({"_class_name":"AutoencoderKL"})");
  const auto r = test::run_genvis("info --json " + dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["kind"], "diffusers-pipeline");
  EXPECT_EQ(info["components"]["unet"]["files"][0]["layout"], "diffusers-unet");
  EXPECT_EQ(info["components"]["unet"]["files"][0]["parameter_count"], 8 * 4 * 9 + 4 + 8 * 8 * 9);
  EXPECT_TRUE(info["components"]["vae"]["files"].empty());
  EXPECT_EQ(info["components"]["text_encoder"]["missing"], true);
}

TEST(Cli, ConvertCastsAndKeepsNames) {
  test::TempDir dir;
  const at::Tensor w = at::arange(12, at::kFloat).reshape({3, 4}) / 8;
  io::save_safetensors(dir.file("in.safetensors"), {{"w", w}, {"ids", at::arange(5, at::kLong)}}, {{"author", "me"}});
  auto r = test::run_genvis("convert " + dir.file("in.safetensors") + " " + dir.file("out.safetensors") + " --dtype bf16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = io::SafetensorsReader::open(dir.file("out.safetensors"));
  EXPECT_EQ(out->tensors().size(), 2u);
  EXPECT_EQ(out->load("w").scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(out->load("w").to(at::kFloat), w));  // multiples of 1/8 are exact in bf16
  EXPECT_EQ(out->load("ids").scalar_type(), at::kLong);
  EXPECT_EQ(out->metadata().at("author"), "me");
  EXPECT_EQ(out->metadata().at("format"), "pt");
  // Refuses to overwrite without --force, and refuses a non-safetensors output name.
  expect_one_line_error(test::run_genvis("convert " + dir.file("in.safetensors") + " " + dir.file("out.safetensors")), 2, "exists");
  r = test::run_genvis("convert --force " + dir.file("in.safetensors") + " " + dir.file("out.safetensors") + " --dtype f32");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  expect_one_line_error(test::run_genvis("convert " + dir.file("in.safetensors") + " " + dir.file("out.ckpt")), 2, ".safetensors");
  expect_one_line_error(test::run_genvis("convert " + dir.file("nope.ckpt") + " " + dir.file("x.safetensors")), 3, "nope.ckpt");
}

std::string checkpoint(const std::string& name) { return std::string(GENVIS_SOURCE_DIR) + "/tests/data/checkpoints/" + name; }

TEST(Cli, InfoAndConvertOfAPyTorchCheckpoint) {
  test::TempDir dir;
  auto r = test::run_genvis("info --json --tensors " + checkpoint("lightning.pt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["format"], "pytorch-zip");
  EXPECT_TRUE(info["metadata"].contains("global_step")) << r.out;

  // Convert to safetensors as f16: same names and shapes, values equal after the cast.
  r = test::run_genvis("convert " + checkpoint("state_dict.pt") + " " + dir.file("sd.safetensors") + " --dtype f16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto in = io::open_weights(checkpoint("state_dict.pt"));
  auto out = io::open_weights(dir.file("sd.safetensors"));
  ASSERT_EQ(out->tensors().size(), in->tensors().size());
  for (const auto& t : in->tensors()) {
    const at::Tensor a = in->load(t.name), b = out->load(t.name);
    EXPECT_EQ(a.sizes(), b.sizes()) << t.name;
    if (at::isFloatingType(a.scalar_type())) {
      EXPECT_EQ(b.scalar_type(), at::kHalf) << t.name;
      EXPECT_TRUE(at::equal(a.to(at::kHalf), b)) << t.name;
    } else {
      EXPECT_EQ(a.scalar_type(), b.scalar_type()) << t.name;
      EXPECT_TRUE(at::equal(a, b)) << t.name;
    }
  }
}

TEST(Cli, HostileCheckpointIsRefusedAndNothingRuns) {
  test::TempDir dir;
  const std::string marker = dir.file("pwned");
  // protocol 2: GLOBAL os system, the command, TUPLE1, REDUCE, STOP.
  std::string pickle = std::string("\x80\x02") + "cos\nsystem\nq" + std::string(1, '\0') + "X";
  const std::string cmd = "touch " + marker;
  const uint32_t n = static_cast<uint32_t>(cmd.size());
  pickle += std::string(reinterpret_cast<const char*>(&n), 4) + cmd + "\x85R.";
  // A zip checkpoint holding it as archive/data.pkl, as torch.save lays it out.
  const std::string path = dir.file("evil.ckpt");
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  zip_source_t* src = zip_source_buffer(z, pickle.data(), pickle.size(), 0);
  ASSERT_GE(zip_file_add(z, "archive/data.pkl", src, ZIP_FL_OVERWRITE), 0);
  ASSERT_EQ(zip_close(z), 0);
  const auto r = test::run_genvis("info " + path);
  expect_one_line_error(r, 3, "os.system");
  EXPECT_FALSE(fs::exists(marker));
}

TEST(Cli, InfoPrintsPngParametersAfterRoundTrip) {
  test::TempDir dir;
  io::GenerationParameters p;
  p.prompt = "a red apple, (studio light:1.2)";
  p.negative_prompt = "blurry";
  p.steps = 20;
  p.sampler = "Euler a";
  p.cfg_scale = 7.5;
  p.seed = 1234;
  p.width = 64;
  p.height = 48;
  p.model = "genvis-emoji";
  p.model_hash = "0123456789";
  io::Image img = io::Image::blank(64, 48, 3);
  img.at(3, 2, 1) = 200;
  io::write_png(dir.file("a.png"), img, {{io::kInfotextKey, io::format_infotext(p)}});

  auto r = test::run_genvis("info --json " + dir.file("a.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["kind"], "image");
  EXPECT_EQ(info["width"], 64);
  EXPECT_EQ(info["height"], 48);
  const auto& params = info["parameters"];
  EXPECT_EQ(params["prompt"], p.prompt);
  EXPECT_EQ(params["negative_prompt"], "blurry");
  EXPECT_EQ(params["steps"], 20);
  EXPECT_EQ(params["sampler"], "Euler a");
  EXPECT_EQ(params["cfg_scale"], 7.5);
  EXPECT_EQ(params["seed"], 1234);
  EXPECT_EQ(params["model_hash"], "0123456789");
  r = test::run_genvis("info " + dir.file("a.png"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("prompt: a red apple, (studio light:1.2)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("seed: 1234"), std::string::npos) << r.out;

  // A corrupt PNG is a load error naming the file.
  std::string bytes = test::read_bytes(dir.file("a.png"));
  test::write_bytes(dir.file("cut.png"), bytes.substr(0, bytes.size() / 2));
  expect_one_line_error(test::run_genvis("info " + dir.file("cut.png")), 3, "cut.png");
}

}  // namespace
}  // namespace genvis
