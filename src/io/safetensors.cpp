#include "io/safetensors.h"

#include "core/error.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

namespace genvis::io {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

std::unique_ptr<SafetensorsReader> SafetensorsReader::open(const std::string& path) {
  return std::unique_ptr<SafetensorsReader>(new SafetensorsReader(MappedFile::open(path)));
}

SafetensorsReader::SafetensorsReader(std::shared_ptr<MappedFile> file) : file_(std::move(file)) {
  header_ = parse_safetensors_header(file_->data(), file_->size(), file_->path());
  infos_.reserve(header_.tensors.size());
  for (size_t i = 0; i < header_.tensors.size(); ++i) {
    infos_.push_back(header_.tensors[i].info);
    index_.emplace(header_.tensors[i].info.name, i);
  }
}

const SafetensorsEntry& SafetensorsReader::entry(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) throw LoadError(file_->path(), name, "no such tensor in the file");
  return header_.tensors[it->second];
}

const uint8_t* SafetensorsReader::raw_data(const std::string& name) const {
  return file_->data() + header_.data_offset + entry(name).begin;
}

at::Tensor SafetensorsReader::load(const std::string& name) {
  const SafetensorsEntry& e = entry(name);
  const at::ScalarType type = to_scalar_type(e.info.dtype);
  uint8_t* data = file_->mutable_data() + header_.data_offset + e.begin;
  if (e.info.nbytes == 0) return at::empty(e.info.shape, at::TensorOptions().dtype(type));
  if (e.info.dtype == DType::BOOL) {
    // torch assumes bool bytes are 0 or 1; the file may hold anything.
    at::Tensor bytes = at::from_blob(data, e.info.shape, at::TensorOptions().dtype(at::kByte));
    return bytes.ne(0);
  }
  return mapped_tensor(file_, data, e.info.shape, type, e.info.nbytes);
}

namespace {

// A reader over several safetensors shards.
class ShardedReader : public WeightReader {
public:
  explicit ShardedReader(const std::string& index_path) : path_(index_path) {
    const std::string text = read_text_file(index_path, 64 << 20);
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw LoadError(index_path, std::string("not valid JSON: ") + e.what());
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      throw LoadError(index_path, "no \"weight_map\" object (not a sharded checkpoint index)");
    if (index.contains("metadata") && index["metadata"].is_object())
      for (const auto& [k, v] : index["metadata"].items()) metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();

    const std::filesystem::path dir = std::filesystem::path(index_path).parent_path();
    std::map<std::string, std::string> expected;  // tensor -> shard file name
    std::vector<std::string> shard_order;
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) throw LoadError(index_path, name, "weight_map value is not a file name");
      const std::string f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." || f == "..")
        throw LoadError(index_path, name, "shard name '" + f + "' is not a plain file name");
      expected[name] = f;
      if (std::find(shard_order.begin(), shard_order.end(), f) == shard_order.end()) shard_order.push_back(f);
    }
    for (const auto& f : shard_order) {
      auto shard = SafetensorsReader::open((dir / f).string());
      for (const auto& info : shard->tensors()) {
        const auto it = expected.find(info.name);
        if (it == expected.end() || it->second != f)
          throw LoadError(shard->path(), info.name, it == expected.end() ? "is not listed in the index"
                                                                          : "is listed in the index under " + it->second);
        owner_[info.name] = shards_.size();
        infos_.push_back(info);
      }
      shards_.push_back(std::move(shard));
    }
    for (const auto& [name, f] : expected)
      if (!owner_.count(name)) throw LoadError((dir / f).string(), name, "listed in the index but missing from the shard");
  }

  const std::vector<TensorInfo>& tensors() const override { return infos_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  std::string format() const override { return "safetensors-sharded"; }
  const std::string& path() const override { return path_; }
  at::Tensor load(const std::string& name) override {
    const auto it = owner_.find(name);
    if (it == owner_.end()) throw LoadError(path_, name, "no such tensor in the sharded checkpoint");
    return shards_[it->second]->load(name);
  }

private:
  std::string path_;
  std::vector<std::unique_ptr<SafetensorsReader>> shards_;
  std::vector<TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
  std::unordered_map<std::string, size_t> owner_;
};

}  // namespace

std::unique_ptr<WeightReader> open_sharded_safetensors(const std::string& index_path) {
  return std::make_unique<ShardedReader>(index_path);
}

void write_safetensors(const std::string& path, const std::vector<TensorInfo>& layout,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<at::Tensor(size_t index)>& produce) {
  std::vector<SafetensorsEntry> entries;
  entries.reserve(layout.size());
  for (const auto& info : layout) entries.push_back(SafetensorsEntry{info, 0, 0});
  const std::string header = build_safetensors_header(entries, metadata);

  AtomicFile out(path);
  out.write(header);
  for (size_t i = 0; i < entries.size(); ++i) {
    const TensorInfo& info = entries[i].info;
    at::Tensor t = produce(i);
    if (from_scalar_type(t.scalar_type()) != info.dtype || t.sizes().vec() != info.shape)
      throw RuntimeError("writing " + path + ": tensor '" + info.name + "' is " + dtype_name(from_scalar_type(t.scalar_type())) +
                         " " + shape_string(t.sizes().vec()) + ", expected " + dtype_name(info.dtype) + " " +
                         shape_string(info.shape));
    t = t.to(at::kCPU).contiguous();
    if (info.nbytes) out.write(t.data_ptr(), info.nbytes);
  }
  out.commit();
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<TensorInfo> layout;
  layout.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    TensorInfo info;
    info.name = name;
    info.dtype = from_scalar_type(t.scalar_type());
    info.shape = t.sizes().vec();
    layout.push_back(std::move(info));
  }
  write_safetensors(path, layout, metadata, [&](size_t i) { return tensors[i].second; });
}

}  // namespace genvis::io
