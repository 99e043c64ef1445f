#include "core/hash.h"

#include "core/error.h"
#include "core/file.h"

#include <memory>
#include <openssl/evp.h>

namespace genvis {
namespace {

struct Sha256 {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  Sha256() {
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) throw RuntimeError("sha256: OpenSSL init failed");
  }
  void update(const void* p, size_t n) { EVP_DigestUpdate(ctx.get(), p, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out += digits[md[i] >> 4];
      out += digits[md[i] & 15];
    }
    return out;
  }
};

}  // namespace

std::string sha256_hex(const void* data, size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.hex();
}

std::string sha256_file_hex(const std::string& path) {
  const auto file = MappedFile::open(path);
  Sha256 h;
  constexpr size_t kChunk = size_t(1) << 24;
  for (size_t off = 0; off < file->size(); off += kChunk)
    h.update(file->data() + off, std::min(kChunk, file->size() - off));
  return h.hex();
}

}  // namespace genvis
