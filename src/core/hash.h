// SHA-256 (OpenSSL), used for model hashes in the AUTOMATIC1111 infotext ("Model hash" = first
// 10 hex digits of the file's SHA-256, A1111's "AutoV2").
#pragma once
#include <string>

namespace genvis {

std::string sha256_hex(const void* data, size_t size);
std::string sha256_file_hex(const std::string& path);
inline std::string model_hash(const std::string& path) { return sha256_file_hex(path).substr(0, 10); }

}  // namespace genvis
