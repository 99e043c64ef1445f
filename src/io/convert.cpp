#include "io/convert.h"

#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "io/weights.h"

#include <filesystem>

namespace genvis::io {

ConvertResult convert_to_safetensors(const std::string& in, const std::string& out, const ConvertOptions& options) {
  namespace fs = std::filesystem;
  if (out.size() < 12 || out.compare(out.size() - 12, 12, ".safetensors") != 0)
    throw UsageError("output '" + out + "' must end in .safetensors (or .gguf)");
  std::error_code ec;
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec)) throw UsageError("output '" + out + "' is the input file");
  if (fs::exists(out) && !options.overwrite) throw UsageError("output '" + out + "' exists (use --force to replace it)");
  if (fs::is_directory(out)) throw UsageError("output '" + out + "' is a directory");

  auto reader = open_weights(in);
  std::vector<TensorInfo> layout = reader->tensors();
  ConvertResult result;
  result.tensors = layout.size();
  result.bytes_in = reader->total_bytes();
  const std::optional<DType> target = options.dtype ? std::optional<DType>(from_scalar_type(*options.dtype)) : std::nullopt;
  for (auto& info : layout) {
    if (target && dtype_is_floating(info.dtype) && info.dtype != *target) {
      info.dtype = *target;
      ++result.cast;
    }
    info.nbytes = checked_numel(info.shape).value_or(0) * dtype_size(info.dtype);
    result.bytes_out += info.nbytes;
  }
  auto metadata = reader->metadata();
  metadata.emplace("format", "pt");
  write_safetensors(out, layout, metadata, [&](size_t i) {
    at::Tensor t = reader->load(layout[i].name, options.dtype);
    if (options.on_progress) options.on_progress(i + 1, layout.size());
    return t;
  });
  return result;
}

}  // namespace genvis::io
