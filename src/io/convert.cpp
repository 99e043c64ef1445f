#include "io/convert.h"

#include "core/error.h"
#include "core/file.h"
#include "core/text.h"
#include "io/safetensors.h"
#include "io/weights.h"


namespace genvis::io {

ConvertResult convert_to_safetensors(const std::string& in, const std::string& out, const ConvertOptions& options) {
  if (!ends_with(out, ".safetensors")) throw UsageError("output '" + out + "' must end in .safetensors (or .gguf)");
  check_weight_output(in, out, options.overwrite);

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
