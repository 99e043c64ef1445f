#include "nn/key_table.h"

#include "core/error.h"

#include <algorithm>
#include <cctype>

namespace genvis::nn {
namespace {

bool is_prefix_pattern(const std::string& p) { return !p.empty() && p.back() == '.'; }

// Matches `pattern` ('#' = a decimal index) against the start of `name` (all of it unless the
// pattern is a prefix); the indices in `captures`, the length matched in `used`.
bool match(const std::string& pattern, const std::string& name, std::vector<std::string>& captures, size_t& used) {
  captures.clear();
  size_t j = 0;
  for (const char c : pattern) {
    if (c == '#') {
      const size_t start = j;
      while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
      if (j == start) return false;
      captures.push_back(name.substr(start, j - start));
    } else {
      if (j >= name.size() || name[j] != c) return false;
      ++j;
    }
  }
  used = j;
  return is_prefix_pattern(pattern) || j == name.size();
}

std::string substitute(const std::string& pattern, const std::vector<std::string>& captures, const std::string& rest) {
  std::string out;
  size_t k = 0;
  for (const char c : pattern) {
    if (c == '#' && k < captures.size()) out += captures[k++];
    else out += c;
  }
  return out + rest;
}

size_t count_hashes(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '#')); }

}  // namespace

KeyRule::KeyRule(std::string file, std::string module) : file(std::move(file)), modules{std::move(module)} {}
KeyRule::KeyRule(std::string file, std::vector<std::string> modules) : file(std::move(file)), modules(std::move(modules)) {}

KeyTable::KeyTable(std::vector<KeyRule> rules) : rules_(std::move(rules)) {
  for (const auto& r : rules_) {
    if (r.file.empty() || r.modules.empty()) throw UsageError("KeyTable: a rule needs a file name and a module side");
    const bool skip = r.modules.size() == 1 && r.modules[0].empty();
    for (const auto& m : r.modules)
      if (!skip && (m.empty() || is_prefix_pattern(m) != is_prefix_pattern(r.file) ||
                    count_hashes(m) != count_hashes(r.file)))
        throw UsageError("KeyTable: rule '" + r.file + "' -> '" + m +
                         "': both sides must be prefixes (ending in '.') or whole names, with the same '#' count");
  }
}

std::optional<std::vector<std::string>> KeyTable::to_module(const std::string& file_name) const {
  const KeyRule* best = nullptr;
  std::vector<std::string> captures, best_captures;
  size_t used = 0, best_used = 0;
  for (const auto& r : rules_)
    if (match(r.file, file_name, captures, used) && (!best || r.file.size() > best->file.size()))
      best = &r, best_captures = captures, best_used = used;
  if (!best) return std::nullopt;
  if (best->modules.size() == 1 && best->modules[0].empty()) return std::vector<std::string>{""};
  const std::string rest = file_name.substr(best_used);
  std::vector<std::string> out;
  for (const auto& m : best->modules) out.push_back(substitute(m, best_captures, rest));
  return out;
}

std::optional<KeyTable::FileKey> KeyTable::to_file(const std::string& module_name) const {
  std::optional<FileKey> best;
  size_t best_length = 0;
  std::vector<std::string> captures;
  size_t used = 0;
  for (const auto& r : rules_)
    for (size_t k = 0; k < r.modules.size(); ++k) {
      const std::string& m = r.modules[k];
      if (m.empty() || !match(m, module_name, captures, used) || (best && m.size() <= best_length)) continue;
      best = FileKey{substitute(r.file, captures, module_name.substr(used)), k, r.modules.size()};
      best_length = m.size();
    }
  return best;
}

void KeyTable::apply(LoadOptions& options) const {
  // '?' never starts a module name, so a name no rule knows is reported as unexpected.
  options.key_map = [table = *this](const std::string& name) -> std::string {
    const auto m = table.to_module(name);
    return m ? m->front() : "?" + name;
  };
  options.split_map = [table = *this](const std::string& name) -> std::vector<std::string> {
    auto m = table.to_module(name);
    return m && m->size() > 1 ? *m : std::vector<std::string>{};
  };
  options.file_name_of = [table = *this](const std::string& module_name) -> std::string {
    const auto f = table.to_file(module_name);
    if (!f) return module_name;
    if (f->parts == 1) return f->name;
    return f->name + " (part " + std::to_string(f->part + 1) + " of " + std::to_string(f->parts) + ")";
  };
}

}  // namespace genvis::nn
