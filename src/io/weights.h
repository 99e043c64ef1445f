// Reading weight files of every supported format through one interface.
//
//   auto w = genvis::io::open_weights("model.safetensors");     // or .ckpt/.pt/.bin/.index.json
//   for (const auto& t : w->tensors()) std::cout << t.name << "\n";
//   at::Tensor x = w->load("model.diffusion_model.out.2.weight", at::kFloat);
//
// Formats: safetensors (mmap, zero-copy where possible), sharded safetensors
// (*.safetensors.index.json), GGUF (io/gguf.h: quantised tensors dequantised on load), PyTorch
// zip checkpoints (.ckpt/.pt/.pth/.bin) through a restricted unpickler, and the legacy (pre-1.6)
// PyTorch format. The format is detected from the content,
// not the extension.
#pragma once
#include "core/file.h"
#include "io/dtype.h"

#include <ATen/ATen.h>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace genvis::io {

class WeightReader {
public:
  virtual ~WeightReader() = default;

  // Every tensor, in file order. Names are unique.
  virtual const std::vector<TensorInfo>& tensors() const = 0;
  // safetensors __metadata__; for pickled checkpoints, the plain top-level values (e.g.
  // "global_step" of a Lightning checkpoint) rendered as text.
  virtual const std::map<std::string, std::string>& metadata() const = 0;
  // "safetensors", "safetensors-sharded", "gguf", "pytorch-zip", "pytorch-legacy".
  virtual std::string format() const = 0;
  virtual const std::string& path() const = 0;

  // The tensor in its stored dtype, on the CPU. May alias the file mapping (read-only data is
  // copy-on-write, so in-place changes never reach the file). Throws LoadError for unknown names.
  virtual at::Tensor load(const std::string& name) = 0;

  // The tensor cast to `dtype` (floating tensors only; integer/bool tensors keep their type)
  // and moved to `device`. Never holds two full copies of the model: one tensor at a time.
  at::Tensor load(const std::string& name, std::optional<at::ScalarType> dtype,
                  const at::Device& device = at::Device(at::kCPU));

  const TensorInfo* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  uint64_t total_bytes() const;
  uint64_t parameter_count() const;

  // All tensors (cast/moved as above), in file order.
  std::vector<std::pair<std::string, at::Tensor>> load_all(std::optional<at::ScalarType> dtype = std::nullopt,
                                                           const at::Device& device = at::Device(at::kCPU));
};

// The first of `candidates` (file names) present in `folder`; LoadError naming `what` and every
// candidate otherwise. For diffusers/transformers component folders.
std::string find_weight_file(const std::string& folder, const std::vector<std::string>& candidates,
                             const std::string& what);

// A diffusers component folder's weights: diffusion_pytorch_model.safetensors, its sharded index,
// .bin, .fp16.safetensors or .gguf (a component quantised by genvis convert), the first present
// (find_weight_file naming `what`).
std::string find_diffusers_weights(const std::string& folder, const std::string& what = "diffusers component");

// Opens any supported weight file; throws LoadError naming the file and the problem.
std::unique_ptr<WeightReader> open_weights(const std::string& path);

// What the writers (convert, GGUF) refuse before writing a byte: an output that is the input
// file, a folder, or an existing file without `overwrite`. UsageError naming the output.
void check_weight_output(const std::string& input, const std::string& output, bool overwrite);

// `nbytes` bytes at `data` inside a file mapping as a CPU tensor of `shape` and `type`: a
// zero-copy view that keeps the mapping alive when the address is aligned for the type, else a
// copy. (The mapping is private copy-on-write: in-place changes never reach the file.)
at::Tensor mapped_tensor(const std::shared_ptr<MappedFile>& file, uint8_t* data, const std::vector<int64_t>& shape,
                         at::ScalarType type, uint64_t nbytes);

// The libtorch type for a file dtype (throws LoadError for float8 on a libtorch without it).
at::ScalarType to_scalar_type(DType dtype);
DType from_scalar_type(at::ScalarType type);

}  // namespace genvis::io
