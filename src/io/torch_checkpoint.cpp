#include "io/torch_checkpoint.h"

#include "core/error.h"
#include "core/file.h"
#include "io/pickle.h"

#include <cstring>
#include <mutex>
#include <unordered_map>
#include <zip.h>

namespace genvis::io {
namespace {

constexpr uint64_t kMaxPickleBytes = uint64_t(256) << 20;
constexpr uint64_t kMaxCompressionRatio = 1000;
constexpr int64_t kLegacyProtocolVersion = 1001;

// Shared by both formats: the tensor index, and load() from one storage at a time.
class TorchCheckpoint : public WeightReader {
public:
  const std::vector<TensorInfo>& tensors() const override { return infos_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  const std::string& path() const override { return path_; }
  at::Tensor load(const std::string& name) override;

protected:
  struct Storage {
    DType dtype = DType::U8;
    uint64_t numel = 0;
    size_t users = 0;        // named tensors that view it
    std::string first_user;  // for error messages
  };

  explicit TorchCheckpoint(std::string path) : path_(std::move(path)) {}
  // Records every storage the pickle names (all of them: legacy files store unnamed ones too)
  // and every named tensor.
  void index(const PickleDocument& doc);
  // The whole storage as a 1-D tensor of s.numel elements of s.dtype.
  virtual at::Tensor read_storage(const std::string& key, const Storage& s, const std::string& tensor) = 0;

  std::string path_;
  std::map<std::string, Storage> storages_;

private:
  std::vector<TensorInfo> infos_;
  std::vector<TensorRef> refs_;
  std::unordered_map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
  std::mutex mutex_;
  std::string cached_key_;
  at::Tensor cached_;
};

void TorchCheckpoint::index(const PickleDocument& doc) {
  for (const StorageRef* s : doc.storages()) {
    const auto [it, inserted] = storages_.try_emplace(s->key, Storage{s->dtype, s->numel, 0, {}});
    if (!inserted && (it->second.dtype != s->dtype || it->second.numel != s->numel))
      throw LoadError(path_, "storage '" + s->key + "' is named twice with different types or sizes (" +
                                 dtype_name(it->second.dtype) + " x " + std::to_string(it->second.numel) + ", " +
                                 dtype_name(s->dtype) + " x " + std::to_string(s->numel) + ")");
  }
  CheckpointIndex index = index_checkpoint(doc, path_);
  metadata_ = std::move(index.metadata);
  for (auto& t : index.tensors) {
    Storage& s = storages_.at(t.ref.storage.key);
    if (s.users++ == 0) s.first_user = t.name;
    TensorInfo info;
    info.name = t.name;
    info.dtype = t.ref.storage.dtype;
    info.shape = t.ref.size;
    info.nbytes = *checked_numel(t.ref.size) * dtype_size(info.dtype);  // fits: checked against the storage
    info.file = path_;
    by_name_.emplace(t.name, infos_.size());
    infos_.push_back(std::move(info));
    refs_.push_back(std::move(t.ref));
  }
}

at::Tensor TorchCheckpoint::load(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) throw LoadError(path_, name, "no such tensor in the checkpoint");
  const TensorRef& ref = refs_[it->second];
  const Storage& s = storages_.at(ref.storage.key);
  at::Tensor buffer;
  if (cached_.defined() && cached_key_ == ref.storage.key) {
    buffer = cached_;
  } else {
    cached_ = at::Tensor();
    buffer = read_storage(ref.storage.key, s, name);
    // Only a storage that another tensor will view is worth keeping (one storage at a time).
    if (s.users > 1) {
      cached_ = buffer;
      cached_key_ = ref.storage.key;
    }
  }
  const auto offset = static_cast<int64_t>(ref.storage.view_offset) + ref.storage_offset;
  at::Tensor view = buffer.as_strided(ref.size, ref.stride, offset);
  // The cached buffer is never handed out, so in-place changes by the caller cannot leak into
  // the next tensor of the same storage; a partial view is copied so the rest can be freed.
  if (s.users == 1 && view.is_contiguous() && view.numel() == buffer.numel()) return view;
  return view.clone(at::MemoryFormat::Contiguous);
}

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileClose {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

class ZipCheckpoint final : public TorchCheckpoint {
public:
  ZipCheckpoint(const std::string& path, std::shared_ptr<MappedFile> file);
  std::string format() const override { return "pytorch-zip"; }

private:
  zip_stat_t checked_stat(zip_uint64_t index, const std::string& entry);
  void read_entry(zip_uint64_t index, const std::string& entry, uint8_t* out, uint64_t size,
                  const std::string& tensor);
  std::string read_small(const std::string& entry, uint64_t max_bytes);
  at::Tensor read_storage(const std::string& key, const Storage& s, const std::string& tensor) override;

  std::shared_ptr<MappedFile> file_;
  std::unique_ptr<zip_t, ZipDiscard> zip_;
  std::string prefix_;  // "archive/"
  std::map<std::string, zip_uint64_t> entries_;  // storage key -> entry index
};

ZipCheckpoint::ZipCheckpoint(const std::string& path, std::shared_ptr<MappedFile> file)
    : TorchCheckpoint(path), file_(std::move(file)) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(file_->data(), file_->size(), 0, &error);
  zip_t* z = source ? zip_open_from_source(source, ZIP_RDONLY, &error) : nullptr;
  if (!z) {
    if (source) zip_source_free(source);
    const std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw LoadError(path_, "not a readable zip archive: " + why);
  }
  zip_error_fini(&error);
  zip_.reset(z);

  // The archive folder is whatever directory holds data.pkl ("archive/", or the file stem for
  // torch 1.6-1.x).
  std::vector<std::string> candidates;
  const zip_int64_t count = zip_get_num_entries(z, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    const char* raw = zip_get_name(z, static_cast<zip_uint64_t>(i), 0);
    if (!raw) continue;
    const std::string name = raw;
    if (name == "data.pkl" || (name.size() > 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0))
      candidates.push_back(name);
  }
  if (candidates.empty())
    throw LoadError(path_, "zip archive has no data.pkl (not a PyTorch checkpoint; TorchScript and "
                           "other zip files are not supported)");
  if (candidates.size() > 1)
    throw LoadError(path_, "zip archive has several data.pkl entries ('" + candidates[0] + "', '" + candidates[1] + "')");
  prefix_ = candidates[0].substr(0, candidates[0].size() - 8);

  if (zip_name_locate(z, (prefix_ + "byteorder").c_str(), 0) >= 0) {
    const std::string order = read_small(prefix_ + "byteorder", 16);
    if (order != "little") throw LoadError(path_, "byte order '" + order + "' is not supported (only little-endian)");
  }

  const zip_uint64_t pkl = static_cast<zip_uint64_t>(zip_name_locate(z, candidates[0].c_str(), 0));
  const zip_stat_t st = checked_stat(pkl, candidates[0]);
  if (st.size > kMaxPickleBytes)
    throw LoadError(path_, candidates[0], "is " + std::to_string(st.size) + " bytes, more than the 256 MiB allowed");
  std::vector<uint8_t> pickle(static_cast<size_t>(st.size));
  read_entry(pkl, candidates[0], pickle.data(), st.size, "");
  index(unpickle(pickle.data(), pickle.size(), path_));

  // Check every storage entry a tensor needs before anything is allocated for it.
  for (const auto& [key, s] : storages_) {
    if (s.users == 0) continue;
    const std::string entry = prefix_ + "data/" + key;
    const zip_int64_t at = zip_name_locate(z, entry.c_str(), 0);
    if (at < 0) throw LoadError(path_, s.first_user, "storage entry '" + entry + "' is missing from the archive");
    const zip_stat_t es = checked_stat(static_cast<zip_uint64_t>(at), entry);
    const uint64_t needed = s.numel * dtype_size(s.dtype);
    if (es.size != needed)
      throw LoadError(path_, s.first_user,
                      "storage entry '" + entry + "' holds " + std::to_string(es.size) + " bytes but the pickle says " +
                          std::to_string(s.numel) + " " + dtype_name(s.dtype) + " elements (" +
                          std::to_string(needed) + " bytes)");
    entries_[key] = static_cast<zip_uint64_t>(at);
  }
}

// Sizes as declared by the central directory, refused when they cannot be honest.
zip_stat_t ZipCheckpoint::checked_stat(zip_uint64_t index, const std::string& entry) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(zip_.get(), index, 0, &st) != 0)
    throw LoadError(path_, entry, std::string("cannot read zip entry: ") + zip_strerror(zip_.get()));
  const zip_uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
  if ((st.valid & need) != need) throw LoadError(path_, entry, "zip entry has no declared sizes");
  if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
    throw LoadError(path_, entry, "zip entry is encrypted");
  if (st.comp_size > file_->size())
    throw LoadError(path_, entry, "zip entry declares " + std::to_string(st.comp_size) +
                                      " compressed bytes in a file of " + std::to_string(file_->size()));
  if (st.comp_method == ZIP_CM_STORE && st.size != st.comp_size)
    throw LoadError(path_, entry, "stored zip entry declares " + std::to_string(st.size) + " bytes but holds " +
                                      std::to_string(st.comp_size));
  if (st.comp_method != ZIP_CM_STORE && st.size > std::max<uint64_t>(st.comp_size, 1) * kMaxCompressionRatio)
    throw LoadError(path_, entry, "zip entry declares " + std::to_string(st.size) + " bytes from " +
                                      std::to_string(st.comp_size) +
                                      " compressed (ratio above 1000:1, refused as a likely zip bomb)");
  return st;
}

