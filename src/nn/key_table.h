// Renaming between a foreign checkpoint layout and a module's names (the reference checkpoint's)
// through one table of rules that reads both ways: file -> module for loading, module -> file for
// error messages and for writing the foreign layout back (tests, converters).
//
//   static const nn::KeyTable kTable({
//       {"blocks.#.self_attn.q.", "blocks.#.attn1.to_q."},   // prefixes end in '.'; '#' = an index
//       {"head.modulation", "scale_shift_table"},            // whole names otherwise
//       {"blocks.#.attn.to_qkv.", {"blocks.#.q.", "blocks.#.k.", "blocks.#.v."}},  // fused: split along dim 0
//       {"textual.", ""},                                    // skipped when loading
//   });
//   kTable.to_module("blocks.3.self_attn.q.weight")   // {"blocks.3.attn1.to_q.weight"}
//   kTable.to_file("blocks.3.k.bias")                 // {"blocks.3.attn.to_qkv.bias", part 1 of 3}
//   nn::LoadOptions options;  kTable.apply(options);  // then nn::load_state_dict(model, reader, options)
//
// When several rules match, the longest file (or module) side wins. '#' matches one decimal
// index and is carried to the '#' in the same position on the other side.
#pragma once
#include "nn/state_dict.h"

#include <optional>
#include <string>
#include <vector>

namespace genvis::nn {

struct KeyRule {
  KeyRule(std::string file, std::string module);
  KeyRule(std::string file, std::vector<std::string> modules);
  std::string file;
  // One name: a rename; several: the file tensor stacks them along dim 0; one "": skipped.
  std::vector<std::string> modules;
};

class KeyTable {
public:
  explicit KeyTable(std::vector<KeyRule> rules);

  // The module names a file tensor fills: one (renamed), several (a fused tensor, split evenly
  // along dim 0 in this order), or one "" (skipped). nullopt when no rule matches.
  std::optional<std::vector<std::string>> to_module(const std::string& file_name) const;

  struct FileKey {
    std::string name;
    size_t part = 0, parts = 1;  // which slice along dim 0, of how many
  };
  // The file tensor a module tensor comes from; nullopt when no rule makes it.
  std::optional<FileKey> to_file(const std::string& module_name) const;

  // Sets key_map and split_map (file names no rule matches are reported as unexpected) and
  // file_name_of (missing tensors named as the file would name them); they hold a copy of the table.
  void apply(LoadOptions& options) const;

private:
  std::vector<KeyRule> rules_;
};

}  // namespace genvis::nn
