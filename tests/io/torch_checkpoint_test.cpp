#include "io/torch_checkpoint.h"

#include "core/error.h"
#include "support/test_support.h"
#include "support/torch_checkpoint_writer.h"

#include <filesystem>

namespace genvis::io {
namespace {

using std::string_literals::operator""s;

std::string checkpoints_dir() { return std::string(GENVIS_SOURCE_DIR) + "/tests/data/checkpoints"; }

// ---- Building hostile files: the pieces in support/torch_checkpoint_writer.h ------------------

using test::Entry;
using test::FakeTensor;
using test::floats;
using test::global;
using test::le;
using test::state_dict_pickle;
using test::str;
using test::write_zip;

// A two-tensor checkpoint: "w" [2, 2] F32 over storage "0", "b" [2] F32 over storage "1".
std::vector<Entry> small_checkpoint() {
  const std::vector<FakeTensor> tensors{{"w", "FloatStorage", "0", 4, 0, {2, 2}, {2, 1}},
                                        {"b", "FloatStorage", "1", 2, 0, {2}, {1}}};
  return {{"archive/data.pkl", state_dict_pickle(tensors)},
          {"archive/data/0", floats({1, 2, 3, 4})},
          {"archive/data/1", floats({-1, -2})},
          {"archive/version", "3\n"}};
}

// Overwrites the declared sizes of `name` in its local header and central directory record.
void patch_sizes(std::string& zip, const std::string& name, std::optional<uint32_t> compressed, uint32_t size) {
  for (const auto& [signature, comp_at, size_at, name_at] :
       {std::tuple{"PK\x03\x04"s, 18, 22, 30}, std::tuple{"PK\x01\x02"s, 20, 24, 46}}) {
    for (size_t at = zip.find(signature); at != std::string::npos; at = zip.find(signature, at + 1)) {
      if (zip.compare(at + name_at, name.size(), name) != 0) continue;
      if (compressed) zip.replace(at + comp_at, 4, le(*compressed, 4));
      zip.replace(at + size_at, 4, le(size, 4));
    }
  }
}

std::string open_error(const std::string& path) {
  try {
    open_torch_checkpoint(path);
  } catch (const LoadError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_OPEN_ERROR(path, fragment)                                         \
  do {                                                                            \
    const std::string message_ = open_error(path);                                \
    EXPECT_NE(message_.find(fragment), std::string::npos) << "message: " << message_; \
  } while (0)

std::vector<std::string> names(const WeightReader& w) {
  std::vector<std::string> out;
  for (const auto& t : w.tensors()) out.push_back(t.name);
  return out;
}

at::Tensor values(std::vector<double> v, at::ScalarType type) {
  return at::tensor(v, at::kDouble).to(type);
}

// ---- Real layouts -----------------------------------------------------------------------------

TEST(TorchCheckpoint, StateDictDtypesShapesAndValues) {
  const std::string path = checkpoints_dir() + "/state_dict.pt";
  auto w = open_torch_checkpoint(path);
  EXPECT_EQ(w->format(), "pytorch-zip");
  EXPECT_EQ(w->path(), path);
  EXPECT_TRUE(w->metadata().empty());
  EXPECT_EQ(names(*w), (std::vector<std::string>{"conv.weight", "conv.bias", "norm.weight", "norm.num_batches_tracked",
                                                 "shared.full", "shared.t", "shared.col", "slice", "ids", "mask"}));
  const TensorInfo& conv = w->tensors()[0];
  EXPECT_EQ(conv.dtype, DType::F32);
  EXPECT_EQ(conv.shape, (std::vector<int64_t>{2, 1, 2, 2}));
  EXPECT_EQ(conv.nbytes, 32u);
  EXPECT_EQ(conv.file, path);
  EXPECT_EQ(w->tensors()[1].dtype, DType::F16);
  EXPECT_EQ(w->tensors()[1].nbytes, 4u);
  EXPECT_EQ(w->tensors()[2].dtype, DType::BF16);
  EXPECT_EQ(w->tensors()[3].dtype, DType::I64);
  EXPECT_TRUE(w->tensors()[3].shape.empty());
  EXPECT_EQ(w->tensors()[6].shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(w->tensors()[6].nbytes, 12u);
  EXPECT_EQ(w->tensors()[9].dtype, DType::BOOL);

  const at::Tensor weight = w->load("conv.weight");
  EXPECT_EQ(weight.scalar_type(), at::kFloat);
  EXPECT_EQ(weight.sizes(), (std::vector<int64_t>{2, 1, 2, 2}));
  EXPECT_TRUE(weight.equal(values({-1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5}, at::kFloat).reshape({2, 1, 2, 2})));
  EXPECT_TRUE(w->load("conv.bias").equal(values({1.5, -2.25}, at::kHalf)));
  EXPECT_TRUE(w->load("norm.weight").equal(values({1.0, -0.5, 3.0, 0.15625}, at::kBFloat16)));
  const at::Tensor steps = w->load("norm.num_batches_tracked");
  EXPECT_EQ(steps.dim(), 0);
  EXPECT_EQ(steps.item<int64_t>(), 470000);
  EXPECT_TRUE(w->load("ids").equal(at::tensor(std::vector<int64_t>{3, -7, int64_t(1) << 40})));
  EXPECT_TRUE(w->load("mask").equal(at::tensor(std::vector<int64_t>{1, 0, 1}).to(at::kBool)));
}

TEST(TorchCheckpoint, ViewsOfASharedStorage) {
  auto w = open_torch_checkpoint(checkpoints_dir() + "/state_dict.pt");
  const at::Tensor arange = at::arange(12, at::kFloat);
  at::Tensor full = w->load("shared.full");
  EXPECT_TRUE(full.equal(arange.reshape({3, 4})));
  const at::Tensor t = w->load("shared.t");
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_TRUE(t.equal(arange.reshape({3, 4}).t()));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_TRUE(w->load("shared.col").equal(values({1, 5, 9}, at::kFloat)));
  EXPECT_TRUE(w->load("slice").equal(values({12, 13}, at::kFloat)));
  // Tensors never alias each other or the cached storage: in-place changes stay local.
  full.fill_(-1);
  EXPECT_TRUE(w->load("shared.t").equal(arange.reshape({3, 4}).t()));
  EXPECT_TRUE(w->load("shared.full").equal(arange.reshape({3, 4})));
  // Loading in any order (cache misses) gives the same values.
  EXPECT_TRUE(w->load("shared.col").equal(values({1, 5, 9}, at::kFloat)));
  EXPECT_TRUE(w->load("conv.bias").equal(values({1.5, -2.25}, at::kHalf)));
  EXPECT_TRUE(w->load("shared.col").equal(values({1, 5, 9}, at::kFloat)));
}

TEST(TorchCheckpoint, LightningCheckpointUsesItsStateDict) {
  auto w = open_torch_checkpoint(checkpoints_dir() + "/lightning.pt");
  EXPECT_EQ(w->format(), "pytorch-zip");
  EXPECT_EQ(names(*w), (std::vector<std::string>{"model.diffusion_model.out.2.weight",
                                                 "first_stage_model.decoder.conv_out.bias",
                                                 "cond_stage_model.transformer.text_model.embeddings.position_ids"}));
  const std::map<std::string, std::string> expected{{"epoch", "6"},
                                                    {"global_step", "470000"},
                                                    {"pytorch-lightning_version", "1.4.2"},
                                                    {"learning_rate", "0.0001"},
                                                    {"ema", "True"}};
  EXPECT_EQ(w->metadata(), expected);
  EXPECT_TRUE(w->load("model.diffusion_model.out.2.weight").equal(values({0.25, -1, 2, 4.5}, at::kHalf).reshape({2, 2})));
  EXPECT_TRUE(w->load("first_stage_model.decoder.conv_out.bias").equal(values({0.1, 0.2, 0.3}, at::kFloat)));
  EXPECT_TRUE(w->load("cond_stage_model.transformer.text_model.embeddings.position_ids")
                  .equal(at::arange(5, at::kLong).reshape({1, 5})));
}

TEST(TorchCheckpoint, NestedProtocol4Checkpoint) {
  auto w = open_torch_checkpoint(checkpoints_dir() + "/nested.pt");
  EXPECT_EQ(names(*w), (std::vector<std::string>{"model.encoder.w", "blocks.0", "blocks.1.b", "3"}));
  const std::map<std::string, std::string> expected{{"step", "5"}, {"name", "emb"}};
  EXPECT_EQ(w->metadata(), expected);
  EXPECT_TRUE(w->load("model.encoder.w").equal(values({1, 2}, at::kFloat)));
  EXPECT_TRUE(w->load("blocks.0").equal(values({0.5}, at::kDouble)));
  EXPECT_TRUE(w->load("blocks.1.b").equal(values({-3, 4}, at::kInt)));
  const at::Tensor scalar = w->load("3");
  EXPECT_EQ(scalar.scalar_type(), at::kHalf);
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<float>(), 8.0f);
}

TEST(TorchCheckpoint, LegacyFormat) {
  auto w = open_torch_checkpoint(checkpoints_dir() + "/legacy.pt");
  EXPECT_EQ(w->format(), "pytorch-legacy");
  EXPECT_EQ(names(*w), (std::vector<std::string>{"linear.weight", "linear.bias", "emb", "count"}));
  EXPECT_TRUE(w->load("linear.weight").equal(values({1, 2, 3, 4, 5, 6}, at::kFloat).reshape({2, 3})));
  EXPECT_TRUE(w->load("linear.bias").equal(values({-1, 1}, at::kFloat)));
  EXPECT_TRUE(w->load("emb").equal(values({1.5, 3.5}, at::kHalf)));
  EXPECT_EQ(w->load("count").item<int64_t>(), 42);
  EXPECT_EQ(w->tensors()[2].nbytes, 4u);
}

TEST(TorchCheckpoint, SniffingNeedsOnlyTheFirst16Bytes) {
  for (const char* name : {"state_dict.pt", "lightning.pt", "nested.pt"}) {
    const std::string head = test::read_bytes(checkpoints_dir() + "/" + name).substr(0, 16);
    EXPECT_TRUE(is_zip_file(reinterpret_cast<const uint8_t*>(head.data()), head.size())) << name;
    EXPECT_FALSE(is_legacy_torch_file(reinterpret_cast<const uint8_t*>(head.data()), head.size())) << name;
  }
  const std::string head = test::read_bytes(checkpoints_dir() + "/legacy.pt").substr(0, 16);
  EXPECT_TRUE(is_legacy_torch_file(reinterpret_cast<const uint8_t*>(head.data()), head.size()));
  EXPECT_FALSE(is_zip_file(reinterpret_cast<const uint8_t*>(head.data()), head.size()));
  EXPECT_FALSE(is_zip_file(reinterpret_cast<const uint8_t*>("PK"), 2));
}

TEST(TorchCheckpoint, DeflatedEntriesAndAnyArchiveFolder) {
  test::TempDir dir;
  auto entries = small_checkpoint();
  for (auto& e : entries) {
    e.name.replace(0, 7, "my_model.v2");
    e.deflate = true;
  }
  write_zip(dir.file("c.ckpt"), entries);
  auto w = open_torch_checkpoint(dir.file("c.ckpt"));
  EXPECT_EQ(names(*w), (std::vector<std::string>{"w", "b"}));
  EXPECT_TRUE(w->load("w").equal(values({1, 2, 3, 4}, at::kFloat).reshape({2, 2})));
  EXPECT_TRUE(w->load("b").equal(values({-1, -2}, at::kFloat)));
  EXPECT_TRUE(w->metadata().empty());
}

TEST(TorchCheckpoint, UnknownTensorNameIsNamed) {
  auto w = open_torch_checkpoint(checkpoints_dir() + "/state_dict.pt");
  try {
    w->load("conv.weights");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.key(), "conv.weights");
    EXPECT_NE(std::string(e.what()).find("no such tensor"), std::string::npos);
  }
}

// ---- Hostile and broken files -----------------------------------------------------------------

TEST(TorchCheckpoint, ForbiddenGlobalInDataPklIsNamedAndNothingRuns) {
  test::TempDir dir;
  const std::string marker = dir.file("marker");
  const std::string evil = "\x80\x02}(" + str("w") + global("posix", "system") + "(" + str("touch " + marker) + "tRu.";
  write_zip(dir.file("evil.ckpt"), {{"archive/data.pkl", evil}, {"archive/version", "3\n"}});
  EXPECT_OPEN_ERROR(dir.file("evil.ckpt"), "forbidden global 'posix.system' in pickle");
  const std::string evil4 = "\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93(" + str("__import__('os').system('touch " +
                            marker + "')") + "tR.";
  write_zip(dir.file("evil4.ckpt"), {{"archive/data.pkl", evil4}});
  EXPECT_OPEN_ERROR(dir.file("evil4.ckpt"), "forbidden global 'builtins.eval' in pickle");
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(TorchCheckpoint, ZipBombIsRefusedBeforeAllocating) {
  test::TempDir dir;
  // 4 GiB declared by the pickle and by the entry, from a few hundred compressed bytes.
  const int64_t numel = int64_t(0xF0000000) / 4;
  const std::vector<FakeTensor> tensors{{"w", "FloatStorage", "0", numel, 0, {numel}, {1}}};
  write_zip(dir.file("bomb.ckpt"), {{"archive/data.pkl", state_dict_pickle(tensors)},
                                    {"archive/data/0", std::string(1 << 16, '\0'), true}});
  std::string bytes = test::read_bytes(dir.file("bomb.ckpt"));
  patch_sizes(bytes, "archive/data/0", std::nullopt, 0xF0000000u);
  test::write_bytes(dir.file("bomb.ckpt"), bytes);
  EXPECT_OPEN_ERROR(dir.file("bomb.ckpt"), "ratio above 1000:1");

  // A stored entry that claims more bytes than the whole file.
  write_zip(dir.file("big.ckpt"), {{"archive/data.pkl", state_dict_pickle(tensors)},
                                   {"archive/data/0", std::string(64, '\0')}});
  bytes = test::read_bytes(dir.file("big.ckpt"));
  patch_sizes(bytes, "archive/data/0", 0xF0000000u, 0xF0000000u);
  test::write_bytes(dir.file("big.ckpt"), bytes);
  EXPECT_OPEN_ERROR(dir.file("big.ckpt"), "compressed bytes in a file of");

  // data.pkl itself, as a bomb.
  write_zip(dir.file("pkl.ckpt"), {{"archive/data.pkl", std::string(1 << 16, '\0'), true}});
  bytes = test::read_bytes(dir.file("pkl.ckpt"));
  patch_sizes(bytes, "archive/data.pkl", std::nullopt, 0xF0000000u);
  test::write_bytes(dir.file("pkl.ckpt"), bytes);
  EXPECT_OPEN_ERROR(dir.file("pkl.ckpt"), "ratio above 1000:1");
}

TEST(TorchCheckpoint, StorageEntryShorterThanThePickleSays) {
  test::TempDir dir;
  auto entries = small_checkpoint();
  entries[1].data = floats({1, 2, 3});  // storage "0" should hold 4 floats
  write_zip(dir.file("short.ckpt"), entries);
  EXPECT_OPEN_ERROR(dir.file("short.ckpt"),
                    "'w': storage entry 'archive/data/0' holds 12 bytes but the pickle says 4 F32 elements (16 bytes)");
}

TEST(TorchCheckpoint, ViewOutsideItsStorage) {
  test::TempDir dir;
  const std::vector<FakeTensor> tensors{{"w", "FloatStorage", "0", 4, 1, {2, 2}, {2, 1}}};
  write_zip(dir.file("view.ckpt"), {{"archive/data.pkl", state_dict_pickle(tensors)}, {"archive/data/0", floats({1, 2, 3, 4})}});
  EXPECT_OPEN_ERROR(dir.file("view.ckpt"), "'w': view [2, 2] with stride [2, 1] at offset 1 needs 5 elements");
}

TEST(TorchCheckpoint, MissingEntriesAndWrongFiles) {
  test::TempDir dir;
  auto entries = small_checkpoint();
  entries.erase(entries.begin());
  write_zip(dir.file("nopkl.ckpt"), entries);
  EXPECT_OPEN_ERROR(dir.file("nopkl.ckpt"), "zip archive has no data.pkl");

  entries = small_checkpoint();
  entries.erase(entries.begin() + 2);
  write_zip(dir.file("nodata.ckpt"), entries);
  EXPECT_OPEN_ERROR(dir.file("nodata.ckpt"), "'b': storage entry 'archive/data/1' is missing");

  entries = small_checkpoint();
  entries.push_back({"other/data.pkl", entries[0].data});
  write_zip(dir.file("two.ckpt"), entries);
  EXPECT_OPEN_ERROR(dir.file("two.ckpt"), "several data.pkl entries");

  entries = small_checkpoint();
  entries.push_back({"archive/byteorder", "big"});
  write_zip(dir.file("big_endian.ckpt"), entries);
  EXPECT_OPEN_ERROR(dir.file("big_endian.ckpt"), "byte order 'big' is not supported");

  std::string random(4096, '\0');
  for (size_t i = 0; i < random.size(); ++i) random[i] = static_cast<char>((i * 2654435761u) >> 13);
  test::write_bytes(dir.file("random.bin"), random);
  EXPECT_OPEN_ERROR(dir.file("random.bin"), "not a PyTorch checkpoint (neither a zip archive nor a legacy");
  test::write_bytes(dir.file("fake.zip"), "PK\x03\x04" + random);
  EXPECT_OPEN_ERROR(dir.file("fake.zip"), "not a readable zip archive");
  test::write_bytes(dir.file("empty.pt"), "");
  EXPECT_OPEN_ERROR(dir.file("empty.pt"), "not a PyTorch checkpoint");
  EXPECT_OPEN_ERROR(dir.file("absent.pt"), "cannot open");
}

TEST(TorchCheckpoint, CorruptStorageDataFailsTheCRCCheck) {
  test::TempDir dir;
  write_zip(dir.file("ok.ckpt"), small_checkpoint());
  std::string bytes = test::read_bytes(dir.file("ok.ckpt"));
  const std::string data = floats({1, 2, 3, 4});
  const size_t at = bytes.find(data);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] ^= 0x40;
  test::write_bytes(dir.file("bad.ckpt"), bytes);
  auto w = open_torch_checkpoint(dir.file("bad.ckpt"));
  EXPECT_TRUE(w->load("b").equal(values({-1, -2}, at::kFloat)));
  try {
    w->load("w");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.key(), "w");
    EXPECT_NE(std::string(e.what()).find("storage entry 'archive/data/0'"), std::string::npos) << e.what();
  }
}

// Cut at every length, a checkpoint never crashes: it fails to open, or (never, here) loads.
TEST(TorchCheckpoint, EveryTruncationIsALoadError) {
  test::TempDir dir;
  for (const char* name : {"state_dict.pt", "legacy.pt"}) {
    const std::string bytes = test::read_bytes(checkpoints_dir() + "/" + name);
    for (size_t n = 0; n < bytes.size(); ++n) {
      test::write_bytes(dir.file("cut.pt"), bytes.substr(0, n));
      EXPECT_NE(open_error(dir.file("cut.pt")), "") << name << " cut at " << n;
    }
  }
}

TEST(TorchCheckpoint, LegacyStreamErrors) {
  test::TempDir dir;
  std::string bytes = test::read_bytes(checkpoints_dir() + "/legacy.pt");
  // The element count in front of the first storage ("94011235560528", 6 floats).
  const size_t at = bytes.find(le(6, 8) + floats({1, 2, 3, 4, 5, 6}));
  ASSERT_NE(at, std::string::npos);
  std::string wrong = bytes;
  wrong.replace(at, 8, le(7, 8));
  test::write_bytes(dir.file("count.pt"), wrong);
  EXPECT_OPEN_ERROR(dir.file("count.pt"), "storage '94011235560528' holds 7 elements but the pickle says 6");
  wrong = bytes;
  wrong.replace(at, 8, le(uint64_t(1) << 60, 8));
  test::write_bytes(dir.file("huge.pt"), wrong);
  EXPECT_OPEN_ERROR(dir.file("huge.pt"), "holds 1152921504606846976 elements");
  test::write_bytes(dir.file("extra.pt"), bytes + "trailing");
  EXPECT_EQ(open_error(dir.file("extra.pt")), "");
}

}  // namespace
}  // namespace genvis::io
