#include "models/unet2d_condition/unet_blocks.h"

#include <torch/torch.h>

namespace genvis::models {
namespace {

nn::ResnetBlock2D make_resnet(const UNetBlockOptions& o, int64_t in, int64_t out) {
  return nn::ResnetBlock2D(nn::ResnetBlock2DOptions{.in_channels = in, .out_channels = out, .temb_channels = o.temb_channels,
                                                    .groups = o.groups, .eps = o.eps,
                                                    .output_scale_factor = o.output_scale_factor});
}

nn::Transformer2DModel make_transformer(const UNetBlockOptions& o, int64_t channels) {
  // attention_head_dim of the config is the number of heads; head_dim = channels / heads.
  return nn::Transformer2DModel(nn::Transformer2DOptions{.num_attention_heads = o.num_attention_heads,
                                                         .attention_head_dim = channels / o.num_attention_heads,
                                                         .in_channels = channels,
                                                         .num_layers = o.transformer_layers,
                                                         .cross_attention_dim = o.cross_attention_dim,
                                                         .norm_num_groups = o.groups,
                                                         .norm_eps = 1e-6,
                                                         .use_linear_projection = o.use_linear_projection});
}

}  // namespace

UNetDownBlockImpl::UNetDownBlockImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (o.has_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t j = 0; j < o.num_layers; ++j) {
    resnet_list.push_back(make_resnet(o, j == 0 ? o.in_channels : o.out_channels, o.out_channels));
    resnets->push_back(resnet_list.back());
    if (o.has_attention) {
      attention_list.push_back(make_transformer(o, o.out_channels));
      attentions->push_back(attention_list.back());
    }
  }
  if (o.add_downsample) {
    downsampler = nn::Downsample2D(o.out_channels, o.out_channels, o.downsample_padding);
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(downsampler));
  }
}

at::Tensor UNetDownBlockImpl::forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context,
                                      std::vector<at::Tensor>& skips) {
  at::Tensor h = x;
  for (size_t j = 0; j < resnet_list.size(); ++j) {
    h = resnet_list[j](h, temb);
    if (!attention_list.empty()) h = attention_list[j](h, context);
    skips.push_back(h);
  }
  if (downsampler) {
    h = downsampler(h);
    skips.push_back(h);
  }
  return h;
}

UNetMidBlockImpl::UNetMidBlockImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnet_list.push_back(make_resnet(o, o.in_channels, o.in_channels));
  resnets->push_back(resnet_list.back());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    attention_list.push_back(make_transformer(o, o.in_channels));
    attentions->push_back(attention_list.back());
    resnet_list.push_back(make_resnet(o, o.in_channels, o.in_channels));
    resnets->push_back(resnet_list.back());
  }
}

at::Tensor UNetMidBlockImpl::forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context) {
  at::Tensor h = resnet_list[0](x, temb);
  for (size_t i = 0; i < attention_list.size(); ++i) h = resnet_list[i + 1](attention_list[i](h, context), temb);
  return h;
}

UNetUpBlockImpl::UNetUpBlockImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (o.has_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t j = 0; j < o.num_layers; ++j) {
    const int64_t skip_channels = j == o.num_layers - 1 ? o.in_channels : o.out_channels;
    const int64_t resnet_in = j == 0 ? o.prev_output_channel : o.out_channels;
    resnet_list.push_back(make_resnet(o, resnet_in + skip_channels, o.out_channels));
    resnets->push_back(resnet_list.back());
    if (o.has_attention) {
      attention_list.push_back(make_transformer(o, o.out_channels));
      attentions->push_back(attention_list.back());
    }
  }
  if (o.add_upsample) {
    upsampler = nn::Upsample2D(o.out_channels, o.out_channels);
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(upsampler));
  }
}

at::Tensor UNetUpBlockImpl::forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context,
                                    std::vector<at::Tensor>& skips) {
  at::Tensor h = x;
  for (size_t j = 0; j < resnet_list.size(); ++j) {
    h = at::cat({h, skips.back()}, 1);
    skips.pop_back();
    h = resnet_list[j](h, temb);
    if (!attention_list.empty()) h = attention_list[j](h, context);
  }
  if (upsampler) {
    // Upsample to the next skip's size (diffusers' upsample_size; equals x2 for even sizes).
    std::optional<std::vector<int64_t>> size;
    if (!skips.empty()) size = skips.back().sizes().slice(2).vec();
    h = upsampler(h, size);
  }
  return h;
}

}  // namespace genvis::models
