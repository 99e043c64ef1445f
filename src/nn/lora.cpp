#include "nn/lora.h"

#include "nn/quantize.h"

#include "core/error.h"
#include "nn/attention.h"

#include <cmath>
#include <string>
#include <torch/nn/init.h>
#include <torch/torch.h>

namespace genvis::nn {
namespace {

constexpr const char* kAdapterPrefix = "lora_adapter_";

bool is_adapter_name(const std::string& name) { return name.rfind(kAdapterPrefix, 0) == 0; }

}  // namespace

LoRAAdapterImpl::LoRAAdapterImpl(const LoRAAdapterOptions& o) : options(o) {
  if (o.in < 1 || o.out < 1 || o.rank < 1)
    throw UsageError("LoRA adapter: in, out and rank must be >= 1 (got " + std::to_string(o.in) + ", " +
                     std::to_string(o.out) + ", " + std::to_string(o.rank) + ")");
  if (options.alpha <= 0) options.alpha = static_cast<double>(o.rank);
  std::vector<int64_t> down_shape = {o.rank, o.in}, up_shape = {o.out, o.rank};
  if (o.conv) {
    down_shape.insert(down_shape.end(), {1, 1});
    up_shape.insert(up_shape.end(), {1, 1});
  }
  lora_down = register_parameter("lora_down", torch::empty(down_shape));
  lora_up = register_parameter("lora_up", torch::zeros(up_shape));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(lora_down, std::sqrt(5.0));  // nn.Linear's default, as kohya
}

at::Tensor LoRAAdapterImpl::forward(const at::Tensor& x) {
  const double s = options.multiplier * scale();
  if (options.conv) return at::conv2d(at::conv2d(x, lora_down.to(x.scalar_type())), lora_up.to(x.scalar_type())) * s;
  const at::Tensor down = lora_down.to(x.scalar_type()), up = lora_up.to(x.scalar_type());
  return nn::linear(nn::linear(x, down, at::Tensor()), up, at::Tensor()) * s;
}

at::Tensor LoRAAdapterImpl::delta_weight() const {
  at::Tensor d = at::matmul(lora_up.detach().to(at::kFloat).flatten(1), lora_down.detach().to(at::kFloat).flatten(1));
  if (options.conv) d = d.view({options.out, options.in, 1, 1});
  return d * (options.multiplier * scale());
}

std::vector<LoRAAdapter> lora_adapters(const torch::nn::Module& layer) {
  std::vector<LoRAAdapter> out;
  for (const auto& child : layer.named_children())
    if (is_adapter_name(child.key())) out.emplace_back(std::dynamic_pointer_cast<LoRAAdapterImpl>(child.value()));
  return out;
}

void attach_lora(torch::nn::Module& layer, const LoRAAdapter& adapter) {
  const auto& o = adapter->options;
  int64_t in = 0, out = 0;
  if (auto* lin = dynamic_cast<torch::nn::LinearImpl*>(&layer)) {
    if (o.conv) throw UsageError("LoRA adapter: a 1x1 conv adapter cannot adapt a Linear layer");
    in = lin->weight.size(1);
    out = lin->weight.size(0);
  } else if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(&layer)) {
    if (conv->weight.size(2) != 1 || conv->weight.size(3) != 1 || !o.conv)
      throw UsageError("LoRA adapter: only 1x1 convolutions are adapted on the fly (merge the others)");
    in = conv->weight.size(1);
    out = conv->weight.size(0);
  } else {
    throw UsageError("LoRA adapter: only Linear and 1x1 Conv2d layers can be adapted");
  }
  if (in != o.in || out != o.out)
    throw UsageError("LoRA adapter of size " + std::to_string(o.in) + " -> " + std::to_string(o.out) +
                     " does not fit a layer of size " + std::to_string(in) + " -> " + std::to_string(out));
  const size_t n = lora_adapters(layer).size();
  layer.register_module(kAdapterPrefix + std::to_string(n), adapter);
}

void detach_lora(torch::nn::Module& layer) {
  std::vector<std::string> names;
  for (const auto& child : layer.named_children())
    if (is_adapter_name(child.key())) names.push_back(child.key());
  for (const auto& n : names) layer.unregister_module(n);
  for (const auto& child : layer.children()) detach_lora(*child);
}

at::Tensor add_lora(const torch::nn::Module& layer, const at::Tensor& x, at::Tensor y) {
  if (layer.children().empty()) return y;
  for (auto& adapter : lora_adapters(layer)) y = y + adapter->forward(x);
  return y;
}

at::Tensor conv1x1(const at::Tensor& x, const torch::nn::Conv2d& layer) {
  return add_lora(*layer, x, conv2d(x, layer));  // (int8 when quantised)
}

std::string lora_shape_problem(at::IntArrayRef weight, at::IntArrayRef down, at::IntArrayRef up) {
  const auto str = [](at::IntArrayRef s) { return c10::str(s); };
  const std::string shapes = "up " + str(up) + " and down " + str(down) + " do not fit weight " + str(weight);
  if (down.size() < 2 || up.size() < 2 || weight.size() < 2) return shapes;
  if (up[1] != down[0]) return "rank differs between down " + str(down) + " and up " + str(up);
  if (up[0] != weight[0]) return shapes;
  for (size_t d = 2; d < up.size(); ++d)
    if (up[d] != 1) return "up " + str(up) + ": only 1x1 up projections are supported";
  // The kernel lives in `down` (LoCon) or the layer is 1x1 / Linear: trailing dims must agree.
  const auto kernel = [](at::IntArrayRef s) {
    std::vector<int64_t> k(s.begin() + 2, s.end());
    while (!k.empty() && k.back() == 1) k.pop_back();
    return k;
  };
  if (down[1] != weight[1] || kernel(down) != kernel(weight)) return shapes;
  return "";
}

void merge_lora(at::Tensor& weight, const at::Tensor& down, const at::Tensor& up, double scale, double multiplier) {
  if (const std::string problem = lora_shape_problem(weight.sizes(), down.sizes(), up.sizes()); !problem.empty())
    throw UsageError("LoRA " + problem);
  torch::NoGradGuard no_grad;
  const at::Tensor delta = at::matmul(up.to(at::kFloat).flatten(1), down.to(at::kFloat).flatten(1));  // [out, in*kh*kw]
  const at::Tensor merged = weight.to(at::kFloat) + delta.view(weight.sizes()).to(weight.device()) * (scale * multiplier);
  weight.copy_(merged.to(weight.scalar_type()));
}

}  // namespace genvis::nn
