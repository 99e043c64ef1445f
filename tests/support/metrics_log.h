// Reading a Trainer's metrics.jsonl in tests: the losses in step order and their window means.
#pragma once
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::test {

inline std::vector<double> losses(const std::filesystem::path& metrics) {
  std::vector<double> out;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line).at("loss").get<double>());
  return out;
}

// Mean of v[from, from + count).
inline double mean_of(const std::vector<double>& v, size_t from, size_t count) {
  double s = 0;
  for (size_t i = from; i < from + count; ++i) s += v.at(i);
  return s / static_cast<double>(count);
}

}  // namespace genvis::test
