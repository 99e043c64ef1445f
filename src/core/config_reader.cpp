#include "core/config_reader.h"

#include "core/error.h"
#include "core/file.h"

namespace genvis::config {

using json = nlohmann::json;

std::string key_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

bool check_keys(const json& j, const std::string& path, const std::set<std::string>& required,
                const std::set<std::string>& optional, Problems& problems) {
  if (!j.is_object()) {
    problems.push_back((path.empty() ? std::string("the config") : path) + " must be a JSON object (got " +
                       j.type_name() + ")");
    return false;
  }
  for (const auto& [key, value] : j.items())
    if (!key.starts_with('_') && !required.count(key) && !optional.count(key))
      problems.push_back("unknown key " + key_path(path, key));
  for (const auto& key : required)
    if (!j.contains(key)) problems.push_back("missing key " + key_path(path, key));
  return true;
}

std::string describe(const Problems& problems) {
  std::string all = std::to_string(problems.size()) + " problem(s): ";
  for (size_t i = 0; i < problems.size(); ++i) all += (i ? "; " : "") + problems[i];
  return all;
}

namespace detail {

void wrong_type(const std::string& path, std::string_view key, const char* expected, const json& got,
                Problems& problems) {
  std::string shown = got.dump();
  if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
  problems.push_back(key_path(path, key) + " has the wrong type: expected " + expected + ", got " + shown);
}

}  // namespace detail

bool read_int_or_list(const json& j, const std::string& path, const char* key, std::vector<int64_t>& out,
                      Problems& problems) {
  if (!j.is_object()) return false;
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (it->is_number_integer()) {
    out = {it->get<int64_t>()};
    return true;
  }
  if (!detail::holds<std::vector<int64_t>>(*it)) {
    detail::wrong_type(path, key, "an integer or a list of integers", *it, problems);
    return false;
  }
  out = it->get<std::vector<int64_t>>();
  return true;
}

json section(const json& j, const char* key) {
  return j.is_object() && j.contains(key) ? j.at(key) : json::object();
}

json read_file(const std::string& path, size_t max_bytes) {
  if (!file_exists(path)) throw LoadError(path, "no such config file");
  try {
    return json::parse(read_text_file(path, max_bytes));
  } catch (const json::exception& e) {
    throw LoadError(path, std::string("not valid JSON: ") + e.what());
  }
}

}  // namespace genvis::config
