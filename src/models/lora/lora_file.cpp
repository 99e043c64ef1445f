#include "models/lora/lora_file.h"

#include "core/error.h"
#include "core/text.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/single_file/ldm_export_keys.h"
#include "nn/lora.h"

#include <algorithm>
#include <optional>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/torch.h>
#include <unordered_map>

namespace genvis::models {
namespace {

constexpr size_t kMaxListed = 8;  // problems named in one error before "... and N more"

std::string underscored(std::string s) {
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

// The kohya name of a UNet module by its original LDM name (SDXL files): the LDM weight name of
// "<module>.weight", less ".weight", underscored.
std::string kohya_ldm_unet_name(const std::string& module, const UNet2DConditionConfig& config) {
  const std::string ldm = unet_key_to_ldm(module + ".weight", config);
  return "lora_unet_" + underscored(ldm.substr(0, ldm.size() - std::string(".weight").size()));
}

// A Linear or Conv2d weight of a component, by module path.
struct Target {
  std::string component, module;
  torch::nn::Module* layer = nullptr;
  at::Tensor weight;
};

std::vector<std::pair<std::string, torch::nn::Module*>> components_of(const LoRATargets& t) {
  std::vector<std::pair<std::string, torch::nn::Module*>> out;
  if (t.unet) out.emplace_back("unet", t.unet);
  if (t.text_encoder) out.emplace_back("text_encoder", t.text_encoder);
  if (t.text_encoder_2) out.emplace_back("text_encoder_2", t.text_encoder_2);
  return out;
}

bool is_sdxl(const LoRATargets& t) { return t.text_encoder_2 != nullptr; }

// Every adaptable layer, indexed by "<component>/<path>" and by its kohya names.
struct TargetIndex {
  std::unordered_map<std::string, Target> by_path;          // "unet/down_blocks.0..."
  std::unordered_map<std::string, std::string> by_kohya;    // "lora_unet_down_blocks_0_..." -> by_path key

  explicit TargetIndex(const LoRATargets& t) {
    for (const auto& [component, root] : components_of(t)) {
      for (const auto& item : root->named_modules()) {
        torch::nn::Module* m = item.value().get();
        at::Tensor weight;
        if (auto* lin = dynamic_cast<torch::nn::LinearImpl*>(m)) weight = lin->weight;
        else if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(m)) weight = conv->weight;
        else continue;
        const std::string key = component + "/" + item.key();
        by_path[key] = Target{component, item.key(), m, weight};
        if (component == "unet") {
          by_kohya["lora_unet_" + underscored(item.key())] = key;
          if (t.unet_config) {
            try {  // SDXL kohya files name UNet modules by their original LDM names
              by_kohya[kohya_ldm_unet_name(item.key(), *t.unet_config)] = key;
            } catch (const Error&) {
            }
          }
        } else if (component == "text_encoder") {
          by_kohya["lora_te_" + underscored(item.key())] = key;
          by_kohya["lora_te1_" + underscored(item.key())] = key;
        } else {
          by_kohya["lora_te2_" + underscored(item.key())] = key;
        }
      }
    }
  }
};

// One file name split into (stem, part): part is "down", "up" or "alpha"; nullopt if not LoRA.
struct KeyPart {
  std::string stem, part, format;
};
std::optional<KeyPart> split_key(const std::string& name) {
  static const std::vector<std::tuple<std::string, std::string, std::string>> suffixes = {
      {".lora_down.weight", "down", "kohya"}, {".lora_up.weight", "up", "kohya"},
      {".lora_A.weight", "down", "peft"},     {".lora_B.weight", "up", "peft"},
      {".lora_A.default.weight", "down", "peft"}, {".lora_B.default.weight", "up", "peft"},
      {".lora.down.weight", "down", "diffusers-legacy"}, {".lora.up.weight", "up", "diffusers-legacy"},
      {"_lora.down.weight", "down", "diffusers-legacy"}, {"_lora.up.weight", "up", "diffusers-legacy"},
      {".alpha", "alpha", ""}};
  for (const auto& [suffix, part, format] : suffixes)
    if (ends_with(name, suffix)) return KeyPart{name.substr(0, name.size() - suffix.size()), part, format};
  return std::nullopt;
}

// Legacy attention-processor stems: "...attn1.processor.to_q" -> "...attn1.to_q", to_out -> to_out.0.
std::string legacy_stem(std::string stem) {
  const std::string p = ".processor.";
  if (const auto at = stem.find(p); at != std::string::npos) {
    stem = stem.substr(0, at) + "." + stem.substr(at + p.size());
    if (ends_with(stem, ".to_out")) stem += ".0";
  }
  return stem;
}

std::string resolve(const std::string& stem, const TargetIndex& index) {
  if (stem.rfind("lora_", 0) == 0) {
    const auto it = index.by_kohya.find(stem);
    return it == index.by_kohya.end() ? "" : it->second;
  }
  for (const char* component : {"unet", "text_encoder_2", "text_encoder"}) {
    const std::string prefix = std::string(component) + ".";
    if (stem.rfind(prefix, 0) == 0) {
      const std::string key = std::string(component) + "/" + legacy_stem(stem.substr(prefix.size()));
      return index.by_path.count(key) ? key : "";
    }
  }
  return "";
}

std::string shape_str(const at::Tensor& t) { return c10::str(t.sizes()); }

void throw_problems(const std::string& path, const std::vector<std::string>& problems) {
  std::string what = std::to_string(problems.size()) + " problem" + (problems.size() == 1 ? "" : "s") + ": ";
  for (size_t i = 0; i < std::min(problems.size(), kMaxListed); ++i) what += (i ? "; " : "") + problems[i];
  if (problems.size() > kMaxListed) what += "; ... and " + std::to_string(problems.size() - kMaxListed) + " more";
  throw LoadError(path, what);
}

}  // namespace

LoRAFile read_lora(const std::string& path, const LoRATargets& targets) {
  auto reader = io::open_weights(path);
  LoRAFile out;
  out.path = path;
  out.metadata = reader->metadata();
  const TargetIndex index(targets);

  struct Parts {
    std::string target, format;
    at::Tensor down, up, alpha;
  };
  std::map<std::string, Parts> stems;  // file stem -> its tensors (ordered: stable output)
  std::vector<std::string> problems, unknown;
  for (const auto& info : reader->tensors()) {
    const std::string& name = info.name;
    static const std::vector<std::string> lycoris = {".hada_w1_a", ".lokr_w1", ".dora_scale", ".lora_mid.weight", ".diff", ".diff_b"};
    if (std::any_of(lycoris.begin(), lycoris.end(), [&](const std::string& s) { return ends_with(name, s); })) {
      problems.push_back("'" + name + "' is a LyCORIS/DoRA tensor (LoHa, LoKr, DoRA, Tucker and full-diff "
                         "networks are not supported; only plain LoRA)");
      continue;
    }
    const auto key = split_key(name);
    if (!key) {
      unknown.push_back(name);
      continue;
    }
    Parts& p = stems[key->stem];
    if (!key->format.empty()) p.format = key->format;
    at::Tensor t = reader->load(name);
    if (!at::isFloatingType(t.scalar_type())) {
      problems.push_back("'" + name + "' is not a floating-point tensor");
      continue;
    }
    if (!t.isfinite().all().item<bool>()) {
      problems.push_back("'" + name + "' has non-finite values");
      continue;
    }
    (key->part == "down" ? p.down : key->part == "up" ? p.up : p.alpha) = t;
  }
  if (!unknown.empty()) {
    std::string list;
    for (size_t i = 0; i < std::min(unknown.size(), size_t{3}); ++i) list += (i ? ", " : "") + unknown[i];
    problems.push_back(std::to_string(unknown.size()) + " tensor(s) that are not LoRA weights (" + list + ")");
  }

  std::vector<std::string> unresolved;
  for (auto& [stem, p] : stems) {
    if (!p.down.defined() || !p.up.defined()) {
      problems.push_back("'" + stem + "' has " + (p.down.defined() ? "no up" : "no down") + " weight");
      continue;
    }
    const std::string target = resolve(stem, index);
    if (target.empty()) {
      unresolved.push_back(stem);
      continue;
    }
    const Target& t = index.by_path.at(target);
    if (const std::string problem = nn::lora_shape_problem(t.weight.sizes(), p.down.sizes(), p.up.sizes());
        !problem.empty()) {
      problems.push_back("'" + stem + "' does not fit " + t.component + "." + t.module + " " + shape_str(t.weight) +
                         ": " + problem);
      continue;
    }
    double alpha = static_cast<double>(p.down.size(0));
    if (p.alpha.defined()) {
      if (p.alpha.numel() != 1) {
        problems.push_back("'" + stem + ".alpha' must be a scalar, got " + shape_str(p.alpha));
        continue;
      }
      const double a = p.alpha.to(at::kDouble).item<double>();
      if (a < 0) {
        problems.push_back("'" + stem + ".alpha' is negative");
        continue;
      }
      if (a > 0) alpha = a;  // kohya: alpha 0 means alpha = rank
    }
    if (out.format.empty() || out.format == p.format) out.format = p.format;
    out.modules.push_back({t.component, t.module, p.down, p.up, alpha});
  }
  if (!unresolved.empty()) {
    std::string list;
    for (size_t i = 0; i < std::min(unresolved.size(), size_t{3}); ++i) list += (i ? ", " : "") + unresolved[i];
    problems.push_back(std::to_string(unresolved.size()) + " module(s) not found in this model (" + list +
                       (unresolved.size() > 3 ? ", ..." : "") + "): a LoRA for another model family?");
  }
  if (out.modules.empty() && problems.empty()) problems.push_back("no LoRA weights in the file");
  if (!problems.empty()) throw_problems(path, problems);
  return out;
}

bool lora_on_the_fly_capable(const std::string& component, const std::string& module) {
  return module.find(component == "unet" ? "attentions." : "encoder.layers.") != std::string::npos;
}

LoRAApplyReport apply_lora(const LoRAFile& lora, const LoRATargets& targets, double unet_multiplier, LoRAMode mode,
                           std::optional<double> text_encoder_multiplier) {
  const TargetIndex index(targets);
  LoRAApplyReport report;
  torch::NoGradGuard no_grad;
  for (const auto& m : lora.modules) {
    const Target& t = index.by_path.at(m.component + "/" + m.module);
    const double multiplier = m.component == "unet" ? unet_multiplier : text_encoder_multiplier.value_or(unet_multiplier);
    const bool conv = dynamic_cast<torch::nn::Conv2dImpl*>(t.layer) != nullptr;
    const bool adapter_aware = lora_on_the_fly_capable(m.component, m.module);
    const bool one_by_one = !conv || (t.weight.size(2) == 1 && t.weight.size(3) == 1 && m.down.numel() == m.down.size(0) * m.down.size(1));
    if (mode == LoRAMode::OnTheFly && adapter_aware && one_by_one) {
      nn::LoRAAdapter a(nn::LoRAAdapterOptions{.in = t.weight.size(1), .out = t.weight.size(0), .rank = m.rank(),
                                               .alpha = m.alpha, .conv = conv, .multiplier = multiplier});
      a->lora_down.copy_(m.down.to(at::kFloat).view(a->lora_down.sizes()));
      a->lora_up.copy_(m.up.to(at::kFloat).view(a->lora_up.sizes()));
      a->to(t.weight.device(), t.weight.scalar_type());
      for (auto& p : a->parameters()) p.set_requires_grad(false);
      nn::attach_lora(*t.layer, a);
      ++report.attached;
    } else {
      at::Tensor w = t.weight;
      nn::merge_lora(w, m.down.to(w.device()), m.up.to(w.device()), m.scale(), multiplier);
      ++report.merged;
    }
  }
  return report;
}

std::string kohya_lora_name(const LoRATargets& targets, const std::string& component, const std::string& module) {
  if (component == "unet") {
    if (is_sdxl(targets) && targets.unet_config) {
      return kohya_ldm_unet_name(module, *targets.unet_config);
    }
    return "lora_unet_" + underscored(module);
  }
  if (component == "text_encoder") return (is_sdxl(targets) ? "lora_te1_" : "lora_te_") + underscored(module);
  if (component == "text_encoder_2") return "lora_te2_" + underscored(module);
  throw UsageError("LoRA: unknown component '" + component + "'");
}

void save_lora_kohya(const std::string& path, const LoRATargets& targets, const std::vector<LoRAModule>& modules,
                     const std::map<std::string, std::string>& metadata, at::ScalarType dtype) {
  if (modules.empty()) throw UsageError("LoRA: nothing to save");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& m : modules) {
    const std::string name = kohya_lora_name(targets, m.component, m.module);
    tensors.emplace_back(name + ".alpha", at::scalar_tensor(m.alpha, at::kFloat).to(dtype));
    tensors.emplace_back(name + ".lora_down.weight", m.down.detach().to(at::kCPU).to(dtype).contiguous());
    tensors.emplace_back(name + ".lora_up.weight", m.up.detach().to(at::kCPU).to(dtype).contiguous());
  }
  std::map<std::string, std::string> meta = metadata;
  auto fmt = [](double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s += '0';
    return s;
  };
  meta.emplace("ss_network_module", "networks.lora");
  meta.emplace("ss_network_dim", std::to_string(modules.front().rank()));
  meta.emplace("ss_network_alpha", fmt(modules.front().alpha));
  const bool sd2 = targets.unet_config && targets.unet_config->cross_attention_dim.front() == 1024;
  meta.emplace("ss_base_model_version", is_sdxl(targets) ? "sdxl_base_v1-0" : sd2 ? "sd_v2" : "sd_v1");
  io::save_safetensors(path, tensors, meta);
}

}  // namespace genvis::models
