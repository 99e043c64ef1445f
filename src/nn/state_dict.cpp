#include "nn/state_dict.h"

#include "core/error.h"

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
  std::map<std::string, std::string> source;  // module name -> file name
  std::vector<std::string> unexpected, mis_shaped, missing;
  std::set<std::string> present;  // module names the file gives, fitting or not
  for (const auto& t : reader.tensors()) {
    if (t.name.compare(0, options.prefix.size(), options.prefix) != 0) continue;
    std::string name = t.name.substr(options.prefix.size());
    if (options.key_map) name = options.key_map(name);
    if (name.empty() || (!targets.count(name) && options.ignore_unexpected && options.ignore_unexpected(name))) {
      report.skipped.push_back(t.name);
      continue;
    }
    const auto it = targets.find(name);
    if (it == targets.end()) {
      unexpected.push_back(t.name);
      continue;
    }
    present.insert(name);
    if (source.count(name)) {
      mis_shaped.push_back(t.name + " (also given by " + source[name] + ")");
      continue;
    }
    const auto want = it->second.sizes().vec();
    bool ok = t.shape == want;
    if (!ok && options.squeeze_singleton_dims) {
      auto squeeze = [](std::vector<int64_t> s) {
        s.erase(std::remove(s.begin(), s.end(), 1), s.end());
        return s;
      };
      ok = squeeze(t.shape) == squeeze(want);
    }
    if (!ok) {
      mis_shaped.push_back(t.name + " " + io::shape_string(t.shape) + " (expected " + io::shape_string(want) + ")");
      continue;
    }
    source[name] = t.name;
  }
  for (const auto& [name, tensor] : targets)
    if (!present.count(name) && !(options.optional_key && options.optional_key(name))) missing.push_back(name);

  if (!unexpected.empty() || !mis_shaped.empty() || !missing.empty()) {
    std::string what = "weights do not fit the model:";
    if (!missing.empty()) what += " missing " + std::to_string(missing.size()) + " [" + list(missing) + "];";
    if (!unexpected.empty()) what += " unexpected " + std::to_string(unexpected.size()) + " [" + list(unexpected) + "];";
    if (!mis_shaped.empty()) what += " wrong shape " + std::to_string(mis_shaped.size()) + " [" + list(mis_shaped) + "];";
    what.pop_back();
    throw LoadError(reader.path(), what);
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, file_name] : source) {
    at::Tensor& target = targets.at(name);
    const auto dtype = options.dtype && at::isFloatingType(target.scalar_type()) ? *options.dtype : target.scalar_type();
    at::Tensor value = reader.load(file_name, dtype, target.device()).reshape(target.sizes());
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
