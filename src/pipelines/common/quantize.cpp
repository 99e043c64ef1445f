#include "pipelines/common/quantize.h"

#include "core/error.h"
#include "core/log.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace genvis::pipelines::quant {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

}  // namespace

std::string requested(const ModelSource& source) {
  if (source.quant.empty() || source.quant == "none") return "";
  if (source.quant != "int8") throw UsageError("--quant: unknown '" + source.quant + "' (int8 or none)");
  if (!source.device.is_cpu())
    throw UsageError("--quant int8 runs on the CPU (int8 kernels for AMX, AVX-512 VNNI and a portable reference); "
                     "on " + source.device.str() + " use --dtype bf16 or f16");
  return "int8";
}

bool unet_keeps(const std::string& name) {
  return name == "conv_in" || name == "conv_out" || starts_with(name, "time_embedding") ||
         starts_with(name, "add_embedding") || starts_with(name, "class_embedding") || ends_with(name, "time_emb_proj");
}

bool video_transformer_keeps(const std::string& name) {
  return starts_with(name, "condition_embedder") || name == "proj_out" || starts_with(name, "patch_embedding");
}

nn::QuantizeReport apply(torch::nn::Module& component, const std::string& name,
                         const std::function<bool(const std::string&)>& keep) {
  const nn::QuantizeReport r = nn::quantize_int8(component, keep);
#if defined(__GLIBC__)
  // Each layer's quantisation made f32 temporaries of its weight; give their pages back now, or
  // the process keeps the largest of them as resident heap for its whole life.
  malloc_trim(0);
#endif
  log_info("int8: " + name + ": " + std::to_string(r.linear) + " linear + " + std::to_string(r.conv) + " conv layers (" +
           std::to_string(r.kept) + " kept in the model's dtype)");
  return r;
}

}  // namespace genvis::pipelines::quant
