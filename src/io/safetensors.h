// safetensors files: a validated, memory-mapped reader and an atomic writer.
//
//   auto st = genvis::io::SafetensorsReader::open("unet.safetensors");
//   at::Tensor w = st->load("conv_in.weight");               // zero-copy view of the mapping
//   genvis::io::save_safetensors("out.safetensors", {{"w", w}}, {{"format", "pt"}});
#pragma once
#include "core/file.h"
#include "io/safetensors_header.h"
#include "io/weights.h"

#include <functional>
#include <unordered_map>

namespace genvis::io {

class SafetensorsReader : public WeightReader {
public:
  static std::unique_ptr<SafetensorsReader> open(const std::string& path);

  const std::vector<TensorInfo>& tensors() const override { return infos_; }
  const std::map<std::string, std::string>& metadata() const override { return header_.metadata; }
  std::string format() const override { return "safetensors"; }
  const std::string& path() const override { return file_->path(); }
  // Zero-copy when the data is aligned for its dtype; otherwise (and for BOOL, whose bytes
  // are normalised to 0/1) a copy.
  at::Tensor load(const std::string& name) override;

  using WeightReader::load;

  // The raw bytes of a tensor inside the mapping.
  const uint8_t* raw_data(const std::string& name) const;

private:
  explicit SafetensorsReader(std::shared_ptr<MappedFile> file);
  const SafetensorsEntry& entry(const std::string& name) const;
  std::shared_ptr<MappedFile> file_;
  SafetensorsHeader header_;
  std::vector<TensorInfo> infos_;
  std::unordered_map<std::string, size_t> index_;
};

// Opens "<name>.safetensors.index.json" (transformers/diffusers sharded checkpoints): the
// union of the shards listed in its weight_map, each checked against the map.
std::unique_ptr<WeightReader> open_sharded_safetensors(const std::string& index_path);

// Writes a safetensors file atomically: `layout` gives every tensor's name, dtype and shape (the
// header is written first), then produce(i) is called once per tensor, in order, and must return
// a tensor of exactly that dtype and shape. Only one produced tensor is alive at a time.
void write_safetensors(const std::string& path, const std::vector<TensorInfo>& layout,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<at::Tensor(size_t index)>& produce);

// Convenience: writes the given tensors (any device, made contiguous on the CPU).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace genvis::io
