#include "io/gguf.h"

#include "core/error.h"


namespace genvis::io {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF data is little-endian");

namespace {

constexpr const char* kOrigShapePrefix = "comfy.gguf.orig_shape.";

// The libtorch-side dtype of a GGUF tensor as load() gives it.
DType loaded_dtype(GgmlType t) {
  switch (t) {
    case GgmlType::F16: return DType::F16;
    case GgmlType::BF16: return DType::BF16;
    case GgmlType::F64: return DType::F64;
    case GgmlType::I8: return DType::I8;
    case GgmlType::I16: return DType::I16;
    case GgmlType::I32: return DType::I32;
    case GgmlType::I64: return DType::I64;
    default: return DType::F32;  // F32 and every block type (dequantised)
  }
}

bool stored_plainly(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::F64:
    case GgmlType::I8: case GgmlType::I16: case GgmlType::I32: case GgmlType::I64:
      return true;
    default: return false;
  }
}

const char* value_type_name(GgufValueType t) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "?";
}

std::string render(const GgufKV& kv) {
  if (kv.value.is_string()) return kv.value.get<std::string>();
  if (kv.value.is_array() && kv.value.size() > 16)
    return "[" + std::to_string(kv.value.size()) + " x " + value_type_name(kv.element_type) + "]";
  return kv.value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::unique_ptr<GgufReader> GgufReader::open(const std::string& path) {
  return std::unique_ptr<GgufReader>(new GgufReader(MappedFile::open(path)));
}

GgufReader::GgufReader(std::shared_ptr<MappedFile> file) : file_(std::move(file)) {
  const std::string& path = file_->path();
  header_ = parse_gguf_header(file_->data(), file_->size(), path);
  for (const auto& kv : header_.metadata) metadata_[kv.key] = render(kv);
  infos_.reserve(header_.tensors.size());
  for (size_t i = 0; i < header_.tensors.size(); ++i) {
    const GgufTensor& t = header_.tensors[i];
    TensorInfo info;
    info.name = t.name;
    info.dtype = loaded_dtype(t.type);
    info.storage = ggml_type_name(static_cast<uint32_t>(t.type));
    info.shape = t.shape();
    info.nbytes = t.nbytes;
    info.file = path;
    if (const GgufKV* orig = header_.find(kOrigShapePrefix + t.name)) {
      std::vector<int64_t> shape;
      if (orig->type != GgufValueType::ARRAY || !orig->value.is_array())
        throw LoadError(path, orig->key, "must be an array of integers");
      for (const auto& d : orig->value) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0) throw LoadError(path, orig->key, "must be an array of non-negative integers");
        shape.push_back(d.get<int64_t>());
      }
      if (shape.size() > 8 || checked_numel(shape) != std::optional<uint64_t>(t.numel))
        throw LoadError(path, t.name, "original shape " + shape_string(shape) + " does not hold its " + std::to_string(t.numel) + " values");
      info.shape = shape;
    }
    infos_.push_back(std::move(info));
    index_.emplace(t.name, i);
  }
}

at::Tensor GgufReader::load(const std::string& name) {
  const auto it = index_.find(name);
  if (it == index_.end()) throw LoadError(file_->path(), name, "no such tensor in the file");
  const GgufTensor& t = header_.tensors[it->second];
  const TensorInfo& info = infos_[it->second];
  const at::ScalarType type = to_scalar_type(info.dtype);
  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  uint8_t* data = file_->mutable_data() + header_.data_offset + t.offset;
  if (t.numel == 0) return at::empty(info.shape, options);
  if (stored_plainly(t.type)) return mapped_tensor(file_, data, info.shape, type, t.nbytes);
  if (!ggml_is_dequantizable(t.type))
    throw LoadError(file_->path(), name,
                    "ggml type " + info.storage + " cannot be dequantised by genvis (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K "
                    "and Q6_K can)");
  at::Tensor out = at::empty(info.shape, options);
  dequantize_ggml(t.type, data, t.numel, out.data_ptr<float>());
  return out;
}

