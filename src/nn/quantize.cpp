#include "nn/quantize.h"

#include "core/error.h"
#include "nn/transformer2d.h"

#include <array>
#include <optional>
#include <torch/torch.h>

namespace genvis::nn {

Int8LayerImpl::Int8LayerImpl(int8::PackedWeight w, bool is_conv, int8::ConvGeometry g)
    : weight(std::move(w)), conv(is_conv), geometry(g) {}

Int8LayerImpl* int8_layer(const torch::nn::Module& layer) {
  for (const auto& item : layer.named_children())
    if (item.key() == "int8") return dynamic_cast<Int8LayerImpl*>(item.value().get());
  return nullptr;
}

namespace {

// The explicit padding of a Conv2d ("same"/"valid" give nullopt).
struct ExplicitPadding {
  std::optional<std::array<int64_t, 2>> operator()(const torch::ExpandingArray<2>& p) const { return std::array<int64_t, 2>{(*p)[0], (*p)[1]}; }
  template <typename T>
  std::optional<std::array<int64_t, 2>> operator()(const T&) const {
    return std::nullopt;
  }
};

}  // namespace

std::optional<int8::ConvGeometry> plain_conv_geometry(const torch::nn::Conv2dImpl& conv) {
  const auto& o = conv.options;
  if (o.groups() != 1 || (*o.dilation())[0] != 1 || (*o.dilation())[1] != 1) return std::nullopt;
  if (torch::enumtype::get_enum_name(o.padding_mode()) != "kZeros") return std::nullopt;
  // The padding is a c10::variant in libtorch 1.x and a std::variant in 2.x: unqualified visit finds
  // the right one by argument-dependent lookup.
  const auto pad = visit(ExplicitPadding{}, o.padding());
  if (!pad) return std::nullopt;
  return int8::ConvGeometry{(*o.kernel_size())[0], (*o.kernel_size())[1], (*o.stride())[0], (*o.stride())[1],
                            (*pad)[0], (*pad)[1]};
}

namespace {

bool has_child(const torch::nn::Module& m, const std::string& name) {
  for (const auto& item : m.named_children())
    if (item.key() == name) return true;
  return false;
}

void attach(torch::nn::Module& layer, Int8Layer q) {
  if (has_child(layer, "int8")) {
    // Module has no unregister: replace the child in place.
    layer.replace_module("int8", q);
  } else {
    layer.register_module("int8", q);
  }
}

}  // namespace

QuantizeReport quantize_int8(torch::nn::Module& root, const std::function<bool(const std::string& name)>& keep) {
  torch::NoGradGuard no_grad;
  QuantizeReport report;
  for (const auto& item : root.named_modules("", /*include_self=*/false)) {
    const std::string& name = item.key();
    auto* linear = dynamic_cast<torch::nn::LinearImpl*>(item.value().get());
    auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(item.value().get());
    if (!linear && !conv) continue;
    const auto geometry = conv ? plain_conv_geometry(*conv) : std::optional<int8::ConvGeometry>(int8::ConvGeometry{});
    if (!geometry || (keep && keep(name))) {
      ++report.kept;
      report.kept_names.push_back(name);
      continue;
    }
    int8::PackedWeight w = int8::quantize_weight(conv ? int8::conv_weight_rows(conv->weight) : linear->weight);
    attach(*item.value(), Int8Layer(std::move(w), conv != nullptr, *geometry));
    ++(conv ? report.conv : report.linear);
  }
  // GEGLU's projection is only ever run by GEGLU: its copy is packed for the fused product.
  for (const auto& item : root.named_modules("", /*include_self=*/false))
    if (auto* geglu = dynamic_cast<GEGLUImpl*>(item.value().get()))
      if (Int8LayerImpl* q = int8_layer(*geglu->proj)) q->weight = int8::interleave_geglu(q->weight);
  return report;
}

std::vector<std::pair<std::string, Int8LayerImpl*>> int8_layers(torch::nn::Module& root) {
  std::vector<std::pair<std::string, Int8LayerImpl*>> out;
  for (const auto& item : root.named_modules("", /*include_self=*/false))
    if (auto* q = dynamic_cast<Int8LayerImpl*>(item.value().get())) {
      const std::string& name = item.key();
      out.emplace_back(name.size() > 5 ? name.substr(0, name.size() - 5) : std::string(), q);  // drop ".int8"
    }
  return out;
}

int64_t dequantize(torch::nn::Module& root) {
  // A child cannot be unregistered in libtorch 1.13: the copy is replaced by an empty one, which
  // int8_layer() does not report.
  int64_t n = 0;
  for (const auto& item : root.named_modules("", /*include_self=*/false)) {
    torch::nn::Module& m = *item.value();
    if (int8_layer(m)) {
      m.replace_module("int8", std::make_shared<torch::nn::Module>("removed"));
      ++n;
    }
  }
  return n;
}

bool int8_applies(const at::Tensor& x, const at::Tensor& weight) {
  if (!x.device().is_cpu() || (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16)) return false;
  return !at::GradMode::is_enabled() || (!x.requires_grad() && !weight.requires_grad());
}

at::Tensor conv2d(const at::Tensor& x, const torch::nn::Conv2d& layer) {
  if (Int8LayerImpl* q = int8_layer(*layer); q && int8_applies(x, layer->weight)) {
    q->calls.fetch_add(1, std::memory_order_relaxed);
    return int8::conv2d(x, q->weight, layer->bias, q->geometry);
  }
  return layer.ptr()->forward(x);
}

}  // namespace genvis::nn
