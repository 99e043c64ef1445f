#include "tokenizers/sentencepiece_model.h"

#include "core/error.h"
#include "core/file.h"
#include "tokenizers/sentencepiece_abi.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace genvis::tokenizers {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModuleName = "libgenvis_sentencepiece.so";
constexpr size_t kMaxModelBytes = size_t{512} << 20;

// ModelProto field 3 (normalizer_spec, length-delimited) holding NormalizerSpec field 3
// (add_dummy_prefix, varint) = 0. Parsing merges a repeated singular message field into the
// first occurrence, so appending this turns only that flag off.
constexpr char kNoDummyPrefix[] = {0x1A, 0x02, 0x18, 0x00};

struct Module {
  std::string path, error;  // error: why it could not be used ("" once loaded)
  genvis_spm_load_fn load = nullptr;
  genvis_spm_free_fn free = nullptr;
  genvis_spm_piece_size_fn piece_size = nullptr;
  genvis_spm_piece_to_id_fn piece_to_id = nullptr;
  genvis_spm_id_to_piece_fn id_to_piece = nullptr;
  genvis_spm_encode_fn encode = nullptr;
};

// The file this code was loaded from: the executable, or libgenvis.so when linked as a library.
fs::path this_library() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&this_library), &info) == 0 || !info.dli_fname) return {};
  std::error_code ec;
  const fs::path p = fs::canonical(info.dli_fname, ec);
  return ec ? fs::path() : p;
}

template <typename F>
F symbol(void* handle, const char* name, std::string& error) {
  void* p = dlsym(handle, name);
  if (!p && error.empty()) error = std::string("has no symbol ") + name;
  return reinterpret_cast<F>(p);
}

Module open_module() {
  Module m;
  const auto candidates = sentencepiece_module_candidates();
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) {
      m.path = c;
      break;
    }
  }
  if (m.path.empty()) {
    std::string looked;
    for (const auto& c : candidates) looked += (looked.empty() ? "" : ", ") + c;
    m.error = std::string("the SentencePiece module ") + kModuleName + " was not found (looked in: " + looked +
              "); it is built with genvis (target genvis_sentencepiece) and installed in lib/genvis; "
              "GENVIS_SENTENCEPIECE_MODULE may name it";
    return m;
  }
  // RTLD_DEEPBIND: the module and libsentencepiece resolve their own protobuf symbols first. The
  // sanitizer runtimes refuse it (a sanitized build links no libtorch, so nothing clashes there).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr int kFlags = RTLD_NOW | RTLD_LOCAL;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
  constexpr int kFlags = RTLD_NOW | RTLD_LOCAL;
#else
  constexpr int kFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
#else
  constexpr int kFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
  void* handle = dlopen(m.path.c_str(), kFlags);
  if (!handle) {
    const char* why = dlerror();
    m.error = std::string("cannot open the SentencePiece module: ") + (why ? why : "dlopen failed") +
              " (it needs Debian's libsentencepiece0)";
    return m;
  }
  // Never closed: models may live until exit.
  std::string missing;
  const auto version = symbol<genvis_spm_abi_version_fn>(handle, "genvis_spm_abi_version", missing);
  m.load = symbol<genvis_spm_load_fn>(handle, "genvis_spm_load", missing);
  m.free = symbol<genvis_spm_free_fn>(handle, "genvis_spm_free", missing);
  m.piece_size = symbol<genvis_spm_piece_size_fn>(handle, "genvis_spm_piece_size", missing);
  m.piece_to_id = symbol<genvis_spm_piece_to_id_fn>(handle, "genvis_spm_piece_to_id", missing);
  m.id_to_piece = symbol<genvis_spm_id_to_piece_fn>(handle, "genvis_spm_id_to_piece", missing);
  m.encode = symbol<genvis_spm_encode_fn>(handle, "genvis_spm_encode", missing);
  if (!missing.empty()) {
    m.error = "not a genvis SentencePiece module: " + missing;
  } else if (version() != kGenvisSpmAbiVersion) {
    m.error = "SentencePiece module interface version " + std::to_string(version()) + ", this genvis needs " +
              std::to_string(kGenvisSpmAbiVersion) + " (a module from another build?)";
  }
  return m;
}

