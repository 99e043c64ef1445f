#include "io/safetensors_header.h"

#include "core/error.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace genvis::io {
namespace {

using json = nlohmann::ordered_json;  // keeps header order: tensors() lists them as written

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// nlohmann silently keeps the last of duplicate keys; the reference rejects them. Track the keys
// of every open object while parsing.
json parse_rejecting_duplicates(const char* begin, const char* end, const std::string& path) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second &&
            duplicate.empty())
          duplicate = parsed.get<std::string>();
        break;
      default: break;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(begin, end, callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (const auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    throw LoadError(path, "header is not valid JSON (" + what + ")");
  }
  if (!duplicate.empty()) throw LoadError(path, duplicate, "appears twice in the header");
  return header;
}

uint64_t as_offset(const json& v, const std::string& path, const std::string& name) {
  if (!v.is_number_unsigned()) throw LoadError(path, name, "data_offsets must be non-negative integers");
  return v.get<uint64_t>();
}

SafetensorsEntry parse_entry(const std::string& name, const json& value, const std::string& path) {
  if (!value.is_object()) throw LoadError(path, name, "header entry is not an object");
  SafetensorsEntry entry;
  entry.info.name = name;
  entry.info.file = path;

  const auto dtype_it = value.find("dtype");
  if (dtype_it == value.end() || !dtype_it->is_string()) throw LoadError(path, name, "missing or non-string dtype");
  const auto dtype = parse_dtype_name(dtype_it->get<std::string>());
  if (!dtype) throw LoadError(path, name, "unknown dtype '" + dtype_it->get<std::string>() + "'");
  entry.info.dtype = *dtype;

  const auto shape_it = value.find("shape");
  if (shape_it == value.end() || !shape_it->is_array()) throw LoadError(path, name, "missing or non-array shape");
  if (shape_it->size() > 64) throw LoadError(path, name, "shape has more than 64 dimensions");
  for (const auto& d : *shape_it) {
    if (!d.is_number_unsigned()) throw LoadError(path, name, "shape must hold non-negative integers");
    const uint64_t v = d.get<uint64_t>();
    if (v > (uint64_t(1) << 62)) throw LoadError(path, name, "dimension " + std::to_string(v) + " is too large");
    entry.info.shape.push_back(static_cast<int64_t>(v));
  }

  const auto off_it = value.find("data_offsets");
  if (off_it == value.end() || !off_it->is_array() || off_it->size() != 2)
    throw LoadError(path, name, "data_offsets must be an array [begin, end]");
  entry.begin = as_offset((*off_it)[0], path, name);
  entry.end = as_offset((*off_it)[1], path, name);
  if (entry.end < entry.begin)
    throw LoadError(path, name, "data_offsets end " + std::to_string(entry.end) + " is before begin " +
                                    std::to_string(entry.begin));

  const auto numel = checked_numel(entry.info.shape);
  const uint64_t elem = dtype_size(entry.info.dtype);
  if (!numel || (*numel != 0 && *numel > UINT64_MAX / elem))
    throw LoadError(path, name, "shape " + shape_string(entry.info.shape) + " overflows");
  entry.info.nbytes = *numel * elem;
  if (entry.end - entry.begin != entry.info.nbytes)
    throw LoadError(path, name, "holds " + std::to_string(entry.end - entry.begin) + " bytes but " +
                                    std::string(dtype_name(entry.info.dtype)) + " " +
                                    shape_string(entry.info.shape) + " needs " + std::to_string(entry.info.nbytes));
  return entry;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const uint8_t* data, uint64_t size, const std::string& path) {
  if (size < 8) throw LoadError(path, "file is " + std::to_string(size) + " bytes, too short for a safetensors header");
  const uint64_t n = read_u64_le(data);
  if (n > kMaxSafetensorsHeader)
    throw LoadError(path, "header length " + std::to_string(n) + " exceeds the " +
                              std::to_string(kMaxSafetensorsHeader) + "-byte limit (not a safetensors file?)");
  if (n > size - 8)
    throw LoadError(path, "header length " + std::to_string(n) + " runs past the end of the " + std::to_string(size) +
                              "-byte file (truncated or not a safetensors file)");
  if (n < 2 || data[8] != '{') throw LoadError(path, "header does not start with '{' (not a safetensors file?)");

  const char* begin = reinterpret_cast<const char*>(data + 8);
  const json header = parse_rejecting_duplicates(begin, begin + n, path);
  if (!header.is_object()) throw LoadError(path, "header is not a JSON object");

  SafetensorsHeader out;
  out.data_offset = 8 + n;
  out.data_size = size - out.data_offset;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) throw LoadError(path, "__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) throw LoadError(path, "__metadata__." + mk, "metadata values must be strings");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    out.tensors.push_back(parse_entry(key, value, path));
  }

  // Every byte of the data region belongs to exactly one tensor: sorted by offset, each begins
  // where the previous ended, and the last ends at the end of the file.
  std::vector<const SafetensorsEntry*> order;
  for (const auto& t : out.tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  for (const auto* t : order) {
    if (t->begin < expected)
      throw LoadError(path, t->info.name, "data_offsets [" + std::to_string(t->begin) + ", " + std::to_string(t->end) +
                                              ") overlap the previous tensor (which ends at " +
                                              std::to_string(expected) + ")");
    if (t->begin > expected)
      throw LoadError(path, t->info.name, "gap in the data region: tensor begins at " + std::to_string(t->begin) +
                                              " but the previous one ends at " + std::to_string(expected));
    expected = t->end;
  }
  if (expected != out.data_size) {
    if (expected > out.data_size)
      throw LoadError(path, "tensors need " + std::to_string(expected) + " bytes of data but the file holds " +
                                std::to_string(out.data_size) + " (truncated?)");
    throw LoadError(path, "data region holds " + std::to_string(out.data_size - expected) +
                              " trailing bytes that belong to no tensor");
  }
  return out;
}

std::string build_safetensors_header(std::vector<SafetensorsEntry>& tensors,
                                     const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (auto& t : tensors) {
    if (t.info.name == "__metadata__") throw UsageError("a tensor cannot be named __metadata__");
    if (!seen.insert(t.info.name).second) throw UsageError("tensor '" + t.info.name + "' is listed twice");
    const auto numel = checked_numel(t.info.shape);
    if (!numel) throw UsageError("tensor '" + t.info.name + "' has an invalid shape " + shape_string(t.info.shape));
    t.info.nbytes = *numel * dtype_size(t.info.dtype);
    t.begin = offset;
    t.end = offset + t.info.nbytes;
    offset = t.end;
    header[t.info.name] = {{"dtype", dtype_name(t.info.dtype)}, {"shape", t.info.shape}, {"data_offsets", {t.begin, t.end}}};
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text += ' ';
  std::string out(8, '\0');
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + text;
}

}  // namespace genvis::io
