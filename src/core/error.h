// Typed errors. The library throws these; the CLI catches once in main() and prints one line.
// Each kind maps to a documented exit code (README "Exit codes").
#pragma once
#include <stdexcept>
#include <string>

namespace genvis {

enum class ErrorKind { Runtime = 1, Usage = 2, Load = 3 };

class Error : public std::runtime_error {
public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }

private:
  ErrorKind kind_;
};

// Something went wrong while running (I/O failure, out of memory, numerical problem).
class RuntimeError : public Error {
public:
  explicit RuntimeError(const std::string& message) : Error(ErrorKind::Runtime, message) {}
};

// The user asked for something impossible: bad option value, wrong size, unknown name.
class UsageError : public Error {
public:
  explicit UsageError(const std::string& message) : Error(ErrorKind::Usage, message) {}
};

// A model, weight file, image or config could not be loaded. Names the file and, where there
// is one, the tensor or key.
class LoadError : public Error {
public:
  LoadError(const std::string& file, const std::string& what)
      : Error(ErrorKind::Load, file.empty() ? what : file + ": " + what), file_(file) {}
  LoadError(const std::string& file, const std::string& key, const std::string& what)
      : Error(ErrorKind::Load, (file.empty() ? "" : file + ": ") + "'" + key + "': " + what),
        file_(file), key_(key) {}
  const std::string& file() const { return file_; }
  const std::string& key() const { return key_; }

private:
  std::string file_, key_;
};

}  // namespace genvis
