// GGUF: each ggml block layout decoded against blocks packed here from the layout's definition
// (ggml-common.h's structs: which bits of which byte hold which value), the Q8_0/Q4_0 quantisers
// within their formats' error, the half/bfloat16 conversions against libtorch's, files written
// and read back (shapes, storage types, ComfyUI-GGUF's orig_shape), and hostile files refused
// with one LoadError naming the file.
#include "core/error.h"
#include "io/gguf.h"
#include "io/half.h"
#include "io/safetensors.h"
#include "support/test_support.h"

#include <cstring>
#include <random>

namespace genvis::io {
namespace {

using test::TempDir;

void put_half(std::vector<uint8_t>& b, size_t at, float v) {
  const uint16_t h = float_to_half(v);
  b[at] = static_cast<uint8_t>(h & 0xff);
  b[at + 1] = static_cast<uint8_t>(h >> 8);
}

std::vector<float> decode(GgmlType type, const std::vector<uint8_t>& bytes, size_t n) {
  std::vector<float> out(n);
  dequantize_ggml(type, bytes.data(), n, out.data());
  return out;
}

// --- block layouts ------------------------------------------------------------------------------

TEST(GgufBlocks, Q4AndQ5AndQ8DecodeAsDefined) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> nib(0, 15), bit(0, 1), s8(-128, 127);
  const float d = 0.25f, m = -1.5f;  // exact in half precision
  // Q4_0: d | qs[16]; value j < 16 is the low nibble of qs[j], value j + 16 its high nibble; (q - 8) * d.
  // Q4_1: d | m | qs[16]; q * d + m.   Q5_0: d | qh (u32) | qs[16]; fifth bit of value j is bit j of qh.
  std::vector<int> q(32);
  for (auto& v : q) v = nib(rng);
  std::vector<int> fifth(32);
  for (auto& v : fifth) v = bit(rng);
  std::vector<uint8_t> q4_0(18), q4_1(20), q5_0(22), q5_1(24);
  put_half(q4_0, 0, d);
  put_half(q4_1, 0, d), put_half(q4_1, 2, m);
  put_half(q5_0, 0, d);
  put_half(q5_1, 0, d), put_half(q5_1, 2, m);
  uint32_t qh = 0;
  for (int j = 0; j < 32; ++j) qh |= static_cast<uint32_t>(fifth[j]) << j;
  for (int k = 0; k < 4; ++k) q5_0[2 + k] = q5_1[4 + k] = static_cast<uint8_t>(qh >> (8 * k));
  for (int j = 0; j < 16; ++j) {
    const auto packed = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
    q4_0[2 + j] = q4_1[4 + j] = q5_0[6 + j] = q5_1[8 + j] = packed;
  }
  const auto a = decode(GgmlType::Q4_0, q4_0, 32), b = decode(GgmlType::Q4_1, q4_1, 32);
  const auto c = decode(GgmlType::Q5_0, q5_0, 32), e = decode(GgmlType::Q5_1, q5_1, 32);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(a[j], static_cast<float>(q[j] - 8) * d) << j;
    EXPECT_EQ(b[j], static_cast<float>(q[j]) * d + m) << j;
    EXPECT_EQ(c[j], static_cast<float>((q[j] | (fifth[j] << 4)) - 16) * d) << j;
    EXPECT_EQ(e[j], static_cast<float>(q[j] | (fifth[j] << 4)) * d + m) << j;
  }
  // Q8_0: d | int8 qs[32].
  std::vector<uint8_t> q8(34);
  put_half(q8, 0, d);
  std::vector<int> v8(32);
  for (int j = 0; j < 32; ++j) v8[j] = s8(rng), q8[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(v8[j]));
  const auto f = decode(GgmlType::Q8_0, q8, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(f[j], static_cast<float>(v8[j]) * d) << j;
}

// K-quants: 8 sub-blocks of 32 with 6-bit scale s_i and min m_i; the 12 scale bytes hold, for
// i < 4, s_i and m_i in the low 6 bits of bytes i and i + 4; for i >= 4, the low 4 bits of s_i
// and m_i in byte i + 4 (low and high nibble) and their top 2 bits in bits 6-7 of bytes i - 4
// (s) and i (m). Value = d * s_i * q - dmin * m_i.
std::vector<uint8_t> pack_k_scales(const std::vector<int>& s, const std::vector<int>& m) {
  std::vector<uint8_t> b(12, 0);
  for (int i = 0; i < 4; ++i) {
    b[i] = static_cast<uint8_t>(s[i] & 63);
    b[i + 4] = static_cast<uint8_t>(m[i] & 63);
  }
  for (int i = 4; i < 8; ++i) {
    b[i + 4] = static_cast<uint8_t>((s[i] & 15) | ((m[i] & 15) << 4));
    b[i - 4] |= static_cast<uint8_t>((s[i] >> 4) << 6);
    b[i] |= static_cast<uint8_t>((m[i] >> 4) << 6);
  }
  return b;
}

TEST(GgufBlocks, Q4KAndQ5KDecodeAsDefined) {
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> six(0, 63), nib(0, 15), bit(0, 1);
  std::vector<int> s(8), m(8), q(256), fifth(256);
  for (int i = 0; i < 8; ++i) s[i] = six(rng), m[i] = six(rng);
  for (int i = 0; i < 256; ++i) q[i] = nib(rng), fifth[i] = bit(rng);
  const float d = 0.125f, dmin = 0.0625f;
  // Q4_K: d | dmin | scales[12] | qs[128]; values 64c..64c+31 are the low nibbles of qs[32c..32c+31],
  // values 64c+32..64c+63 their high nibbles (sub-blocks 2c and 2c+1).
  // Q5_K: d | dmin | scales[12] | qh[32] | qs[128]; the fifth bit of value 64c + l (l < 32) is bit 2c
  // of qh[l], of value 64c + 32 + l bit 2c + 1.
  std::vector<uint8_t> q4(144), q5(176);
  put_half(q4, 0, d), put_half(q4, 2, dmin), put_half(q5, 0, d), put_half(q5, 2, dmin);
  const auto scales = pack_k_scales(s, m);
  std::copy(scales.begin(), scales.end(), q4.begin() + 4);
  std::copy(scales.begin(), scales.end(), q5.begin() + 4);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int lo = 64 * c + l, hi = lo + 32;
      q4[16 + 32 * c + l] = q5[48 + 32 * c + l] = static_cast<uint8_t>(q[lo] | (q[hi] << 4));
      q5[16 + l] |= static_cast<uint8_t>((fifth[lo] << (2 * c)) | (fifth[hi] << (2 * c + 1)));
    }
  const auto a = decode(GgmlType::Q4_K, q4, 256), b = decode(GgmlType::Q5_K, q5, 256);
  for (int i = 0; i < 256; ++i) {
    const int sub = i / 32;
    const float scale = d * static_cast<float>(s[sub]), min = dmin * static_cast<float>(m[sub]);
    EXPECT_FLOAT_EQ(a[i], scale * static_cast<float>(q[i]) - min) << i;
    EXPECT_FLOAT_EQ(b[i], scale * static_cast<float>(q[i] | (fifth[i] << 4)) - min) << i;
  }
}

