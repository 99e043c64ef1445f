#include "core/error.h"
#include "core/torch_compat.h"
#include "io/safetensors.h"
#include "support/test_support.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace genvis::io {
namespace {

using test::TempDir;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A safetensors file from a literal header and data bytes.
std::string make_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

// Expects opening `bytes` to fail with a LoadError whose message contains every `parts`.
void expect_load_error(const std::string& bytes, std::initializer_list<std::string> parts) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  test::write_bytes(path, bytes);
  try {
    SafetensorsReader::open(path);
    FAIL() << "opened a bad file without error";
  } catch (const LoadError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    for (const auto& p : parts) EXPECT_NE(what.find(p), std::string::npos) << "missing '" << p << "' in: " << what;
  }
}

TEST(Safetensors, ReadsValuesShapesAndMetadata) {
  TempDir dir;
  const std::string path = dir.file("a.safetensors");
  const std::string header =
      R"({"__metadata__":{"format":"pt","note":"hi"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"I64","shape":[1],"data_offsets":[16,24]}})";
  std::string data = floats({1.f, 2.f, 3.f, -4.5f});
  int64_t seven = 7;
  data += std::string(reinterpret_cast<const char*>(&seven), 8);
  test::write_bytes(path, make_file(header, data));

  auto r = SafetensorsReader::open(path);
  ASSERT_EQ(r->tensors().size(), 2u);
  EXPECT_EQ(r->tensors()[0].name, "a");
  EXPECT_EQ(r->tensors()[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(r->tensors()[1].dtype, DType::I64);
  EXPECT_EQ(r->metadata().at("format"), "pt");
  EXPECT_EQ(r->metadata().at("note"), "hi");
  EXPECT_EQ(r->total_bytes(), 24u);
  EXPECT_EQ(r->parameter_count(), 5u);
  const at::Tensor a = r->load("a");
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  EXPECT_FLOAT_EQ(a[1][1].item<float>(), -4.5f);
  EXPECT_EQ(r->load("b").item<int64_t>(), 7);
  const at::Tensor a16 = r->load("a", at::kHalf);
  EXPECT_EQ(a16.scalar_type(), at::kHalf);
  EXPECT_FLOAT_EQ(a16[0][1].item<float>(), 2.f);
  // Integer tensors are never cast.
  EXPECT_EQ(r->load("b", at::kHalf).scalar_type(), at::kLong);
  EXPECT_THROW(r->load("missing"), LoadError);
}

TEST(Safetensors, AlignedTensorsAreZeroCopyAndWritesStayPrivate) {
  TempDir dir;
  const std::string path = dir.file("z.safetensors");
  // Header padded to 8 bytes so the data is aligned.
  std::string header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  while ((header.size() + 8) % 8) header += ' ';
  const std::string bytes = make_file(header, floats({1, 2, 3, 4}));
  test::write_bytes(path, bytes);
  auto r = SafetensorsReader::open(path);
  at::Tensor w = r->load("w");
  EXPECT_EQ(w.data_ptr(), static_cast<const void*>(r->raw_data("w")));
  w.mul_(10);  // copy-on-write mapping: the file must not change
  EXPECT_FLOAT_EQ(w[3].item<float>(), 40.f);
  EXPECT_EQ(test::read_bytes(path), bytes);
}

TEST(Safetensors, UnalignedDataIsCopiedCorrectly) {
  TempDir dir;
  const std::string path = dir.file("u.safetensors");
  const std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";  // 8 + 55: odd offset
  ASSERT_NE((header.size() + 8) % 4, 0u);
  test::write_bytes(path, make_file(header, floats({1.25f, -2.f})));
  auto r = SafetensorsReader::open(path);
  const at::Tensor w = r->load("w");
  EXPECT_NE(w.data_ptr(), static_cast<const void*>(r->raw_data("w")));
  EXPECT_FLOAT_EQ(w[0].item<float>(), 1.25f);
  EXPECT_FLOAT_EQ(w[1].item<float>(), -2.f);
}

TEST(Safetensors, EveryDtypeRoundTrips) {
  TempDir dir;
  const std::string path = dir.file("all.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  const at::Tensor base = at::arange(-3, 3, at::kDouble).reshape({2, 3});
  for (const auto type : {at::kDouble, at::kFloat, at::kHalf, at::kBFloat16, at::kLong, at::kInt, at::kShort, at::kChar})
    tensors.emplace_back(std::string("t_") + c10::toString(type), base.to(type));
  tensors.emplace_back("u8", at::arange(0, 6, at::kByte).reshape({3, 2}));
  tensors.emplace_back("bool", at::tensor({1, 0, 1}).to(at::kBool));
  tensors.emplace_back("scalar", at::scalar_tensor(3.5, at::kFloat));
  tensors.emplace_back("empty", at::empty({0, 4}, at::kFloat));
  save_safetensors(path, tensors, {{"k", "v"}});

  auto r = SafetensorsReader::open(path);
  ASSERT_EQ(r->tensors().size(), tensors.size());
  EXPECT_EQ(r->metadata().at("k"), "v");
  for (const auto& [name, t] : tensors) {
    const at::Tensor back = r->load(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back.sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(back, t)) << name;
  }
  const std::vector<std::string> expected = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(dtype_name(r->tensors()[i].dtype), expected[i]);
}

TEST(Safetensors, BoolBytesAreNormalised) {
  TempDir dir;
  const std::string path = dir.file("b.safetensors");
  test::write_bytes(path, make_file(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", std::string("\x00\x05\x01", 3)));
  const at::Tensor m = SafetensorsReader::open(path)->load("m");
  EXPECT_EQ(m.scalar_type(), at::kBool);
  EXPECT_EQ(m.sum().item<int64_t>(), 2);
  EXPECT_TRUE(m[1].item<bool>());
}

TEST(Safetensors, WriterIsAtomicAndPadsHeader) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  test::write_bytes(path, "previous contents");
  // A producer that fails midway must leave the old file untouched and no temporary behind.
  std::vector<TensorInfo> layout(2);
  layout[0].name = "a"; layout[0].dtype = DType::F32; layout[0].shape = {2};
  layout[1].name = "b"; layout[1].dtype = DType::F32; layout[1].shape = {2};
  EXPECT_THROW(write_safetensors(path, layout, {}, [](size_t i) -> at::Tensor {
                 if (i == 1) throw RuntimeError("producer failed");
                 return at::ones({2});
               }),
               RuntimeError);
  EXPECT_EQ(test::read_bytes(path), "previous contents");
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);
  // A produced tensor of the wrong shape is refused.
  EXPECT_THROW(write_safetensors(path, layout, {}, [](size_t) { return at::ones({3}); }), RuntimeError);

  save_safetensors(path, {{"x", at::ones({3}, at::kHalf)}});
  const std::string bytes = test::read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 6);
}

TEST(Safetensors, ShardedIndexJoinsShards) {
  TempDir dir;
  save_safetensors(dir.file("m-00001-of-00002.safetensors"), {{"a", at::ones({2})}});
  save_safetensors(dir.file("m-00002-of-00002.safetensors"), {{"b", at::zeros({3})}, {"c", at::ones({1})}});
  test::write_bytes(dir.file("m.safetensors.index.json"),
                    R"({"metadata":{"total_size":28},"weight_map":{"a":"m-00001-of-00002.safetensors",)"
                    R"("b":"m-00002-of-00002.safetensors","c":"m-00002-of-00002.safetensors"}})");
  auto r = open_weights(dir.file("m.safetensors.index.json"));
  EXPECT_EQ(r->format(), "safetensors-sharded");
  ASSERT_EQ(r->tensors().size(), 3u);
  EXPECT_EQ(r->load("b").numel(), 3);
  EXPECT_EQ(r->metadata().at("total_size"), "28");

  // An index naming a tensor that its shard lacks, or a shard path that leaves the folder.
  test::write_bytes(dir.file("bad.safetensors.index.json"),
                    R"({"weight_map":{"a":"m-00001-of-00002.safetensors","z":"m-00001-of-00002.safetensors"}})");
  EXPECT_THROW(open_weights(dir.file("bad.safetensors.index.json")), LoadError);
  test::write_bytes(dir.file("evil.safetensors.index.json"), R"({"weight_map":{"a":"../m.safetensors"}})");
  EXPECT_THROW(open_weights(dir.file("evil.safetensors.index.json")), LoadError);
}

TEST(SafetensorsHostile, TooShortAndHeaderPastEnd) {
  expect_load_error("", {"too short"});
  expect_load_error("abc", {"too short"});
  expect_load_error(le64(1000) + "{}", {"past the end"});
  expect_load_error(le64(uint64_t(1) << 62), {"limit"});
  expect_load_error(le64(UINT64_MAX) + "{}", {"limit"});
}

TEST(SafetensorsHostile, TruncatedAtEveryLength) {
  const std::string good = make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", floats({1, 2, 3}));
  TempDir dir;
  for (size_t n = 0; n < good.size(); ++n) {
    const std::string path = dir.file("t.safetensors");
    test::write_bytes(path, good.substr(0, n));
    EXPECT_THROW(SafetensorsReader::open(path), LoadError) << "prefix " << n;
  }
}

TEST(SafetensorsHostile, BadJsonAndUtf8) {
  expect_load_error(make_file(R"({"a":)", ""), {"not valid JSON"});
  expect_load_error(make_file("{\"a\xff\":{}}", ""), {"not valid JSON"});
  expect_load_error(make_file("[1,2]", ""), {"start with"});
  expect_load_error(make_file(R"("str")", ""), {"start with"});
}

TEST(SafetensorsHostile, SchemaViolations) {
  expect_load_error(make_file(R"({"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})", floats({1})), {"'a'", "unknown dtype"});
  expect_load_error(make_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", floats({1})), {"'a'", "dtype"});
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", floats({1})), {"'a'", "shape"});
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", floats({1})), {"'a'"});
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", floats({1})), {"'a'", "data_offsets"});
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", floats({1})), {"'a'", "before begin"});
  expect_load_error(make_file(R"({"a":[1,2]})", ""), {"'a'", "not an object"});
  expect_load_error(make_file(R"({"__metadata__":{"k":1}})", ""), {"metadata values must be strings"});
  expect_load_error(make_file(R"({"__metadata__":[]})", ""), {"__metadata__"});
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}})", floats({1})),
                    {"'a'"});
}

