#include "io/gguf_format.h"

#include "core/error.h"
#include "core/text.h"
#include "io/dtype.h"
#include "io/half.h"
#include "io/utf8.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <unordered_set>

namespace genvis::io {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read little-endian
constexpr uint64_t kMaxName = 65536;

struct TypeRow {
  uint32_t id;
  const char* name;
  uint32_t elements, bytes;  // 0, 0: named but not read by genvis
};

// ggml's type table (ggml.c type_traits): block sizes of the types genvis reads.
constexpr TypeRow kTypes[] = {
    {0, "F32", 1, 4},        {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},     {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},   {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 0, 0},   {17, "IQ2_XS", 0, 0},
    {18, "IQ3_XXS", 0, 0},   {19, "IQ1_S", 0, 0},      {20, "IQ4_NL", 0, 0},    {21, "IQ3_S", 0, 0},
    {22, "IQ2_S", 0, 0},     {23, "IQ4_XS", 0, 0},     {24, "I8", 1, 1},        {25, "I16", 1, 2},
    {26, "I32", 1, 4},       {27, "I64", 1, 8},        {28, "F64", 1, 8},       {29, "IQ1_M", 0, 0},
    {30, "BF16", 1, 2},      {34, "TQ1_0", 0, 0},      {35, "TQ2_0", 0, 0},     {39, "MXFP4", 0, 0},
};

const TypeRow* type_row(uint32_t id) {
  for (const auto& r : kTypes)
    if (r.id == id) return &r;
  return nullptr;
}

// Little-endian reads with bounds, every failure a LoadError naming the file and what was read.
class Cursor {
public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& path) : data_(data), size_(size), path_(path) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  [[noreturn]] void fail(const std::string& what) const { throw LoadError(path_, what); }
  void need(uint64_t n, const char* what) const {
    if (n > left())
      fail(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
           ", " + std::to_string(left()) + " left");
  }
  uint64_t uint(int bytes, const char* what) {
    need(static_cast<uint64_t>(bytes), what);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | data_[pos_ + static_cast<uint64_t>(i)];
    pos_ += static_cast<uint64_t>(bytes);
    return v;
  }
  uint32_t u32(const char* what) { return static_cast<uint32_t>(uint(4, what)); }
  uint64_t u64(const char* what) { return uint(8, what); }
  std::string string(const char* what) {
    const uint64_t n = u64(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

private:
  const uint8_t* data_;
  uint64_t size_, pos_ = 0;
  const std::string& path_;
};

// Smallest serialised size of one value of `type` (bounds array counts before reading).
uint64_t min_value_bytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::BOOL: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: case GgufValueType::STRING: return 8;
    case GgufValueType::ARRAY: return 12;
  }
  return 1;
}

bool known_value_type(uint32_t t) { return t <= 12; }

int64_t sign_extend(uint64_t v, int bytes) {
  const int shift = 64 - 8 * bytes;
  return static_cast<int64_t>(v << shift) >> shift;
}