TEST(GgufBlocks, Q6KDecodesAsDefined) {
  // Q6_K: ql[128] | qh[64] | int8 scales[16] | d. Per half (128 values, h = 0, 1) and l < 32: values
  // l, l+32, l+64, l+96 take the low nibble of ql[64h+l], the low nibble of ql[64h+l+32], the high
  // nibble of ql[64h+l], the high nibble of ql[64h+l+32], and bits 0-1, 2-3, 4-5, 6-7 of qh[32h+l]
  // as their top two bits; value = d * scale[value / 16] * (q - 32).
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> six(0, 63), s8(-128, 127);
  std::vector<int> q(256), sc(16);
  for (auto& v : q) v = six(rng);
  for (auto& v : sc) v = s8(rng);
  std::vector<uint8_t> b(210, 0);
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int base = 128 * h;
      const int v0 = q[base + l], v1 = q[base + l + 32], v2 = q[base + l + 64], v3 = q[base + l + 96];
      b[64 * h + l] = static_cast<uint8_t>((v0 & 15) | ((v2 & 15) << 4));
      b[64 * h + l + 32] = static_cast<uint8_t>((v1 & 15) | ((v3 & 15) << 4));
      b[128 + 32 * h + l] = static_cast<uint8_t>((v0 >> 4) | ((v1 >> 4) << 2) | ((v2 >> 4) << 4) | ((v3 >> 4) << 6));
    }
  for (int i = 0; i < 16; ++i) b[192 + i] = static_cast<uint8_t>(static_cast<int8_t>(sc[i]));
  const float d = 0.5f;
  put_half(b, 208, d);
  const auto out = decode(GgmlType::Q6_K, b, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out[i], d * static_cast<float>(sc[i / 16] * (q[i] - 32))) << i;
}

