// Low-rank adapters (LoRA, Hu et al. 2021) on Linear and Conv2d layers: W' = W + m * (alpha/r) * up @ down.
//
//   auto a = genvis::nn::LoRAAdapter(LoRAAdapterOptions{.in = 320, .out = 320, .rank = 4, .alpha = 4});
//   genvis::nn::attach_lora(*attn->to_q, a);            // on the fly: to_q(x) + a(x) from now on
//   genvis::nn::merge_lora(*attn->to_q, down, up, 0.5);  // or folded into the weight once
//
// On the fly, an adapter is a child module of the layer it adapts (named "lora_adapter_N"), so
// the layer's forward through nn::linear(x, layer) / nn::conv1x1(x, layer) adds it and autograd
// reaches its parameters. Kohya's initialisation: down ~ kaiming-uniform(a = sqrt(5)), up = 0,
// so a new adapter leaves every output unchanged until trained.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <string>
#include <vector>

namespace genvis::nn {

struct LoRAAdapterOptions {
  int64_t in = 0, out = 0, rank = 4;
  double alpha = 0;          // 0: alpha = rank (scale 1, the diffusers/PEFT convention)
  bool conv = false;         // a 1x1 conv adapter ([r,in,1,1] / [out,r,1,1]) instead of Linear
  double multiplier = 1.0;   // the strength it is applied with
};

class LoRAAdapterImpl : public torch::nn::Module {
public:
  explicit LoRAAdapterImpl(const LoRAAdapterOptions& options);
  // The adapter's contribution for the layer input x: [...,in] -> [...,out] (conv: [B,in,H,W] -> [B,out,H,W]).
  at::Tensor forward(const at::Tensor& x);
  // m * (alpha/r) * up @ down in the layer weight's shape ([out,in] or [out,in,1,1]), f32.
  at::Tensor delta_weight() const;
  double scale() const { return options.alpha / static_cast<double>(options.rank); }

  LoRAAdapterOptions options;
  at::Tensor lora_down, lora_up;  // [r,in] and [out,r] (conv: with trailing 1,1)
};
TORCH_MODULE(LoRAAdapter);

// On-the-fly adapters of a layer (its "lora_adapter_N" children), in attachment order.
std::vector<LoRAAdapter> lora_adapters(const torch::nn::Module& layer);
// Adds `adapter` to a Linear or 1x1 Conv2d (UsageError for other layers or mismatched sizes).
void attach_lora(torch::nn::Module& layer, const LoRAAdapter& adapter);
// Removes every on-the-fly adapter of `layer` (and below it).
void detach_lora(torch::nn::Module& layer);
// y + sum of the layer's adapters applied to x (y unchanged when it has none).
at::Tensor add_lora(const torch::nn::Module& layer, const at::Tensor& x, at::Tensor y);

// A 1x1 Conv2d (stride 1, no padding) with its adapters: [B,in,H,W] -> [B,out,H,W].
at::Tensor conv1x1(const at::Tensor& x, const torch::nn::Conv2d& layer);

// Why down/up cannot adapt a weight of this shape, or "" when they compose to it.
std::string lora_shape_problem(at::IntArrayRef weight, at::IntArrayRef down, at::IntArrayRef up);

// W += multiplier * scale * reshape(up.flatten(1) @ down.flatten(1)) in f32, stored back in W's dtype.
// down [r,in,(kh,kw)], up [out,r,(1,1)]; for a kxk conv, down carries the kernel (LoCon). Throws
// UsageError when the shapes do not compose to the weight's.
void merge_lora(at::Tensor& weight, const at::Tensor& down, const at::Tensor& up, double scale, double multiplier = 1.0);

}  // namespace genvis::nn