nlohmann::json read_value(Cursor& c, GgufValueType type, const std::string& key, GgufValueType* element_type) {
  switch (type) {
    case GgufValueType::U8: return c.uint(1, "a u8 value");
    case GgufValueType::I8: return sign_extend(c.uint(1, "an i8 value"), 1);
    case GgufValueType::U16: return c.uint(2, "a u16 value");
    case GgufValueType::I16: return sign_extend(c.uint(2, "an i16 value"), 2);
    case GgufValueType::U32: return c.uint(4, "a u32 value");
    case GgufValueType::I32: return sign_extend(c.uint(4, "an i32 value"), 4);
    case GgufValueType::U64: return c.uint(8, "a u64 value");
    case GgufValueType::I64: return static_cast<int64_t>(c.uint(8, "an i64 value"));
    case GgufValueType::F32: {
      const double f = std::bit_cast<float>(static_cast<uint32_t>(c.uint(4, "an f32 value")));
      return std::isfinite(f) ? nlohmann::json(f) : nlohmann::json(nullptr);  // JSON has no NaN/inf
    }
    case GgufValueType::F64: {
      const double f = std::bit_cast<double>(c.uint(8, "an f64 value"));
      return std::isfinite(f) ? nlohmann::json(f) : nlohmann::json(nullptr);
    }
    case GgufValueType::BOOL: {
      const uint64_t b = c.uint(1, "a bool value");
      if (b > 1) c.fail("'" + key + "': bool value " + std::to_string(b) + " is neither 0 nor 1");
      return b == 1;
    }
    case GgufValueType::STRING: return c.string("a string value");
    case GgufValueType::ARRAY: {
      const uint32_t et = c.u32("an array's element type");
      if (!known_value_type(et)) c.fail("'" + key + "': unknown array element type " + std::to_string(et));
      if (et == static_cast<uint32_t>(GgufValueType::ARRAY)) c.fail("'" + key + "': arrays of arrays are not supported (nor by ggml)");
      const auto etype = static_cast<GgufValueType>(et);
      if (element_type) *element_type = etype;
      const uint64_t n = c.u64("an array's length");
      if (n > c.left() / min_value_bytes(etype))
        c.fail("'" + key + "': array of " + std::to_string(n) + " elements does not fit in the file");
      nlohmann::json a = nlohmann::json::array();
      a.get_ref<nlohmann::json::array_t&>().reserve(static_cast<size_t>(n));
      for (uint64_t i = 0; i < n; ++i) a.push_back(read_value(c, etype, key, nullptr));
      return a;
    }
  }
  c.fail("'" + key + "': unknown value type");
}