TEST(GgufBlocks, HalfAndBfloat16MatchLibtorch) {
  std::mt19937 rng(4);
  std::vector<float> values = {0.f, -0.f, 1.f, -2.5f, 65504.f, 65520.f, 1e-8f, 5.9604645e-8f, 2.9802322e-8f, 6.1035156e-5f,
                               3.0517578e-5f, 1e30f, -1e-3f, INFINITY, -INFINITY};
  std::normal_distribution<float> wide(0, 1000), narrow(0, 1e-5f);
  for (int i = 0; i < 4000; ++i) values.push_back(i % 2 ? wide(rng) : narrow(rng));
  const at::Tensor x = at::tensor(values);
  const at::Tensor half = x.to(at::kHalf), bf = x.to(at::kBFloat16);
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t h_ref, b_ref;
    std::memcpy(&h_ref, static_cast<const uint8_t*>(half.data_ptr()) + 2 * i, 2);
    std::memcpy(&b_ref, static_cast<const uint8_t*>(bf.data_ptr()) + 2 * i, 2);
    EXPECT_EQ(float_to_half(values[i]), h_ref) << values[i];
    EXPECT_EQ(float_to_bf16(values[i]), b_ref) << values[i];
    EXPECT_EQ(half_to_float(h_ref), half[static_cast<int64_t>(i)].item<float>()) << values[i];
    EXPECT_EQ(bf16_to_float(b_ref), bf[static_cast<int64_t>(i)].item<float>()) << values[i];
  }
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
}

TEST(GgufBlocks, QuantisersStayWithinTheirFormatsError) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> x(32 * 64);
  for (auto& v : x) v = normal(rng);
  for (int j = 0; j < 32; ++j) x[j] = 0;  // an all-zero block: scale 0, no division by zero
  for (const GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    const auto bytes = quantize_ggml(type, x.data(), x.size());
    ASSERT_EQ(bytes.size(), x.size() / 32 * (type == GgmlType::Q8_0 ? 34u : 18u));
    const auto y = decode(type, bytes, x.size());
    double worst = 0;
    for (size_t b = 0; b < x.size() / 32; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
      // The grid spacing; the scale is stored as a half (relative error up to 2^-11), which moves
      // the outermost grid point (127 or 8 steps out) by up to 127 or 8 times that.
      const float step = type == GgmlType::Q8_0 ? amax / 127 : amax / 8;
      // Q8_0 rounds to the nearest point; Q4_0's grid is [-8, 7] steps with -8 at the value of
      // largest magnitude, so a value of the opposite sign and the same size is one step away.
      const double bound = type == GgmlType::Q8_0 ? step * (0.5 + 127.0 / 2048) : step * (1 + 8.0 / 2048);
      for (int j = 0; j < 32; ++j) {
        const double err = std::fabs(y[32 * b + j] - x[32 * b + j]);
        EXPECT_LE(err, bound + 1e-7) << ggml_type_name(static_cast<uint32_t>(type)) << " block " << b;
        worst = std::max(worst, err / std::max(step, 1e-12f));
      }
    }
    EXPECT_GT(worst, 0.3) << "the error should reach about half a step somewhere";
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.f);
  }
  EXPECT_THROW(quantize_ggml(GgmlType::Q4_K, x.data(), 256), UsageError);
  EXPECT_THROW(quantize_ggml(GgmlType::Q8_0, x.data(), 31), UsageError);
}