void ZipCheckpoint::read_entry(zip_uint64_t index, const std::string& entry, uint8_t* out, uint64_t size,
                               const std::string& tensor) {
  const auto fail = [&](const std::string& what) {
    if (tensor.empty()) throw LoadError(path_, entry, what);
    throw LoadError(path_, tensor, "storage entry '" + entry + "': " + what);
  };
  std::unique_ptr<zip_file_t, ZipFileClose> f(zip_fopen_index(zip_.get(), index, 0));
  if (!f) fail(std::string("cannot open: ") + zip_strerror(zip_.get()));
  uint64_t done = 0;
  while (done < size) {
    const zip_int64_t n = zip_fread(f.get(), out + done, size - done);
    if (n < 0) fail(std::string("read failed: ") + zip_file_strerror(f.get()));
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  uint8_t extra = 0;  // reading to the end makes libzip verify the CRC
  const zip_int64_t tail = done == size ? zip_fread(f.get(), &extra, 1) : 0;
  if (tail < 0) fail(std::string("read failed: ") + zip_file_strerror(f.get()));
  if (done != size || tail != 0)
    fail("holds " + std::string(done != size ? "only " : "more than ") + std::to_string(done) +
         " bytes, expected " + std::to_string(size));
}

std::string ZipCheckpoint::read_small(const std::string& entry, uint64_t max_bytes) {
  const zip_uint64_t index = static_cast<zip_uint64_t>(zip_name_locate(zip_.get(), entry.c_str(), 0));
  const zip_stat_t st = checked_stat(index, entry);
  if (st.size > max_bytes) throw LoadError(path_, entry, "is larger than " + std::to_string(max_bytes) + " bytes");
  std::string out(static_cast<size_t>(st.size), '\0');
  read_entry(index, entry, reinterpret_cast<uint8_t*>(out.data()), st.size, "");
  return out;
}

at::Tensor ZipCheckpoint::read_storage(const std::string& key, const Storage& s, const std::string& tensor) {
  at::Tensor buffer = at::empty({static_cast<int64_t>(s.numel)}, at::TensorOptions().dtype(to_scalar_type(s.dtype)));
  read_entry(entries_.at(key), prefix_ + "data/" + key, static_cast<uint8_t*>(buffer.data_ptr()),
             s.numel * dtype_size(s.dtype), tensor);
  return buffer;
}

// torch < 1.6: magic, protocol version, sys_info, the object, the sorted storage keys, then per
// key an int64 element count and the raw little-endian elements.
class LegacyCheckpoint final : public TorchCheckpoint {
public:
  LegacyCheckpoint(const std::string& path, std::shared_ptr<MappedFile> file);
  std::string format() const override { return "pytorch-legacy"; }

private:
  at::Tensor read_storage(const std::string& key, const Storage& s, const std::string& tensor) override;

  std::shared_ptr<MappedFile> file_;
  std::map<std::string, uint64_t> offsets_;  // storage key -> first data byte
};

LegacyCheckpoint::LegacyCheckpoint(const std::string& path, std::shared_ptr<MappedFile> file)
    : TorchCheckpoint(path), file_(std::move(file)) {
  const uint8_t* data = file_->data();
  const uint64_t size = file_->size();
  uint64_t pos = legacy_magic_length(data, size);
  if (pos == 0) throw LoadError(path_, "not a legacy PyTorch file (no magic number)");
  const auto next = [&] {
    PickleDocument doc = unpickle(data + pos, size - pos, path_);
    pos += doc.consumed();
    return doc;
  };
  const PickleDocument version = next();
  if (version.root().kind != PickleKind::Int || version.root().integer != kLegacyProtocolVersion)
    throw LoadError(path_, "unsupported legacy protocol version (expected 1001)");
  const PickleDocument sys_info = next();
  if (sys_info.root().kind != PickleKind::Dict) throw LoadError(path_, "legacy sys_info is not a dict");
  const PickleValue* little = sys_info.root().get("little_endian");
  if (little && little->kind == PickleKind::Bool && !little->integer)
    throw LoadError(path_, "big-endian legacy checkpoints are not supported");
  index(next());

  const PickleDocument keys = next();
  if (keys.root().kind != PickleKind::List) throw LoadError(path_, "legacy storage key list is not a list");
  for (const PickleValue* k : keys.root().items) {
    if (k->kind != PickleKind::Str) throw LoadError(path_, "legacy storage key is not a string");
    const auto it = storages_.find(k->text);
    if (it == storages_.end()) throw LoadError(path_, "storage '" + k->text + "' is in the key list but not in the pickle");
    if (size - pos < 8) throw LoadError(path_, "file ends before storage '" + k->text + "'");
    uint64_t numel = 0;
    for (int i = 7; i >= 0; --i) numel = (numel << 8) | data[pos + static_cast<uint64_t>(i)];
    pos += 8;
    if (numel != it->second.numel)
      throw LoadError(path_, "storage '" + k->text + "' holds " + std::to_string(numel) +
                                 " elements but the pickle says " + std::to_string(it->second.numel));
    const uint64_t bytes = numel * dtype_size(it->second.dtype);  // numel <= 2^62 / element size
    if (bytes > size - pos)
      throw LoadError(path_, "storage '" + k->text + "' (" + std::to_string(bytes) + " bytes) runs past the end of the file");
    if (!offsets_.emplace(k->text, pos).second) throw LoadError(path_, "storage '" + k->text + "' is listed twice");
    pos += bytes;
  }
  for (const auto& [key, s] : storages_)
    if (s.users > 0 && !offsets_.count(key))
      throw LoadError(path_, s.first_user, "storage '" + key + "' has no data in the file");
}

at::Tensor LegacyCheckpoint::read_storage(const std::string& key, const Storage& s, const std::string& tensor) {
  at::Tensor buffer = at::empty({static_cast<int64_t>(s.numel)}, at::TensorOptions().dtype(to_scalar_type(s.dtype)));
  // Copied: the data in the file is not aligned for its element type.
  if (s.numel) std::memcpy(buffer.data_ptr(), file_->data() + offsets_.at(key), s.numel * dtype_size(s.dtype));
  return buffer;
}

}  // namespace

bool is_zip_file(const uint8_t* data, size_t size) {
  return size >= 4 && data[0] == 'P' && data[1] == 'K' &&
         ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6));
}

bool is_legacy_torch_file(const uint8_t* data, size_t size) { return legacy_magic_length(data, size) > 0; }

std::unique_ptr<WeightReader> open_torch_checkpoint(const std::string& path) {
  auto file = MappedFile::open(path);
  if (is_zip_file(file->data(), file->size())) return std::make_unique<ZipCheckpoint>(path, std::move(file));
  if (is_legacy_torch_file(file->data(), file->size()))
    return std::make_unique<LegacyCheckpoint>(path, std::move(file));
  throw LoadError(path, "not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save file)");
}

}  // namespace genvis::io
