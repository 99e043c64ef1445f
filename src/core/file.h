// Files: read-only memory maps, bounded whole-file reads, and atomic writes.
// (No libtorch here: the parsers that fuzzers exercise link against this alone.)
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace genvis {

// A whole file mapped read-only (copy-on-write private mapping, so a tensor that aliases it can
// be written in place without touching the file). Empty files map to size() == 0.
class MappedFile {
public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

private:
  MappedFile(std::string path, uint8_t* data, size_t size) : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  uint8_t* data_;
  size_t size_;
};

// Reads a whole file; throws LoadError if it is larger than max_bytes or unreadable.
std::vector<uint8_t> read_file(const std::string& path, size_t max_bytes);
std::string read_text_file(const std::string& path, size_t max_bytes);

// Writes to "<path>.tmp-<pid>-<n>" in the same directory; commit() fsyncs, renames over `path`
// and fsyncs the directory, so readers see either the old file or the complete new one. If
// commit() is never called (exception, crash) the temporary file is removed and `path` is
// untouched.
class AtomicFile {
public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(const std::string& s) { write(s.data(), s.size()); }
  uint64_t written() const { return written_; }
  void commit();
  const std::string& temp_path() const { return temp_path_; }

private:
  std::string path_, temp_path_;
  int fd_ = -1;
  uint64_t written_ = 0;
  bool committed_ = false;
};

// Convenience: atomically replace `path` with `content`.
void write_file_atomic(const std::string& path, const std::string& content);

bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

}  // namespace genvis
