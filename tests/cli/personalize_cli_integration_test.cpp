// The personalisation commands end to end on the shipped default model and examples/red-star:
// `genvis train lora` / `textual-inversion` for a few steps, then `genvis generate` with the
// results (--lora FILE:W, <lora:NAME:W> with --lora-dir, --embeddings-dir), and bad input
// answered with one error line and the documented exit code.
#include "io/image.h"
#include "io/infotext.h"
#include "support/test_support.h"

#include <algorithm>
#include <filesystem>

namespace genvis {
namespace {

namespace fs = std::filesystem;

std::string cli() { return test::shell_quote(GENVIS_CLI) + " --quiet --threads 1 "; }
std::string src(const std::string& rel) { return test::shell_quote((fs::path(GENVIS_SOURCE_DIR) / rel).string()); }

std::string train_args(const std::string& out) {
  return " --model " + src("models/genvis-emoji-32") + " --instance-dir " + src("examples/red-star") +
         " --steps 4 --sample-steps 2 --out " + test::shell_quote(out);
}

TEST(PersonalizeCli, LoRATrainedThenUsedByFileAndByPromptTag) {
  test::TempDir dir;
  auto r = test::run_command(cli() + "train lora --instance-prompt 'a sks star' --class-prompt 'a star' "
                                     "--num-class-images 2 --output-name sks-star" +
                             train_args(dir.file("lora")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, dir.file("lora") + "/sks-star.safetensors\n");
  const std::string gen = cli() + "generate --model " + src("models/genvis-emoji-32") + " --steps 2 --seed 1 ";
  r = test::run_command(gen + "-p 'a sks star' --lora " + test::shell_quote(dir.file("lora/sks-star.safetensors") + ":0.8") +
                        " -o " + test::shell_quote(dir.file("a.png")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run_command(gen + "-p 'a sks star <lora:sks-star:0.5>' --lora-dir " + test::shell_quote(dir.file("lora")) +
                        " --lora-mode on-the-fly -o " + test::shell_quote(dir.file("b.png")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string text;
  for (const auto& [key, value] : io::read_png_text(dir.file("b.png")))
    if (key == io::kInfotextKey) text = value;
  const auto info = io::parse_infotext(text);
  EXPECT_EQ(info.prompt, "a sks star <lora:sks-star:0.5>");  // written as given, as A1111 does
  // The tag's strength changes the image: 0.5 vs no LoRA at all.
  r = test::run_command(gen + "-p 'a sks star' -o " + test::shell_quote(dir.file("c.png")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(io::read_png(dir.file("b.png")).pixels, io::read_png(dir.file("c.png")).pixels);
  // A missing tag target is named.
  r = test::run_command(gen + "-p 'x <lora:nope>' --lora-dir " + test::shell_quote(dir.file("lora")) + " -o " +
                        test::shell_quote(dir.file("d.png")));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("no LoRA named 'nope' (available: sks-star)"), std::string::npos) << r.err;
}

TEST(PersonalizeCli, TextualInversionTrainedThenUsedByName) {
  test::TempDir dir;
  auto r = test::run_command(cli() + "train textual-inversion --instance-prompt 'a sks star' --placeholder sks "
                                     "--initializer star" +
                             train_args(dir.file("ti")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir.file("ti/sks.safetensors")));
  fs::create_directory(dir.file("emb"));
  fs::copy_file(dir.file("ti/sks.safetensors"), dir.file("emb/sks.safetensors"));
  const std::string gen = cli() + "generate --model " + src("models/genvis-emoji-32") + " --steps 2 --seed 1 -p 'a sks star' ";
  r = test::run_command(gen + "--embeddings-dir " + test::shell_quote(dir.file("emb")) + " -o " + test::shell_quote(dir.file("a.png")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run_command(gen + "-o " + test::shell_quote(dir.file("b.png")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(io::read_png(dir.file("a.png")).pixels, io::read_png(dir.file("b.png")).pixels);
}

TEST(PersonalizeCli, BadInputIsOneClearLine) {
  test::TempDir dir;
  test::write_bytes(dir.file("junk.safetensors"), "not a LoRA");
  auto r = test::run_command(cli() + "generate --model " + src("models/genvis-emoji-32") + " -p x --steps 1 --lora " +
                             test::shell_quote(dir.file("junk.safetensors")) + " -o " + test::shell_quote(dir.file("a.png")));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("a.png")));
  r = test::run_command(cli() + "train textual-inversion --instance-prompt 'a star' --placeholder sks --initializer star" +
                        train_args(dir.file("ti")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("must contain the placeholder"), std::string::npos) << r.err;
  r = test::run_command(cli() + "train lora --instance-prompt 'a sks star' --model " + src("models/genvis-emoji-32") +
                        " --instance-dir " + test::shell_quote(dir.file("nowhere")) + " --out " + test::shell_quote(dir.file("x")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is not a folder"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace genvis
