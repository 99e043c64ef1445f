// `genvis generate` without --model: the built-in model (found through GENVIS_DEFAULT_MODEL here,
// a diffusers folder assembled from the fixture components) and the model's native image size.
#include "io/image.h"
#include "support/test_support.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace genvis {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string genvis_cli() { return std::string(GENVIS_BINARY_DIR) + "/genvis"; }

// A diffusers folder whose components link to the fixture models.
void make_model_folder(const std::string& dir) {
  const std::string f = test::fixtures_dir();
  fs::create_directory_symlink(f + "/clip_l", dir + "/text_encoder");
  fs::create_directory_symlink(f + "/unet_sd1", dir + "/unet");
  fs::create_directory_symlink(f + "/vae", dir + "/vae");
  std::ofstream(dir + "/model_index.json") << R"({"_class_name": "StableDiffusionPipeline"})";
}

int64_t native_size() {
  const std::string f = test::fixtures_dir();
  const json unet = json::parse(std::ifstream(f + "/unet_sd1/config.json"));
  const json vae = json::parse(std::ifstream(f + "/vae/config.json"));
  return unet["sample_size"].get<int64_t>() << (vae["block_out_channels"].size() - 1);
}

TEST(DefaultModelCli, GenerateWithoutModelUsesTheBuiltInOneAtItsNativeSize) {
  GENVIS_REQUIRE_FIXTURES();
  test::TempDir dir;
  fs::create_directory(dir.file("model"));
  make_model_folder(dir.file("model"));
  const std::string env = "GENVIS_DEFAULT_MODEL=" + test::shell_quote(dir.file("model")) + " ";
  const std::string args = " --quiet generate -p 'a red apple' --steps 2 --vocab " + test::shell_quote(test::clip_vocab());
  auto r = test::run_command(env + genvis_cli() + args + " -o " + dir.file("a.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Image a = io::read_png(dir.file("a.png"));
  EXPECT_EQ(a.width, native_size());
  EXPECT_EQ(a.height, native_size());
  std::string parameters;
  for (const auto& [key, text] : io::read_png_text(dir.file("a.png")))
    if (key == "parameters") parameters = text;
  EXPECT_NE(parameters.find("Model: model"), std::string::npos) << parameters;
  // One size given: a square of it.
  r = test::run_command(env + genvis_cli() + args + " --width 24 -o " + dir.file("b.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Image b = io::read_png(dir.file("b.png"));
  EXPECT_EQ(b.width, 24);
  EXPECT_EQ(b.height, 24);
  r = test::run_command(env + genvis_cli() + args + " --height 16 -o " + dir.file("c.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(io::read_png(dir.file("c.png")).width, 16);
}

TEST(DefaultModelCli, AMissingBuiltInModelIsAClearUsageError) {
  test::TempDir dir;
  const auto r = test::run_command("GENVIS_DEFAULT_MODEL=" + dir.file("nowhere") + " " + genvis_cli() +
                                   " generate -p x --steps 2 -o " + dir.file("x.png"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("genvis-emoji-32"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dir.file("nowhere")), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--model"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("x.png")));
}

}  // namespace
}  // namespace genvis
