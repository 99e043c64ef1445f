// Reading JSON configs (model configs, recipe configs, training sections) so that one run reports
// every problem at once: unknown keys, missing keys and wrong types, each named by its path.
//
//   std::vector<std::string> problems;
//   config::check_keys(j, "", {"steps"}, {"lr", "seed"}, problems);   // "unknown key foo", "missing key steps"
//   config::read(j, "", "steps", c.steps, problems);                  // "steps has the wrong type: ..."
//   config::read(j, "vision_config", "image_size", c.image_size, problems);  // "vision_config.image_size ..."
//   if (!problems.empty()) throw LoadError(path, "invalid X config: " + config::describe(problems));
//
// Keys that start with '_' are metadata (diffusers' _class_name and _diffusers_version,
// transformers' _name_or_path, a "_comment") and are never reported as unknown.
// A JSON null keeps the field's default (diffusers writes null for "not set"); on a std::optional
// field it resets it to nullopt.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace genvis::config {

using Problems = std::vector<std::string>;

// "path.key", or "key" when path is empty.
std::string key_path(const std::string& path, std::string_view key);

// Appends "unknown key PATH.k" for each key of j that is neither required, optional nor metadata,
// and "missing key PATH.k" for each required key j lacks. False (and one problem) when j is not an
// object.
bool check_keys(const nlohmann::json& j, const std::string& path, const std::set<std::string>& required,
                const std::set<std::string>& optional, Problems& problems);

// "N problem(s): a; b; c".
std::string describe(const Problems& problems);

namespace detail {

template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {
  using value_type = T;
};

// Whether v holds a T (integers for integral types, any number for floating point, true/false for
// bool, strings, and lists whose every element qualifies).
template <typename T>
bool holds(const nlohmann::json& v) {
  if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
  else if constexpr (std::is_same_v<T, std::string>) return v.is_string();
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>)
    return v.is_number_unsigned() || (v.is_number_integer() && v.template get<int64_t>() >= 0);
  else if constexpr (std::is_integral_v<T>) return v.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>) return v.is_number();
  else if constexpr (std::is_same_v<T, nlohmann::json>) return true;
  else if constexpr (is_vector<T>::value) {
    if (!v.is_array()) return false;
    for (const auto& x : v)
      if (!holds<typename is_vector<T>::value_type>(x)) return false;
    return true;
  } else {
    static_assert(sizeof(T) == 0, "config::read: unsupported field type");
  }
}

template <typename T>
const char* expected() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) return "a non-negative integer";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (is_vector<T>::value) {
    using E = typename is_vector<T>::value_type;
    if constexpr (std::is_same_v<E, std::string>) return "a list of strings";
    else if constexpr (std::is_integral_v<E>) return "a list of integers";
    else if constexpr (std::is_floating_point_v<E>) return "a list of numbers";
    else return "a list";
  } else {
    return "a JSON value";
  }
}

void wrong_type(const std::string& path, std::string_view key, const char* expected, const nlohmann::json& got,
                Problems& problems);

}  // namespace detail

// out = j[key] when j has it with the right type; a problem naming PATH.key when the type is
// wrong (out keeps its value). Returns whether out was set.
template <typename T>
bool read(const nlohmann::json& j, const std::string& path, const char* key, T& out, Problems& problems) {
  if (!j.is_object()) return false;
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!detail::holds<T>(*it)) {
    detail::wrong_type(path, key, detail::expected<T>(), *it, problems);
    return false;
  }
  out = it->template get<T>();
  return true;
}

template <typename T>
bool read(const nlohmann::json& j, const std::string& path, const char* key, std::optional<T>& out,
          Problems& problems) {
  if (!j.is_object()) return false;
  const auto it = j.find(key);
  if (it == j.end()) return false;
  if (it->is_null()) {
    out.reset();
    return true;
  }
  T value{};
  if (!read(j, path, key, value, problems)) return false;
  out = std::move(value);
  return true;
}

// An integer or a list of integers (diffusers' per-block settings such as layers_per_block),
// always as a list.
bool read_int_or_list(const nlohmann::json& j, const std::string& path, const char* key, std::vector<int64_t>& out,
                      Problems& problems);

// j[key] when j is an object holding it, else an empty object (for optional sections).
nlohmann::json section(const nlohmann::json& j, const char* key);

// The JSON of a config file of at most max_bytes; LoadError naming the path when it is missing,
// too large or not valid JSON.
nlohmann::json read_file(const std::string& path, size_t max_bytes = size_t{16} << 20);

// The size limit for a model's config.json (a larger one is not a config).
inline constexpr size_t kMaxModelConfigBytes = size_t{1} << 20;

}  // namespace genvis::config