GgufWriteResult write_gguf(const std::string& path, WeightReader& reader, const GgufWriteOptions& options) {
  const GgmlType q = options.type;
  if (q != GgmlType::F32 && q != GgmlType::F16 && q != GgmlType::BF16 && q != GgmlType::Q8_0 && q != GgmlType::Q4_0)
    throw UsageError("GGUF output type " + ggml_type_name(static_cast<uint32_t>(q)) + ": genvis writes F32, F16, BF16, Q8_0 or Q4_0");
  check_weight_output(reader.path(), path, options.overwrite);
  const bool quantising = q == GgmlType::Q8_0 || q == GgmlType::Q4_0;
  const uint32_t block = ggml_block(static_cast<uint32_t>(q))->elements;

  const auto& infos = reader.tensors();
  std::vector<GgufTensor> tensors;
  std::vector<GgufKV> metadata = options.metadata;
  GgufWriteResult result;
  for (const auto& info : infos) {
    GgufTensor t;
    t.name = info.name;
    const auto numel = checked_numel(info.shape);
    if (!numel) throw LoadError(reader.path(), info.name, "shape " + shape_string(info.shape) + " has too many elements");
    if (dtype_is_floating(info.dtype)) {
      const bool rows_fit = !info.shape.empty() && info.shape.back() % block == 0 && info.shape.size() <= 4;
      if (!quantising) t.type = q;
      else if (info.shape.size() <= 1 || *numel < options.min_elements) t.type = GgmlType::F32;
      else if (!rows_fit) t.type = GgmlType::F16;
      else t.type = q, ++result.quantised;
    } else {
      switch (info.dtype) {
        case DType::I64: t.type = GgmlType::I64; break;
        case DType::I32: t.type = GgmlType::I32; break;
        case DType::I16: case DType::U8: t.type = GgmlType::I16; break;
        default: t.type = GgmlType::I8; break;  // I8, BOOL
      }
    }
    std::vector<int64_t> shape = info.shape;
    if (shape.empty() || shape.size() > 4) {  // GGUF holds 1-4 dimensions: merge the leading ones
      std::vector<int64_t> stored = {static_cast<int64_t>(*numel)};
      if (shape.size() > 4) {
        stored = {1, shape[shape.size() - 3], shape[shape.size() - 2], shape.back()};
        for (size_t d = 0; d + 3 < shape.size(); ++d) stored[0] *= shape[d];
      }
      GgufKV orig{kOrigShapePrefix + info.name, GgufValueType::ARRAY, GgufValueType::I32, nlohmann::json::array()};
      for (const int64_t d : shape) {
        if (d > INT32_MAX) throw UsageError("'" + info.name + "': dimension " + std::to_string(d) + " does not fit ComfyUI-GGUF's i32 shape");
        orig.value.push_back(d);
      }
      metadata.push_back(std::move(orig));
      shape = stored;
    }
    t.ne.assign(shape.rbegin(), shape.rend());
    tensors.push_back(std::move(t));
  }
  const std::string header = build_gguf_header(metadata, tensors, 32);

  AtomicFile out(path);
  out.write(header);
  uint64_t written = 0;  // bytes of the data section so far
  static const char zeros[32] = {};
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensor& t = tensors[i];
    out.write(zeros, t.offset - written);  // alignment padding
    written = t.offset;
    if (!ggml_is_dequantizable(t.type)) {  // the integer types, stored as they load
      const at::Tensor x = reader.load(t.name).to(to_scalar_type(loaded_dtype(t.type))).contiguous();
      out.write(x.data_ptr(), t.nbytes);
    } else {
      const at::Tensor x = reader.load(t.name, at::kFloat).contiguous();
      const std::vector<uint8_t> bytes = quantize_ggml(t.type, x.data_ptr<float>(), t.numel);
      out.write(bytes.data(), bytes.size());
    }
    written += t.nbytes;
    if (options.on_progress) options.on_progress(i + 1, tensors.size());
  }
  out.commit();
  result.tensors = tensors.size();
  result.bytes_out = header.size() + written;
  return result;
}

}  // namespace genvis::io
