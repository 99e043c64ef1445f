// Filling a module's parameters and buffers from a weight file, by name.
//
//   genvis::nn::load_state_dict(*unet, *reader, {.dtype = at::kFloat});
//
// Strict: one LoadError lists every missing, unexpected and wrongly-shaped tensor together.
// Foreign layouts (original single-file SD, kohya LoRA, ...) are handled by a key map that turns
// a file name into the module's name (or "" to skip the tensor).
#pragma once
#include "io/weights.h"

#include <functional>
#include <optional>
#include <string>
#include <torch/nn/module.h>
#include <vector>

namespace genvis::nn {

struct LoadOptions {
  // Cast floating tensors to this dtype (none: keep the module's dtype).
  std::optional<at::ScalarType> dtype;
  // Only file tensors whose name starts with this are considered; it is stripped.
  std::string prefix;
  // Rewrites a file name (after the prefix is stripped) to the module's name; "" skips it.
  std::function<std::string(const std::string&)> key_map;
  // A file tensor (name after the prefix is stripped) that stacks several module tensors along
  // dim 0, e.g. a fused q/k/v projection: their module names in order, the tensor split evenly
  // among them. Empty for an ordinary tensor (key_map renames those).
  std::function<std::vector<std::string>(const std::string&)> split_map;
  // Names a missing module tensor as the file would name it (foreign layouts), for the error.
  std::function<std::string(const std::string&)> file_name_of;
  // Module names allowed to be absent from the file (e.g. buffers that are computed).
  std::function<bool(const std::string&)> optional_key;
  // File names (after mapping) that are ignored when unexpected (e.g. "position_ids").
  std::function<bool(const std::string&)> ignore_unexpected;
  // Reshape a file tensor when only singleton dims differ ([C,C,1,1] conv vs [C,C] linear).
  bool squeeze_singleton_dims = false;
};

struct LoadReport {
  size_t loaded = 0;
  std::vector<std::string> skipped;  // file tensors dropped by the key map or ignore_unexpected
};

LoadReport load_state_dict(torch::nn::Module& module, io::WeightReader& reader, const LoadOptions& options = {});

// The inverse, for saving: the module's parameters then its buffers by name, detached and on the
// CPU; parameters cast to `param_dtype` when given (buffers keep their dtype).
std::vector<std::pair<std::string, at::Tensor>> state_dict(torch::nn::Module& module,
                                                           std::optional<at::ScalarType> param_dtype = std::nullopt);

}  // namespace genvis::nn
