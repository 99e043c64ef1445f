#include "core/device.h"
#include "core/error.h"
#include "core/file.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/threads.h"
#include "support/test_support.h"

#include <filesystem>
#include <torch/cuda.h>
#include <unistd.h>

namespace genvis {
namespace {

TEST(Errors, KindsMapToExitCodes) {
  EXPECT_EQ(RuntimeError("x").exit_code(), 1);
  EXPECT_EQ(UsageError("x").exit_code(), 2);
  const LoadError e("model.safetensors", "conv_in.weight", "wrong shape");
  EXPECT_EQ(e.exit_code(), 3);
  EXPECT_STREQ(e.what(), "model.safetensors: 'conv_in.weight': wrong shape");
  EXPECT_EQ(e.file(), "model.safetensors");
  EXPECT_EQ(e.key(), "conv_in.weight");
}

TEST(Device, ParsesNamesAndRejectsOthers) {
  EXPECT_FALSE(parse_device("auto").has_value());
  EXPECT_TRUE(parse_device("cpu")->is_cpu());
  EXPECT_EQ(parse_device("cuda")->index(), 0);
  EXPECT_EQ(parse_device("CUDA:3")->index(), 3);
  EXPECT_THROW(parse_device("tpu"), UsageError);
  EXPECT_THROW(parse_device("cuda:"), UsageError);
  EXPECT_THROW(parse_device("cuda:-1"), UsageError);
  EXPECT_EQ(*parse_dtype("bf16"), c10::kBFloat16);
  EXPECT_EQ(*parse_dtype("fp16"), c10::kHalf);
  EXPECT_EQ(*parse_dtype("float32"), c10::kFloat);
  EXPECT_FALSE(parse_dtype("auto").has_value());
  EXPECT_THROW(parse_dtype("int4"), UsageError);
  EXPECT_EQ(dtype_name(c10::kBFloat16), "bf16");
}

TEST(Device, PolicyDefaultsAndChecks) {
  const ComputePolicy cpu = resolve_policy("cpu", "auto");
  EXPECT_TRUE(cpu.device.is_cpu());
  EXPECT_EQ(cpu.dtype, c10::kFloat);
  EXPECT_EQ(resolve_policy("cpu", "bf16").dtype, c10::kBFloat16);
  if (!torch::cuda::is_available()) {
    EXPECT_TRUE(resolve_policy("auto", "auto").device.is_cpu());
    try {
      resolve_policy("cuda", "auto");
      FAIL() << "cuda accepted without a GPU";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos);
    }
  } else {
    EXPECT_TRUE(resolve_policy("auto", "auto").device.is_cuda());
  }
}

TEST(Rng, SameSeedSameNoiseDifferentSeedDifferent) {
  Rng a(42), b(42), c(43);
  const at::Tensor x = a.randn({2, 4, 8, 8});
  const at::Tensor y = b.randn({2, 4, 8, 8});
  EXPECT_TRUE(at::equal(x, y));
  EXPECT_FALSE(at::equal(x, c.randn({2, 4, 8, 8})));
  // Statistics of a standard normal.
  const at::Tensor big = a.randn({100000});
  EXPECT_NEAR(big.mean().item<double>(), 0.0, 0.02);
  EXPECT_NEAR(big.std().item<double>(), 1.0, 0.02);
  // Dtype conversion happens after drawing in f32: same values, rounded.
  Rng d(42);
  EXPECT_TRUE(at::equal(d.randn({2, 4, 8, 8}, at::TensorOptions().dtype(at::kBFloat16)), x.to(at::kBFloat16)));
}

TEST(Rng, StateRoundTripContinuesTheStream) {
  Rng a(7);
  a.randn({10});
  const auto state = a.state();
  const at::Tensor next = a.randn({16});
  Rng b(999);
  b.set_state(state);
  EXPECT_TRUE(at::equal(b.randn({16}), next));
  EXPECT_THROW(b.set_state({1, 2, 3}), LoadError);
  const int64_t v = a.randint(3, 5);
  EXPECT_TRUE(v == 3 || v == 4);
  EXPECT_THROW(a.randint(5, 5), UsageError);
}

TEST(Progress, RendersCountsRateAndEta) {
  Progress p("sample", 10, /*visible=*/false);
  EXPECT_EQ(p.eta_seconds(), -1);
  p.update(5);
  EXPECT_EQ(p.step(), 5);
  const std::string line = p.render(80);
  EXPECT_NE(line.find("sample 5/10 ["), std::string::npos) << line;
  EXPECT_NE(line.find("ETA"), std::string::npos);
  EXPECT_EQ(line.size(), 80u) << line;
  EXPECT_GE(p.eta_seconds(), 0);
  p.update(50);  // clamped to the total
  EXPECT_EQ(p.step(), 10);
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(61), "1:01");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(-1), "?");
}

TEST(Progress, QuietOrNotATerminalDrawsNothing) {
  set_progress_quiet(true);
  EXPECT_FALSE(progress_visible());
  set_progress_quiet(false);
  // ctest runs us with stderr redirected: not a terminal.
  if (!::isatty(2)) {
    EXPECT_FALSE(progress_visible());
  }
}

TEST(Log, LevelsParse) {
  EXPECT_EQ(parse_log_level("debug"), LogLevel::Debug);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::Warn);
  EXPECT_THROW(parse_log_level("loud"), UsageError);
  const LogLevel before = log_level();
  set_log_level(LogLevel::Error);
  EXPECT_EQ(log_level(), LogLevel::Error);
  set_log_level(before);
}

TEST(Threads, RejectsNonsense) {
  EXPECT_THROW(set_num_threads(-1), UsageError);
  EXPECT_THROW(set_num_threads(100000), UsageError);
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
}

TEST(Files, AtomicFileReplacesOnlyOnCommit) {
  test::TempDir dir;
  const std::string path = dir.file("f.txt");
  write_file_atomic(path, "one");
  EXPECT_EQ(test::read_bytes(path), "one");
  {
    AtomicFile f(path);
    f.write("two, but abandoned");
    EXPECT_TRUE(file_exists(f.temp_path()));
  }
  EXPECT_EQ(test::read_bytes(path), "one");
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
  EXPECT_EQ(n, 1u);
  write_file_atomic(path, "three");
  EXPECT_EQ(test::read_bytes(path), "three");
}

TEST(Files, ReadLimitsAndMapping) {
  test::TempDir dir;
  test::write_bytes(dir.file("x"), "hello");
  EXPECT_EQ(read_text_file(dir.file("x"), 5), "hello");
  EXPECT_THROW(read_text_file(dir.file("x"), 4), LoadError);
  EXPECT_THROW(read_file(dir.file("missing"), 10), LoadError);
  EXPECT_THROW(MappedFile::open(dir.path()), LoadError);
  const auto m = MappedFile::open(dir.file("x"));
  ASSERT_EQ(m->size(), 5u);
  EXPECT_EQ(m->data()[4], 'o');
  test::write_bytes(dir.file("empty"), "");
  EXPECT_EQ(MappedFile::open(dir.file("empty"))->size(), 0u);
}

TEST(Hash, Sha256MatchesKnownVectors) {
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  test::TempDir dir;
  test::write_bytes(dir.file("e"), "");
  EXPECT_EQ(sha256_file_hex(dir.file("e")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(model_hash(dir.file("e")), "e3b0c44298");
}

}  // namespace
}  // namespace genvis
