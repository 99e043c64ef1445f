#include "support/torch_checkpoint_writer.h"

#include <gtest/gtest.h>
#include <zip.h>

namespace genvis::test {

std::string le(uint64_t v, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}
std::string str(std::string_view s) { return "X" + le(s.size(), 4) + std::string(s); }
std::string global(std::string_view module, std::string_view name) {
  return "c" + std::string(module) + "\n" + std::string(name) + "\n";
}
std::string integer(int64_t v) { return "\x8a\x08" + le(static_cast<uint64_t>(v), 8); }
std::string tuple(const std::vector<int64_t>& v) {
  std::string out = "(";
  for (int64_t x : v) out += integer(x);
  return out + "t";
}

std::string state_dict_pickle(const std::vector<FakeTensor>& tensors) {
  const std::string ordered_dict = global("collections", "OrderedDict") + ")R";
  std::string p = "\x80\x02" + ordered_dict + "(";
  for (const auto& t : tensors)
    p += str(t.name) + global("torch._utils", "_rebuild_tensor_v2") + "((" + str("storage") +
         global("torch", t.storage_class) + str(t.key) + str("cpu") + integer(t.numel) + "tQ" + integer(t.offset) +
         tuple(t.size) + tuple(t.stride) + "\x89" + ordered_dict + "tR";
  return p + "u.";
}

void write_zip(const std::string& path, const std::vector<Entry>& entries) {
  int error = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  ASSERT_NE(z, nullptr) << error;
  for (const auto& e : entries) {
    zip_source_t* src = zip_source_buffer(z, e.data.data(), e.data.size(), 0);
    ASSERT_NE(src, nullptr);
    const zip_int64_t index = zip_file_add(z, e.name.c_str(), src, ZIP_FL_OVERWRITE);
    ASSERT_GE(index, 0) << zip_strerror(z);
    zip_set_file_compression(z, static_cast<zip_uint64_t>(index), e.deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  ASSERT_EQ(zip_close(z), 0);
}

std::string floats(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

namespace {

const char* storage_class(at::ScalarType type) {
  switch (type) {
    case at::kDouble: return "DoubleStorage";
    case at::kFloat: return "FloatStorage";
    case at::kHalf: return "HalfStorage";
    case at::kBFloat16: return "BFloat16Storage";
    case at::kLong: return "LongStorage";
    case at::kInt: return "IntStorage";
    case at::kByte: return "ByteStorage";
    case at::kBool: return "BoolStorage";
    default: break;
  }
  ADD_FAILURE() << "save_torch_checkpoint: no storage class for " << type;
  return "FloatStorage";
}

}  // namespace

void save_torch_checkpoint(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::vector<FakeTensor> fakes;
  std::vector<Entry> entries = {{"archive/data.pkl", ""}};
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor t = tensors[i].second.contiguous().cpu();
    const std::string key = std::to_string(i);
    std::vector<int64_t> stride(static_cast<size_t>(t.dim()));
    int64_t s = 1;
    for (int64_t d = t.dim() - 1; d >= 0; --d) stride[static_cast<size_t>(d)] = s, s *= t.size(d);
    fakes.push_back({tensors[i].first, storage_class(t.scalar_type()), key, t.numel(), 0, t.sizes().vec(), stride});
    entries.push_back({"archive/data/" + key, std::string(static_cast<const char*>(t.data_ptr()), t.nbytes())});
  }
  entries[0].data = state_dict_pickle(fakes);
  entries.push_back({"archive/version", "3\n"});
  write_zip(path, entries);
}

}  // namespace genvis::test
