// GGUF weight files (stable-diffusion.cpp's whole checkpoints, ComfyUI-GGUF's UNet, DiT and text
// encoder files) through the WeightReader interface, and a GGUF writer.
//
//   auto r = genvis::io::GgufReader::open("sd15-Q8_0.gguf");
//   at::Tensor w = r->load("model.diffusion_model.out.2.weight", at::kFloat);
//   genvis::io::write_gguf("out.gguf", *reader, {.type = io::GgmlType::Q8_0});
//
// Reading: F32/F16/BF16/F64 and integer tensors are zero-copy views of the mapping, like
// safetensors; block-quantised tensors (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) are
// dequantised to f32 when loaded, one tensor at a time, so a model costs its compute dtype in
// memory once loaded (the file's size while mapped). TensorInfo::dtype is what load() gives and
// TensorInfo::storage the GGUF type ("Q4_K"). Shapes are PyTorch's (GGUF stores ne[] innermost
// first); ComfyUI-GGUF's `comfy.gguf.orig_shape.<tensor>` (the shape before its converter flattened
// a tensor into rows of 256, or a 5-D Conv3d weight into 4-D) replaces the stored one.
#pragma once
#include "core/file.h"
#include "io/gguf_format.h"
#include "io/weights.h"

#include <functional>
#include <unordered_map>

namespace genvis::io {

class GgufReader : public WeightReader {
public:
  static std::unique_ptr<GgufReader> open(const std::string& path);

  const std::vector<TensorInfo>& tensors() const override { return infos_; }
  // Every key/value as text: strings as they are, numbers and short arrays as JSON, arrays of more
  // than 16 values as "[N x TYPE]".
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  std::string format() const override { return "gguf"; }
  const std::string& path() const override { return file_->path(); }
  at::Tensor load(const std::string& name) override;
  using WeightReader::load;

  const GgufHeader& header() const { return header_; }

private:
  explicit GgufReader(std::shared_ptr<MappedFile> file);
  std::shared_ptr<MappedFile> file_;
  GgufHeader header_;
  std::vector<TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
  std::unordered_map<std::string, size_t> index_;
};

struct GgufWriteOptions {
  // Storage of floating tensors (F32, F16, BF16, Q8_0 or Q4_0). When quantising, as ComfyUI-GGUF's
  // converter does: 1-D tensors (biases, norms) and those under `min_elements` values stay F32,
  // and tensors whose rows are not whole blocks (3x3 convolutions) are stored as F16.
  GgmlType type = GgmlType::F16;
  uint64_t min_elements = 1024;
  bool overwrite = false;
  // Extra key/values (general.architecture etc.); the reader's string metadata is not copied.
  std::vector<GgufKV> metadata;
  std::function<void(size_t, size_t)> on_progress;  // (tensors done, total)
};

struct GgufWriteResult {
  size_t tensors = 0, quantised = 0;
  uint64_t bytes_out = 0;
};

// Writes every tensor of `reader` to `path` (atomically; one tensor in memory at a time). Integer
// tensors keep their type (U8 and bool as I8). Names and shapes are kept as they are
// (stable-diffusion.cpp's convention: the checkpoint's own key names); a tensor of more than 4
// dimensions (Conv3d weights) or none is stored with its leading dimensions merged and its shape
// in `comfy.gguf.orig_shape.<name>`, as ComfyUI-GGUF stores them.
GgufWriteResult write_gguf(const std::string& path, WeightReader& reader, const GgufWriteOptions& options);

}  // namespace genvis::io
