// The benchmarks' command lines: options read left to right, each with one value (or a bare
// flag); anything wrong prints "<program>: <why>" and the usage line and exits 2, never an
// uncaught exception.
//
//   bench::Args args(argc, argv, "bench_ldm", "[--model DIR] [--batch N] [--dtype f32,bf16]");
//   while (args.next()) {
//     if (args.is("--model")) o.model = args.text();
//     else if (args.is("--batch")) o.batch = args.count();
//     else if (args.is("--dtype")) o.dtypes = args.list();
//     else if (args.is("--keep")) o.keep = true;          // a flag: no value read
//     else args.unknown();
//   }
//   if (o.batch < 1) args.fail("--batch must be >= 1");
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace genvis::bench {

// "bench_x: why" and "usage: bench_x USAGE" on stderr, exit status 2.
[[noreturn]] inline void usage_exit(const std::string& program, const std::string& usage, const std::string& why) {
  std::fprintf(stderr, "%s: %s\nusage: %s %s\n", program.c_str(), why.c_str(), program.c_str(), usage.c_str());
  std::exit(2);
}

// The whole of `text` as an integer (no sign for min 0), nullopt otherwise.
inline std::optional<int64_t> parse_integer(const std::string& text, int64_t min = 0) {
  if (text.empty() || (min >= 0 && text[0] == '-')) return std::nullopt;
  try {
    size_t used = 0;
    const long long n = std::stoll(text, &used);
    if (used != text.size() || n < min) return std::nullopt;
    return n;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// `text` cut at every `sep` ("a,b" -> {"a", "b"}; "" -> {""}).
inline std::vector<std::string> split_list(const std::string& text, char sep = ',') {
  std::vector<std::string> parts;
  for (size_t p = 0; p <= text.size();) {
    const size_t q = std::min(text.find(sep, p), text.size());
    parts.push_back(text.substr(p, q - p));
    p = q + 1;
  }
  return parts;
}

class Args {
 public:
  Args(int argc, char** argv, std::string program, std::string usage)
      : argc_(argc), argv_(argv), program_(std::move(program)), usage_(std::move(usage)) {}

  // Moves to the next option; false after the last. "-h"/"--help" print the usage and exit 0.
  bool next() {
    if (++i_ >= argc_) return false;
    name_ = argv_[i_];
    if (name_ == "-h" || name_ == "--help") {
      std::printf("usage: %s %s\n", program_.c_str(), usage_.c_str());
      std::exit(0);
    }
    return true;
  }
  bool is(const char* name) const { return name_ == name; }
  const std::string& name() const { return name_; }

  // The option's value, as given.
  std::string text() {
    if (i_ + 1 >= argc_) fail(name_ + " needs a value");
    return argv_[++i_];
  }
  // A non-negative integer value.
  int64_t count() {
    const std::string v = text();
    const auto n = parse_integer(v);
    if (!n) fail(name_ + " needs a non-negative integer, got '" + v + "'");
    return *n;
  }
  // A finite number.
  double real() {
    const std::string v = text();
    try {
      size_t used = 0;
      const double x = std::stod(v, &used);
      if (used == v.size() && std::isfinite(x)) return x;
    } catch (const std::exception&) {
    }
    fail(name_ + " needs a number, got '" + v + "'");
  }
  // A comma-separated value; no item may be empty.
  std::vector<std::string> list() {
    const std::string v = text();
    std::vector<std::string> items = split_list(v);
    for (const auto& s : items)
      if (s.empty()) fail(name_ + " needs a comma-separated list, got '" + v + "'");
    return items;
  }
  // A comma-separated list of non-negative integers.
  std::vector<int64_t> counts() {
    std::vector<int64_t> out;
    for (const auto& s : list()) {
      const auto n = parse_integer(s);
      if (!n) fail(name_ + " needs non-negative integers, got '" + s + "'");
      out.push_back(*n);
    }
    return out;
  }

  [[noreturn]] void unknown() const { fail("unknown option " + name_); }
  [[noreturn]] void fail(const std::string& why) const { usage_exit(program_, usage_, why); }

 private:
  int argc_;
  char** argv_;
  std::string program_, usage_, name_;
  int i_ = 0;
};

}  // namespace genvis::bench