TEST(SafetensorsHostile, WrongByteCountOverlapGapAndTrailingBytes) {
  // 2 floats need 8 bytes, offsets give 4.
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", floats({1})), {"'a'", "needs 8"});
  // Overlap: b starts inside a.
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                              floats({1, 2, 3})),
                    {"'b'", "overlap"});
  // Gap between a and b.
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                              floats({1, 2, 3})),
                    {"'b'", "gap"});
  // Data region shorter than the offsets claim (offset past the end of the file).
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", floats({1, 2})), {"truncated"});
  // Bytes that belong to no tensor.
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats({1, 2})), {"trailing"});
}

TEST(SafetensorsHostile, DuplicateNamesAreRejected) {
  expect_load_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                              floats({1, 2})),
                    {"'a'", "twice"});
  expect_load_error(make_file(R"({"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})", floats({1})),
                    {"'dtype'", "twice"});
}

TEST(SafetensorsHostile, Float8NeedsANewLibtorch) {
  TempDir dir;
  const std::string path = dir.file("f8.safetensors");
  test::write_bytes(path, make_file(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "\x38\x40"));
  auto r = SafetensorsReader::open(path);  // the header itself is valid
  ASSERT_EQ(r->tensors()[0].dtype, DType::F8_E4M3);
#if GENVIS_HAS_FLOAT8
  EXPECT_FLOAT_EQ(r->load("a", at::kFloat)[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(r->load("a", at::kFloat)[1].item<float>(), 2.0f);
#else
  EXPECT_THROW(r->load("a"), LoadError);
#endif
}

TEST(Weights, OpenWeightsRejectsUnknownFormats) {
  TempDir dir;
  test::write_bytes(dir.file("x.bin"), "this is just some text, not weights at all");
  EXPECT_THROW(open_weights(dir.file("x.bin")), LoadError);
  EXPECT_THROW(open_weights(dir.file("nope.safetensors")), LoadError);
  EXPECT_THROW(open_weights(dir.path()), LoadError);
  test::write_bytes(dir.file("c.json"), R"({"a": 1})");
  EXPECT_THROW(open_weights(dir.file("c.json")), LoadError);
}

}  // namespace
}  // namespace genvis::io
