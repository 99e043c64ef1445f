// `--quant int8` for the families that have it (Stable Diffusion, Wan, genvis video): which layers
// of each component get int8 copies (nn/quantize.h) and which stay in the model's dtype, and one
// log line per component saying what was done.
#pragma once
#include "nn/quantize.h"
#include "pipelines/pipeline.h"

#include <string>
#include <torch/nn/module.h>

namespace genvis::pipelines::quant {

// "" (no quantisation) or "int8" for source.quant; UsageError for anything else, and for int8 on
// a device other than the CPU (the int8 kernels are CPU kernels).
std::string requested(const ModelSource& source);

// Layers kept in the model's dtype: the UNet's first and last convolutions and its time/class
// embedders (a few rows each: nothing to gain, and they scale everything after them).
bool unet_keeps(const std::string& name);
// The Wan-architecture transformers' condition embedders (time, text, image) and output projection.
bool video_transformer_keeps(const std::string& name);

// quantize_int8 on one component, logged as "int8: <component>: N linear + M conv layers (K kept)".
nn::QuantizeReport apply(torch::nn::Module& component, const std::string& name,
                         const std::function<bool(const std::string&)>& keep = {});

// The video families' (Wan, genvis video) whole step: requested(source), then, for int8, the
// transformer (video_transformer_keeps) and the text encoder. Returns requested(source).
std::string apply_video(const ModelSource& source, torch::nn::Module& transformer, torch::nn::Module& text_encoder);

}  // namespace genvis::pipelines::quant
