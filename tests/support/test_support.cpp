#include "support/test_support.h"

#include "io/weights.h"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace genvis::test {

nlohmann::json fixture_manifest() {
  // Python's json writes -Infinity (a scheduler case), which is not JSON.
  std::string text = read_bytes(fixtures_dir() + "/manifest.json");
  for (const std::string bad : {"-Infinity", "Infinity", "NaN"})
    for (size_t p = text.find(": " + bad); p != std::string::npos; p = text.find(": " + bad, p))
      text.replace(p, bad.size() + 2, ": null");
  return nlohmann::json::parse(text);
}

nlohmann::json fixture_case(const std::string& case_name) {
  const nlohmann::json manifest = fixture_manifest();
  for (const auto& c : manifest.at("cases"))
    if (c.at("name") == case_name) return c;
  throw std::runtime_error("manifest.json has no case " + case_name);
}

std::vector<int64_t> tensor_row(const at::Tensor& t, int64_t i) {
  const at::Tensor r = t[i].contiguous().to(at::kLong);
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()};
}

FixtureFiles fixture_files(const std::string& case_name) {
  FixtureFiles f;
  const nlohmann::json c = fixture_case(case_name);  // bound first: a temporary's .at() would dangle
  for (const auto& file : c.at("files")) {
    const std::string path = fixtures_dir() + "/" + file.get<std::string>();
    if (path.ends_with("config.json")) f.config = path;
    else if (path.ends_with("io.safetensors")) f.io = path;
    else if (path.ends_with(".safetensors")) f.weights = path;
  }
  return f;
}

Tolerance fixture_tolerance(const std::string& case_name, const std::string& output) {
  const nlohmann::json c = fixture_case(case_name);
  nlohmann::json t = c.at("tolerance");
  if (!output.empty() && c.contains("tolerance_per_output") && c["tolerance_per_output"].contains(output))
    t = c["tolerance_per_output"][output];
  return {t.at("max_abs").get<double>(), t.at("rel_l2").get<double>()};
}

void expect_contains(const std::string& what, std::initializer_list<const char*> parts) {
  EXPECT_FALSE(what.empty()) << "no LoadError";
  for (const char* part : parts) EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
}

void expect_close(const at::Tensor& actual, const at::Tensor& expected, const Tolerance& tol, const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const at::Tensor a = actual.to(at::kDouble), e = expected.to(at::kDouble);
  const double max_abs = (a - e).abs().max().item<double>();
  const double rel_l2 = ((a - e).norm() / e.norm()).item<double>();
  EXPECT_LE(max_abs, tol.max_abs) << what;
  EXPECT_LE(rel_l2, tol.rel_l2) << what;
  std::cout << "[parity] " << what << ": max_abs " << max_abs << " rel_l2 " << rel_l2 << "\n";
}

std::string shared_dir() {
  if (const char* env = std::getenv("GENVIS_SHARED_DIR")) return env;
  return fs::weakly_canonical(fs::path(GENVIS_SOURCE_DIR) / ".." / "shared").string();
}
std::string fixtures_dir() { return shared_dir() + "/fixtures"; }
bool have_fixtures() { return fs::is_directory(fixtures_dir()); }

TempDir::TempDir() {
  static std::atomic<int> n{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "tmp";
  for (auto& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.') c = '_';
  path_ = std::string(GENVIS_BINARY_DIR) + "/test-tmp/" + name + "-" + std::to_string(::getpid()) + "-" +
          std::to_string(n++);
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

at::Tensor flat_weights(const std::string& path) {
  const auto r = io::open_weights(path);
  std::vector<at::Tensor> all;
  for (const auto& t : r->tensors()) all.push_back(r->load(t.name).flatten());
  return at::cat(all);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

CommandResult run_command(const std::string& command_line) {
  TempDir dir;
  const std::string out = dir.file("stdout"), err = dir.file("stderr");
  const std::string full = command_line + " >" + shell_quote(out) + " 2>" + shell_quote(err) + " </dev/null";
  const int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_bytes(out);
  r.err = read_bytes(err);
  return r;
}

std::string clip_vocab() { return shared_dir() + "/data/bpe_simple_vocab_16e6.txt.gz"; }

}  // namespace genvis::test
