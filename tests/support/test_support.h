// Helpers shared by the tests: where ../shared is, temporary directories, running the CLI.
#pragma once
#include <gtest/gtest.h>
#include <string>

namespace genvis::test {

// <source>/../shared (the fixtures and data folder beside the checkout).
std::string shared_dir();
std::string fixtures_dir();
// True when ../shared/fixtures exists; tests that need it call GENVIS_REQUIRE_FIXTURES().
bool have_fixtures();

// A fresh empty directory under the build tree, removed at destruction.
class TempDir {
public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs a shell command line, capturing stdout and stderr.
CommandResult run_command(const std::string& command_line);
// Single-quotes a string for a shell command line.
std::string shell_quote(const std::string& s);

void write_bytes(const std::string& path, const std::string& bytes);
// The CLIP vocabulary in ../shared/data.
std::string clip_vocab();
std::string read_bytes(const std::string& path);

}  // namespace genvis::test

#define GENVIS_REQUIRE_FIXTURES()                                                          \
  do {                                                                                     \
    if (!::genvis::test::have_fixtures())                                                  \
      GTEST_SKIP() << "fixtures folder " << ::genvis::test::fixtures_dir() << " is absent"; \
  } while (0)
