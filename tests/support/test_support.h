// Helpers shared by the tests: where ../shared is, temporary directories, running the CLI.
#pragma once
#include "core/error.h"

#include <ATen/ATen.h>
#include <initializer_list>
#include <gtest/gtest.h>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

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
#ifdef GENVIS_CLI
// The genvis command (the build's binary) with these arguments.
inline CommandResult run_genvis(const std::string& args) { return run_command(std::string(GENVIS_CLI) + " " + args); }
#endif
// Single-quotes a string for a shell command line.
std::string shell_quote(const std::string& s);

void write_bytes(const std::string& path, const std::string& bytes);
// The CLIP vocabulary in ../shared/data.
std::string clip_vocab();
std::string read_bytes(const std::string& path);
// Each line of a JSONL file (a recipe's validation log) parsed.
std::vector<nlohmann::json> read_jsonl(const std::string& path);
// Every tensor of a weights file, flattened and concatenated in the file's order (exact-resume
// comparisons of two trained models).
at::Tensor flat_weights(const std::string& path);

// manifest.json (Python's -Infinity/Infinity/NaN read as null), and one case of it by name
// (std::runtime_error when there is none).
nlohmann::json fixture_manifest();
nlohmann::json fixture_case(const std::string& case_name);
// Row i of an integer tensor (token ids) as int64 values.
std::vector<int64_t> tensor_row(const at::Tensor& t, int64_t i);

// A model case's files by their names (paths under fixtures_dir()): config.json, io.safetensors and
// the other .safetensors (the weights).
struct FixtureFiles {
  std::string config, weights, io;
};
FixtureFiles fixture_files(const std::string& case_name);

// A fixture case's tolerance from manifest.json: tolerance_per_output[output] when given and
// present, else the case's tolerance.
struct Tolerance {
  double max_abs = 0, rel_l2 = 0;
};
Tolerance fixture_tolerance(const std::string& case_name, const std::string& output = "");
// EXPECTs max |a - e| <= max_abs and |a - e| / |e| <= rel_l2 (in f64), printing both.
void expect_close(const at::Tensor& actual, const at::Tensor& expected, const Tolerance& tolerance,
                  const std::string& what);

// The message of the error of type E that `f` throws, or "" when it throws none.
template <typename E, typename F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}
template <typename F>
std::string load_error(F&& f) {
  return thrown<LoadError>(std::forward<F>(f));
}
template <typename F>
std::string usage_error(F&& f) {
  return thrown<UsageError>(std::forward<F>(f));
}
// EXPECTs an error message (non-empty) containing every part.
void expect_contains(const std::string& what, std::initializer_list<const char*> parts);

}  // namespace genvis::test

#define GENVIS_REQUIRE_FIXTURES()                                                          \
  do {                                                                                     \
    if (!::genvis::test::have_fixtures())                                                  \
      GTEST_SKIP() << "fixtures folder " << ::genvis::test::fixtures_dir() << " is absent"; \
  } while (0)
