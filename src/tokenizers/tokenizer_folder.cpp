#include "tokenizers/tokenizer_folder.h"

#include "core/error.h"
#include "core/file.h"

#include <filesystem>

namespace genvis::tokenizers {
namespace {

namespace fs = std::filesystem;
constexpr size_t kMaxTokenizerFileBytes = size_t{64} << 20;
constexpr const char* kFiles[] = {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"};

}  // namespace

TokenizerFolder TokenizerFolder::read(const std::string& dir) {
  TokenizerFolder t;
  for (const char* name : kFiles) {
    const std::string path = (fs::path(dir) / name).string();
    if (file_exists(path)) t.files[name] = read_text_file(path, kMaxTokenizerFileBytes);
  }
  for (const char* name : {"vocab.json", "merges.txt"})
    if (!t.files.count(name)) throw LoadError((fs::path(dir) / name).string(), "tokenizer file is missing");
  return t;
}

void TokenizerFolder::write(const std::string& dir) const {
  fs::create_directories(dir);
  for (const auto& [name, contents] : files) write_file_atomic((fs::path(dir) / name).string(), contents);
}

}  // namespace genvis::tokenizers