// --- files ----------------------------------------------------------------------------------

// A small safetensors file with every kind of tensor the writer handles.
std::string source_file(const TempDir& dir) {
  at::manual_seed(0);
  const std::string path = dir.file("src.safetensors");
  save_safetensors(path, {{"linear.weight", at::randn({64, 96})},
                          {"linear.bias", at::randn({64})},
                          {"conv.weight", at::randn({16, 8, 3, 3})},
                          {"conv3d.weight", at::randn({16, 16, 1, 2, 2})},
                          {"small.weight", at::randn({4, 32})},
                          {"steps", at::arange(5, at::kLong)},
                          {"scale", at::tensor(2.5f)}});
  return path;
}

TEST(Gguf, WritesAndReadsBackEveryKindOfTensor) {
  TempDir dir;
  const std::string src = source_file(dir);
  auto in = open_weights(src);
  for (const GgmlType type : {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    const std::string out = dir.file(ggml_type_name(static_cast<uint32_t>(type)) + ".gguf");
    const GgufWriteResult w = write_gguf(out, *in, {.type = type});
    EXPECT_EQ(w.tensors, 7u);
    auto r = open_weights(out);
    EXPECT_EQ(r->format(), "gguf");
    ASSERT_EQ(r->tensors().size(), 7u);
    std::map<std::string, std::string> storage;
    for (const auto& t : r->tensors()) {
      storage[t.name] = t.storage;
      EXPECT_EQ(t.shape, in->find(t.name)->shape) << t.name;  // 5-D and 0-D come back through orig_shape
      const at::Tensor a = in->load(t.name, at::kFloat), b = r->load(t.name, at::kFloat);
      ASSERT_EQ(a.sizes(), b.sizes()) << t.name;
      const double err = (a - b).abs().max().item<double>(), amax = a.abs().max().item<double>();
      const std::string s = t.storage;
      const double bound = s == "Q4_0" ? amax / 8 * 1.01 : s == "Q8_0" ? amax / 127 : s == "F16" ? amax * 1e-3 : 0;
      EXPECT_LE(err, bound) << t.name << " stored as " << s;
    }
    const bool q = type != GgmlType::F16;
    const std::string name = ggml_type_name(static_cast<uint32_t>(type));
    EXPECT_EQ(storage["linear.weight"], name);
    EXPECT_EQ(storage["linear.bias"], q ? "F32" : "F16");    // 1-D stays F32 when quantising
    EXPECT_EQ(storage["conv.weight"], "F16");    // rows of 3 are not whole blocks
    EXPECT_EQ(storage["conv3d.weight"], "F16");  // 5-D: merged, its shape in orig_shape
    EXPECT_EQ(storage["small.weight"], q ? "F32" : "F16");   // under 1,024 values
    EXPECT_EQ(storage["steps"], "I64");
    EXPECT_EQ(r->load("steps").dtype(), at::kLong);
    EXPECT_TRUE(r->load("steps").equal(at::arange(5, at::kLong)));
    EXPECT_EQ(r->metadata().count("comfy.gguf.orig_shape.conv3d.weight"), 1u);
    EXPECT_EQ(w.quantised, q ? 1u : 0u);
  }
  // An existing output is kept unless overwriting is asked for.
  EXPECT_THROW(write_gguf(dir.file("F16.gguf"), *in, {}), UsageError);
  EXPECT_THROW(write_gguf(dir.file("x.gguf"), *in, {.type = GgmlType::Q4_K}), UsageError);
}

// The bytes of a GGUF file from metadata and tensors (offsets assigned by the writer), data zero
// unless given.
std::string gguf_bytes(std::vector<GgufKV> metadata, std::vector<GgufTensor> tensors, uint64_t extra = 0) {
  std::string bytes = build_gguf_header(metadata, tensors);
  uint64_t end = 0;
  for (const auto& t : tensors) end = std::max(end, t.offset + t.nbytes);
  bytes.resize(bytes.size() + end + extra, '\0');
  return bytes;
}

std::string load_error(const std::string& bytes) {
  TempDir dir;
  const std::string path = dir.file("bad.gguf");
  test::write_bytes(path, bytes);
  try {
    open_weights(path)->load_all();
  } catch (const LoadError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    return what;
  }
  ADD_FAILURE() << "a bad file opened without error";
  return "";
}

void put_u64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// The position just past a serialised string (u64 length + bytes) in `bytes`: where a tensor
// info's n_dims or a key's value type starts.
size_t after_string(const std::string& bytes, const std::string& text) {
  std::string needle(8, '\0');
  put_u64(needle, 0, text.size());
  needle += text;
  const size_t at = bytes.find(needle);
  EXPECT_NE(at, std::string::npos) << text;
  return at + needle.size();
}

TEST(Gguf, ComfyOrigShapeReplacesTheStoredShape) {
  TempDir dir;
  GgufTensor t{"input_blocks.0.0.weight", GgmlType::Q8_0, {256, 9}};  // [9, 256] holding a [32, 4, 3, 6]
  const GgufKV orig{"comfy.gguf.orig_shape.input_blocks.0.0.weight", GgufValueType::ARRAY, GgufValueType::I32,
                    nlohmann::json::array({32, 4, 3, 6})};
  const std::string path = dir.file("comfy.gguf");
  test::write_bytes(path, gguf_bytes({orig}, {t}));
  auto r = open_weights(path);
  EXPECT_EQ(r->tensors()[0].shape, (std::vector<int64_t>{32, 4, 3, 6}));
  EXPECT_EQ(r->tensors()[0].storage, "Q8_0");
  EXPECT_EQ(r->load(t.name).sizes(), (at::IntArrayRef{32, 4, 3, 6}));
  GgufKV wrong = orig;
  wrong.value = nlohmann::json::array({32, 4, 3, 3});
  EXPECT_NE(load_error(gguf_bytes({wrong}, {t})).find("does not hold its 2304 values"), std::string::npos);
}

TEST(Gguf, HostileFilesGetOneClearError) {
  const GgufKV name{"general.name", GgufValueType::STRING, GgufValueType::U8, "tiny"};
  const GgufTensor a{"a", GgmlType::F32, {8, 2}}, b{"b", GgmlType::Q4_0, {64}};
  const std::string good = gguf_bytes({name}, {a, b});
  {
    TempDir dir;
    test::write_bytes(dir.file("good.gguf"), good);
    EXPECT_EQ(open_weights(dir.file("good.gguf"))->load_all().size(), 2u);
  }
  // Every truncation is refused (the file is small enough to try each length).
  for (size_t n = 4; n < good.size(); ++n) {
    TempDir dir;
    const std::string path = dir.file("cut.gguf");
    test::write_bytes(path, good.substr(0, n));
    EXPECT_THROW(open_weights(path), LoadError) << n << " of " << good.size() << " bytes";
  }
  // Header fields.
  std::string s = good;
  s[4] = 1;
  EXPECT_NE(load_error(s).find("version 1"), std::string::npos);
  s = good;
  s[4] = 0, s[7] = 3;
  EXPECT_NE(load_error(s).find("big-endian"), std::string::npos);
  s = good;
  put_u64(s, 8, uint64_t(1) << 40);  // tensor count
  EXPECT_NE(load_error(s).find("tensors do not fit"), std::string::npos);
  s = good;
  put_u64(s, 16, uint64_t(1) << 40);  // metadata count
  EXPECT_NE(load_error(s).find("metadata entries do not fit"), std::string::npos);
  // Duplicates (the writer refuses them, so one name is patched into the other).
  std::string dup = gguf_bytes({name, {"general.namf", GgufValueType::STRING, GgufValueType::U8, "x"}}, {a});
  dup[after_string(dup, "general.namf") - 1] = 'e';
  EXPECT_NE(load_error(dup).find("appears twice"), std::string::npos);
  std::string dup_t = gguf_bytes({}, {a, {"c", GgmlType::F32, {8, 2}}});
  dup_t[after_string(dup_t, "c") - 1] = 'a';
  EXPECT_NE(load_error(dup_t).find("tensor name appears twice"), std::string::npos);
  // Tensor data: misaligned, overlapping, past the end.
  std::string moved = gguf_bytes({}, {a, {"c", GgmlType::F32, {8, 2}}});
  const size_t c_offset = after_string(moved, "c") + 4 + 16 + 4;  // n_dims, 2 dims, type
  put_u64(moved, c_offset, 8);
  EXPECT_NE(load_error(moved).find("not a multiple of the alignment"), std::string::npos);
  put_u64(moved, c_offset, 0);
  EXPECT_NE(load_error(moved).find("overlaps"), std::string::npos);
  EXPECT_NE(load_error(good.substr(0, good.size() - 1)).find("past the end"), std::string::npos);
  // Tensor types and dimensions.
  std::string type = good;
  const size_t b_type = after_string(type, "b") + 4 + 8;
  type[b_type] = 23;  // IQ4_XS
  EXPECT_NE(load_error(type).find("IQ4_XS is not read by genvis"), std::string::npos);
  type[b_type] = 99;
  EXPECT_NE(load_error(type).find("type 99"), std::string::npos);
  std::string rows = gguf_bytes({}, {{"r", GgmlType::F32, {40}}});
  rows[after_string(rows, "r") + 4 + 8] = static_cast<char>(GgmlType::Q8_0);
  EXPECT_NE(load_error(rows).find("not whole Q8_0 blocks of 32"), std::string::npos);
  std::string dims = good;
  dims[after_string(dims, "a")] = 5;
  EXPECT_NE(load_error(dims).find("5 dimensions"), std::string::npos);
  // Metadata: alignment not a power of two, an unknown value type, an array longer than the file.
  std::string align = gguf_bytes({{"general.alignment", GgufValueType::U32, GgufValueType::U8, 32}}, {a});
  align[after_string(align, "general.alignment") + 4] = 24;
  EXPECT_NE(load_error(align).find("not a power of two"), std::string::npos);
  std::string vt = good;
  vt[after_string(vt, "general.name")] = 13;
  EXPECT_NE(load_error(vt).find("unknown value type 13"), std::string::npos);
  std::string arr = gguf_bytes({{"k", GgufValueType::ARRAY, GgufValueType::U32, nlohmann::json::array({1, 2})}}, {});
  put_u64(arr, after_string(arr, "k") + 4 + 4, uint64_t(1) << 50);
  EXPECT_NE(load_error(arr).find("does not fit"), std::string::npos);
  std::string nested = gguf_bytes({{"k", GgufValueType::ARRAY, GgufValueType::U32, nlohmann::json::array({1, 2})}}, {});
  nested[after_string(nested, "k") + 4] = static_cast<char>(GgufValueType::ARRAY);
  EXPECT_NE(load_error(nested).find("arrays of arrays"), std::string::npos);
  std::string boolean = gguf_bytes({{"flag", GgufValueType::BOOL, GgufValueType::U8, true}}, {});
  boolean[after_string(boolean, "flag") + 4] = 7;
  EXPECT_NE(load_error(boolean).find("neither 0 nor 1"), std::string::npos);
}

TEST(Gguf, UnreadableBlockTypesLoadWithAClearError) {
  TempDir dir;
  const std::string path = dir.file("q2k.gguf");
  test::write_bytes(path, gguf_bytes({}, {{"w", GgmlType::Q2_K, {256}}}));
  auto r = open_weights(path);  // the header is valid: info can list it
  EXPECT_EQ(r->tensors()[0].storage, "Q2_K");
  try {
    r->load("w");
    FAIL() << "Q2_K loaded";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be dequantised"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace genvis::io