void put_uint(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_string(std::string& out, const std::string& s) {
  put_uint(out, s.size(), 8);
  out += s;
}

void write_value(std::string& out, GgufValueType type, GgufValueType element_type, const nlohmann::json& v,
                 const std::string& key) {
  const auto bad = [&](const char* want) { throw UsageError("GGUF key '" + key + "': value " + v.dump() + " is not " + want); };
  const auto integer = [&](int64_t lo, uint64_t hi, int bytes) {
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > hi) bad("in range");
      put_uint(out, v.get<uint64_t>(), bytes);
    } else if (v.is_number_integer()) {
      const int64_t x = v.get<int64_t>();
      if (x < lo || (x > 0 && static_cast<uint64_t>(x) > hi)) bad("in range");
      put_uint(out, static_cast<uint64_t>(x), bytes);
    } else {
      bad("an integer");
    }
  };
  switch (type) {
    case GgufValueType::U8: return integer(0, 0xff, 1);
    case GgufValueType::I8: return integer(-128, 127, 1);
    case GgufValueType::U16: return integer(0, 0xffff, 2);
    case GgufValueType::I16: return integer(-32768, 32767, 2);
    case GgufValueType::U32: return integer(0, 0xffffffffu, 4);
    case GgufValueType::I32: return integer(INT32_MIN, INT32_MAX, 4);
    case GgufValueType::U64: return integer(0, UINT64_MAX, 8);
    case GgufValueType::I64: return integer(INT64_MIN, INT64_MAX, 8);
    case GgufValueType::F32: {
      if (!v.is_number() && !v.is_null()) bad("a number");
      return put_uint(out, std::bit_cast<uint32_t>(v.is_null() ? NAN : v.get<float>()), 4);
    }
    case GgufValueType::F64: {
      if (!v.is_number() && !v.is_null()) bad("a number");
      return put_uint(out, std::bit_cast<uint64_t>(v.is_null() ? double(NAN) : v.get<double>()), 8);
    }
    case GgufValueType::BOOL:
      if (!v.is_boolean()) bad("a bool");
      return put_uint(out, v.get<bool>() ? 1 : 0, 1);
    case GgufValueType::STRING:
      if (!v.is_string()) bad("a string");
      return put_string(out, v.get<std::string>());
    case GgufValueType::ARRAY:
      if (!v.is_array()) bad("an array");
      if (element_type == GgufValueType::ARRAY) throw UsageError("GGUF key '" + key + "': arrays of arrays are not supported");
      put_uint(out, static_cast<uint32_t>(element_type), 4);
      put_uint(out, v.size(), 8);
      for (const auto& e : v) write_value(out, element_type, GgufValueType::U8, e, key);
      return;
  }
  throw UsageError("GGUF key '" + key + "': unknown value type");
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Block dequantisers (ggml's layouts, each block self-contained).
uint16_t u16le(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void put_u16le(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xff);
  p[1] = static_cast<uint8_t>(v >> 8);
}
float h(const uint8_t* p) { return half_to_float(u16le(p)); }
uint32_t u32le(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }

// Q4_0 / Q4_1 (kFifth false) and Q5_0 / Q5_1 (true): half d | [half m: the _1 kinds] | [u32 fifth
// bits: Q5] | 16 bytes of nibbles, low nibbles x[0..15], high x[16..31]; the fifth bit of x[j] is
// bit j. x = (q - offset) d for the _0 kinds (offset 8 or 16), q d + m for the _1 kinds.
template <bool kFifth, bool kMin>
void q4_q5(const uint8_t* b, float* y) {
  const float d = h(b), m = kMin ? h(b + 2) : 0.0f;
  const uint8_t* p = b + (kMin ? 4 : 2);
  const uint32_t qh = kFifth ? u32le(p) : 0;
  const uint8_t* q = p + (kFifth ? 4 : 0);
  constexpr int kOffset = kMin ? 0 : kFifth ? 16 : 8;
  for (int j = 0; j < 16; ++j) {
    const int lo = (q[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (q[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    if constexpr (kMin) {
      y[j] = static_cast<float>(lo) * d + m;
      y[j + 16] = static_cast<float>(hi) * d + m;
    } else {
      y[j] = static_cast<float>(lo - kOffset) * d;
      y[j + 16] = static_cast<float>(hi - kOffset) * d;
    }
  }
}
void q8_0(const uint8_t* b, float* y) {  // half d | 32 int8
  const float d = h(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}
// K-quants: 256 values in 8 sub-blocks of 32 with 6-bit scales and mins packed in 12 bytes.
void scale_min_k4(int j, const uint8_t* q, int& scale, int& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}
// Q4_K (kFifth false) and Q5_K: half d | half dmin | 12 scale bytes | [32 bytes of fifth bits: Q5_K]
// | 128 bytes of nibbles. Per chunk c of 64 values: the low nibbles of 32 bytes (sub-block 2c), then
// the high ones (2c + 1); the fifth bits of chunk c are bits 2c and 2c + 1 of the 32 bytes.
template <bool kFifth>
void q4_q5_k(const uint8_t* b, float* y) {
  const float d = h(b), dmin = h(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* q = b + (kFifth ? 48 : 16);
  const auto fifth = [&](int l, int bit) { return kFifth ? ((qh[l] >> bit) & 1) << 4 : 0; };
  for (int chunk = 0; chunk < 4; ++chunk) {
    int s0, m0, s1, m1;
    scale_min_k4(2 * chunk, scales, s0, m0);
    scale_min_k4(2 * chunk + 1, scales, s1, m1);
    const float d0 = d * static_cast<float>(s0), d1 = d * static_cast<float>(s1);
    const float n0 = dmin * static_cast<float>(m0), n1 = dmin * static_cast<float>(m1);
    for (int l = 0; l < 32; ++l) y[l] = d0 * static_cast<float>((q[l] & 0x0f) + fifth(l, 2 * chunk)) - n0;
    for (int l = 0; l < 32; ++l) y[32 + l] = d1 * static_cast<float>((q[l] >> 4) + fifth(l, 2 * chunk + 1)) - n1;
    q += 32;
    y += 64;
  }
}
void q6_k(const uint8_t* b, float* y) {  // 128 bytes low nibbles | 64 bytes high 2-bit pairs | 16 int8 scales | half d
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = h(b + 208);
  for (int half_block = 0; half_block < 2; ++half_block) {  // 128 values each
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int v0 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int v1 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int v2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int v3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is] * v0);
      y[l + 32] = d * static_cast<float>(sc[is + 2] * v1);
      y[l + 64] = d * static_cast<float>(sc[is + 4] * v2);
      y[l + 96] = d * static_cast<float>(sc[is + 6] * v3);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace

std::string ggml_type_name(uint32_t type) {
  if (const TypeRow* r = type_row(type)) return r->name;
  return "type " + std::to_string(type);
}

std::optional<GgmlBlock> ggml_block(uint32_t type) {
  const TypeRow* r = type_row(type);
  if (!r || r->elements == 0) return std::nullopt;
  return GgmlBlock{r->elements, r->bytes};
}

bool ggml_is_dequantizable(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::F64:
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
      return true;
    default: return false;
  }
}

std::optional<GgmlType> parse_ggml_type(const std::string& name) {
  const std::string lower = ascii_lower(name);
  for (const auto& r : kTypes)
    if (r.elements != 0 && lower == ascii_lower(r.name)) return static_cast<GgmlType>(r.id);
  return std::nullopt;
}

const GgufKV* GgufHeader::find(const std::string& key) const {
  for (const auto& kv : metadata)
    if (kv.key == key) return &kv;
  return nullptr;
}

GgufHeader parse_gguf_header(const uint8_t* data, uint64_t size, const std::string& path) {
  Cursor c(data, size, path);
  GgufHeader h;
  if (size < 4 || c.u32("the magic") != kMagic) throw LoadError(path, "not a GGUF file (no 'GGUF' magic)");
  h.version = c.u32("the version");
  if (h.version == 1) c.fail("GGUF version 1 (2023's first files, 32-bit counts) is not supported; convert it with a current gguf tool");
  if (h.version != 2 && h.version != 3) {
    if (h.version == 0x02000000u || h.version == 0x03000000u) c.fail("a big-endian GGUF file is not supported");
    c.fail("unknown GGUF version " + std::to_string(h.version));
  }
  const uint64_t n_tensors = c.u64("the tensor count");
  const uint64_t n_kv = c.u64("the metadata count");
  if (n_kv > c.left() / 13) c.fail(std::to_string(n_kv) + " metadata entries do not fit in the file");
  if (n_tensors > c.left() / 33) c.fail(std::to_string(n_tensors) + " tensors do not fit in the file");

  // A key or tensor name: 1..kMaxName bytes of UTF-8, not seen before among its kind.
  const auto unique_name = [&](const char* what, const std::string& label, std::unordered_set<std::string>& seen,
                               const char* repeated) {
    std::string name = c.string(what);
    if (name.empty() || name.size() > kMaxName) c.fail(label + " is empty or too long");
    if (!utf8::is_valid(name)) c.fail(label + " is not valid UTF-8");
    if (!seen.insert(name).second) throw LoadError(path, name, repeated);
    return name;
  };
  std::unordered_set<std::string> keys;
  h.metadata.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKV kv;
    kv.key = unique_name("a metadata key", "metadata key " + std::to_string(i), keys, "metadata key appears twice");
    const uint32_t t = c.u32("a value type");
    if (!known_value_type(t)) throw LoadError(path, kv.key, "unknown value type " + std::to_string(t));
    kv.type = static_cast<GgufValueType>(t);
    kv.value = read_value(c, kv.type, kv.key, &kv.element_type);
    h.metadata.push_back(std::move(kv));
  }
  if (const GgufKV* a = h.find("general.alignment")) {
    if (a->type != GgufValueType::U32) throw LoadError(path, a->key, "must be a u32");
    const uint64_t v = a->value.get<uint64_t>();
    if (!std::has_single_bit(v)) throw LoadError(path, a->key, std::to_string(v) + " is not a power of two");
    h.alignment = v;
  }

  std::unordered_set<std::string> names;
  h.tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = unique_name("a tensor name", "tensor " + std::to_string(i) + "'s name", names, "tensor name appears twice");
    const uint32_t n_dims = c.u32("a tensor's dimension count");
    if (n_dims < 1 || n_dims > 4) throw LoadError(path, t.name, std::to_string(n_dims) + " dimensions (GGUF has 1 to 4)");
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.u64("a tensor dimension");
      if (ne > (uint64_t(1) << 62)) throw LoadError(path, t.name, "dimension " + std::to_string(ne) + " is too large");
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    const uint32_t type = c.u32("a tensor type");
    const auto block = ggml_block(type);
    if (!block)
      throw LoadError(path, t.name,
                      "ggml type " + ggml_type_name(type) + " is not read by genvis (F32, F16, BF16, F64, I8-I64, Q4_0, Q4_1, "
                      "Q5_0, Q5_1, Q8_0, Q8_1, Q2_K-Q8_K)");
    t.type = static_cast<GgmlType>(type);
    t.offset = c.u64("a tensor offset");
    const auto numel = checked_numel(t.ne);
    if (!numel) throw LoadError(path, t.name, "shape " + shape_string(t.shape()) + " has too many elements");
    t.numel = *numel;
    if (t.ne[0] % block->elements != 0)
      throw LoadError(path, t.name,
                      "rows of " + std::to_string(t.ne[0]) + " values are not whole " + ggml_type_name(type) + " blocks of " +
                          std::to_string(block->elements));
    t.nbytes = t.numel / block->elements * block->bytes;
    if (t.offset % h.alignment != 0)
      throw LoadError(path, t.name, "data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                                        std::to_string(h.alignment));
    h.tensors.push_back(std::move(t));
  }
  h.data_offset = align_up(c.pos(), h.alignment);
  if (h.data_offset > size) {
    if (!h.tensors.empty()) c.fail("truncated: the data section starts past the end of the file");
    h.data_offset = size;
  }
  const uint64_t data_size = size - h.data_offset;
  std::vector<const GgufTensor*> by_offset;
  for (const auto& t : h.tensors) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      throw LoadError(path, t.name,
                      "data [" + std::to_string(t.offset) + ", +" + std::to_string(t.nbytes) + ") runs past the end of the " +
                          std::to_string(data_size) + "-byte data section (truncated file?)");
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->offset < by_offset[i - 1]->offset + by_offset[i - 1]->nbytes)
      throw LoadError(path, by_offset[i]->name, "data overlaps that of '" + by_offset[i - 1]->name + "'");
  return h;
}

std::string build_gguf_header(const std::vector<GgufKV>& metadata, std::vector<GgufTensor>& tensors, uint64_t alignment) {
  if (!std::has_single_bit(alignment)) throw UsageError("GGUF alignment must be a power of two");
  std::string out;
  put_uint(out, kMagic, 4);
  put_uint(out, 3, 4);
  put_uint(out, tensors.size(), 8);
  put_uint(out, metadata.size(), 8);
  std::unordered_set<std::string> keys;
  for (const auto& kv : metadata) {
    if (!keys.insert(kv.key).second) throw UsageError("GGUF key '" + kv.key + "' given twice");
    if (kv.key == "general.alignment" && (kv.type != GgufValueType::U32 || kv.value != alignment))
      throw UsageError("GGUF general.alignment must be the u32 " + std::to_string(alignment));
    put_string(out, kv.key);
    put_uint(out, static_cast<uint32_t>(kv.type), 4);
    write_value(out, kv.type, kv.element_type, kv.value, kv.key);
  }
  uint64_t offset = 0;
  for (auto& t : tensors) {
    const auto block = ggml_block(static_cast<uint32_t>(t.type));
    if (!block) throw UsageError("GGUF tensor '" + t.name + "': type " + ggml_type_name(static_cast<uint32_t>(t.type)) + " cannot be written");
    if (t.ne.empty() || t.ne.size() > 4) throw UsageError("GGUF tensor '" + t.name + "' must have 1 to 4 dimensions");
    const auto numel = checked_numel(t.ne);
    if (!numel || t.ne[0] % block->elements != 0)
      throw UsageError("GGUF tensor '" + t.name + "': rows of " + std::to_string(t.ne[0]) + " are not whole " +
                       ggml_type_name(static_cast<uint32_t>(t.type)) + " blocks");
    t.numel = *numel;
    t.nbytes = t.numel / block->elements * block->bytes;
    t.offset = offset;
    offset = align_up(offset + t.nbytes, alignment);
    put_string(out, t.name);
    put_uint(out, t.ne.size(), 4);
    for (const int64_t ne : t.ne) put_uint(out, static_cast<uint64_t>(ne), 8);
    put_uint(out, static_cast<uint32_t>(t.type), 4);
    put_uint(out, t.offset, 8);
  }
  out.resize(align_up(out.size(), alignment), '\0');
  return out;
}

void dequantize_ggml(GgmlType type, const uint8_t* src, uint64_t n, float* dst) {
  const auto block = ggml_block(static_cast<uint32_t>(type));
  if (!block || !ggml_is_dequantizable(type))
    throw UsageError("ggml type " + ggml_type_name(static_cast<uint32_t>(type)) + " cannot be dequantised");
  if (n % block->elements != 0)
    throw UsageError(std::to_string(n) + " values are not whole " + ggml_type_name(static_cast<uint32_t>(type)) + " blocks");
  if (n == 0) return;
  const uint64_t blocks = n / block->elements;
  void (*kernel)(const uint8_t*, float*) = nullptr;
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, n * 4); return;
    case GgmlType::F16:
      for (uint64_t i = 0; i < n; ++i) dst[i] = h(src + 2 * i);
      return;
    case GgmlType::BF16:
      for (uint64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(u16le(src + 2 * i));
      return;
    case GgmlType::F64:
      for (uint64_t i = 0; i < n; ++i) {
        uint64_t bits;
        std::memcpy(&bits, src + 8 * i, 8);  // (unaligned)
        dst[i] = static_cast<float>(std::bit_cast<double>(bits));
      }
      return;
    case GgmlType::Q4_0: kernel = q4_q5<false, false>; break;
    case GgmlType::Q4_1: kernel = q4_q5<false, true>; break;
    case GgmlType::Q5_0: kernel = q4_q5<true, false>; break;
    case GgmlType::Q5_1: kernel = q4_q5<true, true>; break;
    case GgmlType::Q8_0: kernel = q8_0; break;
    case GgmlType::Q4_K: kernel = q4_q5_k<false>; break;
    case GgmlType::Q5_K: kernel = q4_q5_k<true>; break;
    case GgmlType::Q6_K: kernel = q6_k; break;
    default: break;
  }
  for (uint64_t b = 0; b < blocks; ++b) kernel(src + b * block->bytes, dst + b * block->elements);
}

std::vector<uint8_t> quantize_ggml(GgmlType type, const float* src, uint64_t n) {
  const auto block = ggml_block(static_cast<uint32_t>(type));
  if (!block || n % block->elements != 0)
    throw UsageError(std::to_string(n) + " values are not whole " + ggml_type_name(static_cast<uint32_t>(type)) + " blocks");
  std::vector<uint8_t> out(n / block->elements * block->bytes);
  if (n == 0) return out;
  uint8_t* o = out.data();
  const auto put_half = [](uint8_t* p, float f) { put_u16le(p, float_to_half(f)); };
  switch (type) {
    case GgmlType::F32: std::memcpy(o, src, n * 4); break;
    case GgmlType::F16:
      for (uint64_t i = 0; i < n; ++i) put_half(o + 2 * i, src[i]);
      break;
    case GgmlType::BF16:
      for (uint64_t i = 0; i < n; ++i) put_u16le(o + 2 * i, float_to_bf16(src[i]));
      break;
    case GgmlType::Q8_0:
      for (uint64_t b = 0; b < n / 32; ++b, src += 32, o += 34) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(src[j]));
        const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        put_half(o, d);
        for (int j = 0; j < 32; ++j) o[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(src[j] * id)));
      }
      break;
    case GgmlType::Q4_0:
      for (uint64_t b = 0; b < n / 32; ++b, src += 32, o += 18) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; ++j)
          if (std::fabs(src[j]) > amax) amax = std::fabs(src[j]), max = src[j];
        const float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
        put_half(o, d);
        for (int j = 0; j < 16; ++j) {
          const int lo = std::min(15, static_cast<int>(src[j] * id + 8.5f));
          const int hi = std::min(15, static_cast<int>(src[j + 16] * id + 8.5f));
          o[2 + j] = static_cast<uint8_t>(lo | (hi << 4));
        }
      }
      break;
    default: throw UsageError("genvis writes GGUF tensors as F32, F16, BF16, Q8_0 or Q4_0, not " + ggml_type_name(static_cast<uint32_t>(type)));
  }
  return out;
}

}  // namespace genvis::io