const Module& module() {
  static const Module m = open_module();
  if (!m.error.empty()) throw LoadError(m.path, m.error);
  return m;
}

void collect_error(void* context, const char* message) { *static_cast<std::string*>(context) = message; }

}  // namespace

std::vector<std::string> sentencepiece_module_candidates() {
  if (const char* env = std::getenv("GENVIS_SENTENCEPIECE_MODULE"); env && *env) return {env};
  std::vector<fs::path> dirs;
  std::error_code ec;
  if (const fs::path exe = fs::read_symlink("/proc/self/exe", ec); !ec) dirs.push_back(exe.parent_path());
  if (const fs::path lib = this_library(); !lib.empty()) dirs.push_back(lib.parent_path());
  std::vector<std::string> out;
  for (const auto& dir : dirs)
    for (const fs::path& p : {dir / kModuleName, dir / "genvis" / kModuleName, dir.parent_path() / "lib" / "genvis" / kModuleName})
      out.push_back(p.lexically_normal().string());
#ifdef GENVIS_SENTENCEPIECE_MODULE_INSTALL
  out.push_back(GENVIS_SENTENCEPIECE_MODULE_INSTALL);
#endif
#ifdef GENVIS_SENTENCEPIECE_MODULE_BUILD
  out.push_back(GENVIS_SENTENCEPIECE_MODULE_BUILD);
#endif
  std::vector<std::string> unique;
  for (const auto& c : out)
    if (std::find(unique.begin(), unique.end(), c) == unique.end()) unique.push_back(c);
  return unique;
}

SentencePieceModel SentencePieceModel::load(const std::string& path, const SentencePieceOptions& options) {
  const std::vector<uint8_t> data = read_file(path, kMaxModelBytes);
  return from_bytes(std::string(data.begin(), data.end()), path, options);
}

SentencePieceModel SentencePieceModel::from_bytes(std::string bytes, const std::string& source,
                                                  const SentencePieceOptions& options) {
  if (bytes.empty()) throw LoadError(source, "not a SentencePiece model: the file is empty");
  const Module& m = module();
  if (options.disable_dummy_prefix) bytes.append(kNoDummyPrefix, sizeof(kNoDummyPrefix));
  std::string error;
  genvis_spm* raw = m.load(bytes.data(), bytes.size(), collect_error, &error);
  if (!raw) {
    // libsentencepiece reports a failed parse as "Internal: <file>(<line>) [model_proto->ParseFromArray(...)]".
    if (error.find("ParseFromArray") != std::string::npos) error = "not a serialized ModelProto (truncated or another format)";
    else if (error.rfind("Internal: ", 0) == 0) error = error.substr(10);
    throw LoadError(source, "not a SentencePiece model: " + error);
  }
  SentencePieceModel model;
  model.model_ = std::shared_ptr<genvis_spm>(raw, m.free);
  model.source_ = source;
  if (model.size() <= 0) throw LoadError(source, "not a SentencePiece model: it has no pieces");
  return model;
}

std::vector<SentencePiece> SentencePieceModel::encode(std::string_view text) const {
  const Module& m = module();
  std::vector<SentencePiece> out;
  std::string error;
  const auto emit = [](void* context, const char* piece, size_t size, int id) {
    static_cast<std::vector<SentencePiece>*>(context)->push_back({std::string(piece, size), id});
  };
  if (m.encode(model_.get(), text.data(), text.size(), emit, &out, collect_error, &error) != 0)
    throw RuntimeError(source_ + ": SentencePiece encoding failed: " + error);
  return out;
}

int64_t SentencePieceModel::size() const { return module().piece_size(model_.get()); }

int64_t SentencePieceModel::piece_to_id(std::string_view piece) const {
  return module().piece_to_id(model_.get(), piece.data(), piece.size());
}

std::optional<std::string> SentencePieceModel::id_to_piece(int64_t id) const {
  if (id < 0 || id >= size()) return std::nullopt;
  size_t n = 0;
  const char* p = module().id_to_piece(model_.get(), static_cast<int>(id), &n);
  if (!p) return std::nullopt;
  return std::string(p, n);
}

bool SentencePieceModel::has_piece(std::string_view piece) const {
  const auto text = id_to_piece(piece_to_id(piece));
  return text && *text == piece;
}

}  // namespace genvis::tokenizers
