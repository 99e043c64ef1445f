#include "nn/state_dict.h"

#include "core/error.h"

#include <algorithm>
#include <map>
#include <set>
#include <torch/torch.h>

namespace genvis::nn {
namespace {

std::string list(const std::vector<std::string>& names, size_t max = 20) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < max; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > max) s += ", ... (" + std::to_string(names.size() - max) + " more)";
  return s;
}

}  // namespace

LoadReport load_state_dict(torch::nn::Module& module, io::WeightReader& reader, const LoadOptions& options) {
  std::map<std::string, at::Tensor> targets;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) targets.emplace(p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) targets.emplace(b.key(), b.value());

  LoadReport report;
  struct Source {
    std::string file_name;
    int64_t part = 0, parts = 1;  // the slice along dim 0 of a split (fused) file tensor
  };
  std::map<std::string, Source> source;  // module name -> where in the file
  std::vector<std::string> unexpected, mis_shaped, missing;
  std::set<std::string> present;  // module names the file gives, fitting or not
  const auto shapes_fit = [&](std::vector<int64_t> have, std::vector<int64_t> want) {
    if (have == want) return true;
    if (!options.squeeze_singleton_dims) return false;
    have.erase(std::remove(have.begin(), have.end(), 1), have.end());
    want.erase(std::remove(want.begin(), want.end(), 1), want.end());
    return have == want;
  };
  // Weights that need more than a cast are refused up front, naming the tensor: ComfyUI's
  // "*_scaled" float8 files (each weight times its scale_weight), float8 without libtorch support.
  for (const auto& t : reader.tensors()) {
    if (t.name.compare(0, options.prefix.size(), options.prefix) != 0) continue;
    const std::string_view name = t.name;
    if (name == options.prefix + "scaled_fp8" || name.ends_with(".scale_weight") || name.ends_with(".scale_input"))
      throw LoadError(reader.path(), t.name,
                      "ComfyUI scaled float8 weights (each weight times a scale) are not supported; use an fp16, "
                      "bf16 or f32 file");
    if (t.dtype == io::DType::F8_E4M3 || t.dtype == io::DType::F8_E5M2) {
      try {
        io::to_scalar_type(t.dtype);
      } catch (const LoadError& e) {
        throw LoadError(reader.path(), t.name, std::string(e.what()) + " (or use an fp16, bf16 or f32 file)");
      }
    }
  }
  for (const auto& t : reader.tensors()) {
    if (t.name.compare(0, options.prefix.size(), options.prefix) != 0) continue;
    const std::string stripped = t.name.substr(options.prefix.size());
    std::vector<std::string> names = options.split_map ? options.split_map(stripped) : std::vector<std::string>{};
    const int64_t parts = names.empty() ? 1 : static_cast<int64_t>(names.size());
    if (names.empty()) names.push_back(options.key_map ? options.key_map(stripped) : stripped);
    if (parts > 1 && (t.shape.empty() || t.shape[0] % parts != 0)) {
      mis_shaped.push_back(t.name + " " + io::shape_string(t.shape) + " (a fused tensor of " + std::to_string(parts) +
                           " parts along dim 0)");
      for (const auto& name : names) present.insert(name);
      continue;
    }
    for (int64_t part = 0; part < parts; ++part) {
      const std::string& name = names[static_cast<size_t>(part)];
      const std::string what = parts == 1 ? t.name
                                          : t.name + " (part " + std::to_string(part + 1) + " of " +
                                                std::to_string(parts) + ")";
      if (name.empty() || (!targets.count(name) && options.ignore_unexpected && options.ignore_unexpected(name))) {
        if (part == 0) report.skipped.push_back(t.name);
        continue;
      }
      const auto it = targets.find(name);
      if (it == targets.end()) {
        unexpected.push_back(what);
        continue;
      }
      present.insert(name);
      if (source.count(name)) {
        mis_shaped.push_back(what + " (also given by " + source[name].file_name + ")");
        continue;
      }
      std::vector<int64_t> have = t.shape;
      if (parts > 1) have[0] /= parts;
      const auto want = it->second.sizes().vec();
      if (!shapes_fit(have, want)) {
        mis_shaped.push_back(what + " " + io::shape_string(have) + " (expected " + io::shape_string(want) + ")");
        continue;
      }
      source[name] = {t.name, part, parts};
    }
  }
  for (const auto& [name, tensor] : targets)
    if (!present.count(name) && !(options.optional_key && options.optional_key(name)))
      missing.push_back(options.file_name_of ? options.file_name_of(name) : name);

  if (!unexpected.empty() || !mis_shaped.empty() || !missing.empty()) {
    std::string what = "weights do not fit the model:";
    if (!missing.empty()) what += " missing " + std::to_string(missing.size()) + " [" + list(missing) + "];";
    if (!unexpected.empty()) what += " unexpected " + std::to_string(unexpected.size()) + " [" + list(unexpected) + "];";
    if (!mis_shaped.empty()) what += " wrong shape " + std::to_string(mis_shaped.size()) + " [" + list(mis_shaped) + "];";
    what.pop_back();
    throw LoadError(reader.path(), what);
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, from] : source) {
    at::Tensor& target = targets.at(name);
    const auto dtype = options.dtype && at::isFloatingType(target.scalar_type()) ? *options.dtype : target.scalar_type();
    at::Tensor value = reader.load(from.file_name, dtype, target.device());
    if (from.parts > 1) value = value.chunk(from.parts, 0)[from.part];
    value = value.reshape(target.sizes());
    if (target.scalar_type() != dtype) target.set_data(value.clone());
    else target.copy_(value);
    ++report.loaded;
  }
  return report;
}

std::vector<std::pair<std::string, at::Tensor>> state_dict(torch::nn::Module& module,
                                                           std::optional<at::ScalarType> param_dtype) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : module.named_parameters(true)) {
    at::Tensor t = p.value().detach().cpu();
    out.emplace_back(p.key(), param_dtype ? t.to(*param_dtype) : t);
  }
  for (const auto& b : module.named_buffers(true)) out.emplace_back(b.key(), b.value().detach().cpu());
  return out;
}

}  // namespace genvis::nn
