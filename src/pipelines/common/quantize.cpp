#include "pipelines/common/quantize.h"

#include "core/error.h"
#include "core/log.h"
#include "core/text.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace genvis::pipelines::quant {

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

std::string apply_video(const ModelSource& source, torch::nn::Module& transformer, torch::nn::Module& text_encoder) {
  const std::string q = requested(source);
  if (!q.empty()) {
    quant::apply(transformer, "transformer", video_transformer_keeps);
    quant::apply(text_encoder, "text_encoder");
  }
  return q;
}

}  // namespace genvis::pipelines::quant
