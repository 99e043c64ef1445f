#include "io/weights.h"

#include "core/error.h"
#include "core/file.h"
#include "core/text.h"
#include "core/torch_compat.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"

#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

namespace genvis::io {

const TensorInfo* WeightReader::find(const std::string& name) const {
  for (const auto& t : tensors())
    if (t.name == name) return &t;
  return nullptr;
}

uint64_t WeightReader::total_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors()) n += t.nbytes;
  return n;
}

uint64_t WeightReader::parameter_count() const {
  uint64_t n = 0;
  for (const auto& t : tensors()) n += checked_numel(t.shape).value_or(0);
  return n;
}

at::Tensor WeightReader::load(const std::string& name, std::optional<at::ScalarType> dtype, const at::Device& device) {
  at::Tensor t = load(name);
  const bool cast = dtype && at::isFloatingType(t.scalar_type()) && t.scalar_type() != *dtype;
  if (cast) return t.to(device, *dtype);
  return device.is_cpu() ? t : t.to(device);
}

std::vector<std::pair<std::string, at::Tensor>> WeightReader::load_all(std::optional<at::ScalarType> dtype,
                                                                       const at::Device& device) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.reserve(tensors().size());
  for (const auto& t : tensors()) out.emplace_back(t.name, load(t.name, dtype, device));
  return out;
}

namespace {

std::string read_prefix(const std::string& path, size_t n) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string buf(n, '\0');
  const ssize_t got = ::read(fd, buf.data(), n);
  ::close(fd);
  buf.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return buf;
}

}  // namespace

std::string find_diffusers_weights(const std::string& folder, const std::string& what) {
  return find_weight_file(folder,
                          {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
                           "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.safetensors",
                           "diffusion_pytorch_model.gguf"},
                          what);
}

std::string find_weight_file(const std::string& folder, const std::vector<std::string>& candidates,
                             const std::string& what) {
  std::string tried;
  for (const auto& name : candidates) {
    const std::string path = folder + "/" + name;
    if (file_exists(path)) return path;
    tried += (tried.empty() ? "" : ", ") + name;
  }
  throw LoadError(folder, "no " + what + " weights (looked for " + tried + ")");
}

std::unique_ptr<WeightReader> open_weights(const std::string& path) {
  if (is_directory(path))
    throw LoadError(path, "is a directory; give a weight file (model folders are opened by the model loader)");
  if (!file_exists(path)) throw LoadError(path, "no such file");
  if (ends_with(path, ".index.json")) return open_sharded_safetensors(path);

  const std::string head = read_prefix(path, 32);
  const auto* bytes = reinterpret_cast<const uint8_t*>(head.data());
  if (is_zip_file(bytes, head.size()) || is_legacy_torch_file(bytes, head.size())) return open_torch_checkpoint(path);
  if (head.size() >= 4 && head.compare(0, 4, "GGUF") == 0) return GgufReader::open(path);
  if (!head.empty() && head[0] == '{')
    throw LoadError(path, "is a JSON file, not weights (sharded checkpoints are opened through their .index.json)");
  if (!ends_with(path, ".safetensors") && head.size() >= 9 && head[8] != '{')
    throw LoadError(path, "unrecognised weight file format (expected safetensors, GGUF, a PyTorch .ckpt/.pt/.pth/.bin "
                          "checkpoint, or a .safetensors.index.json)");
  return SafetensorsReader::open(path);
}

void check_weight_output(const std::string& input, const std::string& output, bool overwrite) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(output, ec) && fs::equivalent(input, output, ec)) throw UsageError("output '" + output + "' is the input file");
  if (fs::exists(output, ec) && !overwrite) throw UsageError("output '" + output + "' exists (use --force to replace it)");
  if (fs::is_directory(output, ec)) throw UsageError("output '" + output + "' is a directory");
}

at::Tensor mapped_tensor(const std::shared_ptr<MappedFile>& file, uint8_t* data, const std::vector<int64_t>& shape,
                         at::ScalarType type, uint64_t nbytes) {
  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  if (reinterpret_cast<uintptr_t>(data) % c10::elementSize(type) != 0) {
    at::Tensor out = at::empty(shape, options);
    std::memcpy(out.data_ptr(), data, nbytes);
    return out;
  }
  auto keep_alive = file;
  return at::from_blob(data, shape, [keep_alive](void*) {}, options);
}

at::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::F64: return at::kDouble;
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
    case DType::F8_E4M3:
      if (auto t = compat::float8_e4m3fn()) return *t;
      break;
    case DType::F8_E5M2:
      if (auto t = compat::float8_e5m2()) return *t;
      break;
  }
  throw LoadError("", dtype_name(dtype),
                  std::string("this libtorch (") + compat::torch_version() + ") has no float8 type; use libtorch >= 2.1");
}

DType from_scalar_type(at::ScalarType type) {
  switch (type) {
    case at::kDouble: return DType::F64;
    case at::kFloat: return DType::F32;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    case at::kLong: return DType::I64;
    case at::kInt: return DType::I32;
    case at::kShort: return DType::I16;
    case at::kChar: return DType::I8;
    case at::kByte: return DType::U8;
    case at::kBool: return DType::BOOL;
    default: break;
  }
  if (compat::float8_e4m3fn() == type) return DType::F8_E4M3;
  if (compat::float8_e5m2() == type) return DType::F8_E5M2;
  throw UsageError(std::string("tensors of type ") + c10::toString(type) + " cannot be stored in a weight file");
}

}  // namespace genvis::io
