#include "models/dfgan/dfgan_model.h"

#include "core/error.h"

#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace F = torch::nn::functional;

at::Tensor lrelu(const at::Tensor& x) { return F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(0.2)); }

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, bool bias = true) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(bias));
}

}  // namespace

DFGANAffineMLPImpl::DFGANAffineMLPImpl(int64_t cond_dim, int64_t channels, double bias) {
  linear1 = register_module("linear1", torch::nn::Linear(cond_dim, channels));
  linear2 = register_module("linear2", torch::nn::Linear(channels, channels));
  torch::NoGradGuard no_grad;
  linear2->weight.zero_();
  linear2->bias.fill_(bias);
}

at::Tensor DFGANAffineMLPImpl::forward(const at::Tensor& y) { return linear2(torch::relu(linear1(y))); }

DFGANAffineImpl::DFGANAffineImpl(int64_t cond_dim, int64_t channels) {
  fc_gamma = register_module("fc_gamma", DFGANAffineMLP(cond_dim, channels, 1.0));
  fc_beta = register_module("fc_beta", DFGANAffineMLP(cond_dim, channels, 0.0));
}

at::Tensor DFGANAffineImpl::forward(const at::Tensor& x, const at::Tensor& y) {
  const auto per_channel = [&](const at::Tensor& v) { return v.view({v.size(0), v.size(1), 1, 1}); };
  return per_channel(fc_gamma(y)) * x + per_channel(fc_beta(y));
}

DFGANFusionImpl::DFGANFusionImpl(int64_t cond_dim, int64_t channels) {
  affine0 = register_module("affine0", DFGANAffine(cond_dim, channels));
  affine1 = register_module("affine1", DFGANAffine(cond_dim, channels));
}

at::Tensor DFGANFusionImpl::forward(const at::Tensor& x, const at::Tensor& y) {
  return lrelu(affine1(lrelu(affine0(x, y)), y));
}

DFGANGeneratorBlockImpl::DFGANGeneratorBlockImpl(int64_t cond_dim, int64_t in_channels, int64_t out_channels) {
  c1 = register_module("c1", conv(in_channels, out_channels, 3, 1, 1));
  c2 = register_module("c2", conv(out_channels, out_channels, 3, 1, 1));
  fuse1 = register_module("fuse1", DFGANFusion(cond_dim, in_channels));
  fuse2 = register_module("fuse2", DFGANFusion(cond_dim, out_channels));
  if (in_channels != out_channels) c_sc = register_module("c_sc", conv(in_channels, out_channels, 1, 1, 0));
}

at::Tensor DFGANGeneratorBlockImpl::forward(const at::Tensor& x, const at::Tensor& y) {
  const at::Tensor up = at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2});
  const at::Tensor shortcut = c_sc ? c_sc(up) : up;
  return shortcut + c2(fuse2(c1(fuse1(up, y)), y));
}

DFGANGeneratorImpl::DFGANGeneratorImpl(const DFGANConfig& c) : config(c) {
  if (const auto problems = c.validate(); !problems.empty()) throw UsageError("DF-GAN config: " + problems.front());
  fc = register_module("fc", torch::nn::Linear(c.z_dim, c.generator_fc_channels() * 4 * 4));
  GBlocks = register_module("GBlocks", torch::nn::ModuleList());
  int64_t last = c.generator_fc_channels();
  for (const auto& [in, out] : c.generator_channels()) {
    GBlocks->push_back(DFGANGeneratorBlock(c.z_dim + c.cond_dim, in, out));
    last = out;
  }
  to_rgb = register_module("to_rgb", torch::nn::ModuleList());
  to_rgb->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
  to_rgb->push_back(conv(last, 3, 3, 1, 1));
}

at::Tensor DFGANGeneratorImpl::forward(const at::Tensor& z, const at::Tensor& sentence) {
  if (z.dim() != 2 || z.size(1) != config.z_dim || sentence.dim() != 2 || sentence.size(1) != config.cond_dim ||
      sentence.size(0) != z.size(0))
    throw UsageError("DF-GAN generator: expected z [B," + std::to_string(config.z_dim) + "] and sentence [B," +
                     std::to_string(config.cond_dim) + "], got " + c10::str(z.sizes()) + " and " +
                     c10::str(sentence.sizes()));
  at::Tensor h = fc(z).view({z.size(0), config.generator_fc_channels(), 4, 4});
  const at::Tensor cond = at::cat({z, sentence}, 1);
  for (const auto& m : *GBlocks) h = m->as<DFGANGeneratorBlockImpl>()->forward(h, cond);
  const at::Tensor rgb = to_rgb[1]->as<torch::nn::Conv2dImpl>()->forward(lrelu(h));
  if (config.output == "tanh") return torch::tanh(rgb);
  return is_training() ? rgb : rgb.clamp(-1.0, 1.0);
}

DFGANDiscriminatorBlockImpl::DFGANDiscriminatorBlockImpl(int64_t in_channels, int64_t out_channels) {
  conv_r = register_module("conv_r", torch::nn::ModuleList());
  conv_r->push_back(conv(in_channels, out_channels, 4, 2, 1, /*bias=*/false));
  conv_r->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
  conv_r->push_back(conv(out_channels, out_channels, 3, 1, 1, /*bias=*/false));
  conv_r->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
  if (in_channels != out_channels) conv_s = register_module("conv_s", conv(in_channels, out_channels, 1, 1, 0));
  gamma = register_parameter("gamma", torch::zeros({1}));
}

at::Tensor DFGANDiscriminatorBlockImpl::forward(const at::Tensor& x) {
  const at::Tensor res = lrelu(conv_r[2]->as<torch::nn::Conv2dImpl>()->forward(lrelu(conv_r[0]->as<torch::nn::Conv2dImpl>()->forward(x))));
  const at::Tensor shortcut = at::avg_pool2d(conv_s ? conv_s(x) : x, {2, 2});
  return shortcut + gamma * res;
}

DFGANDiscriminatorImpl::DFGANDiscriminatorImpl(const DFGANConfig& c) : config(c) {
  if (const auto problems = c.validate(); !problems.empty()) throw UsageError("DF-GAN config: " + problems.front());
  conv_img = register_module("conv_img", conv(3, c.ndf, 3, 1, 1));
  DBlocks = register_module("DBlocks", torch::nn::ModuleList());
  for (const auto& [in, out] : c.discriminator_channels()) DBlocks->push_back(DFGANDiscriminatorBlock(in, out));
  joint_conv = register_module("joint_conv", torch::nn::ModuleList());
  joint_conv->push_back(conv(c.discriminator_out_channels() + c.cond_dim, c.ndf * 2, 3, 1, 1, /*bias=*/false));
  joint_conv->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
  joint_conv->push_back(conv(c.ndf * 2, 1, 4, 1, 0, /*bias=*/false));
}

at::Tensor DFGANDiscriminatorImpl::forward(const at::Tensor& images) {
  const int64_t s = config.image_size;
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != s || images.size(3) != s)
    throw UsageError("DF-GAN discriminator: expected images [B,3," + std::to_string(s) + "," + std::to_string(s) +
                     "], got " + c10::str(images.sizes()));
  at::Tensor h = conv_img(images);
  for (const auto& m : *DBlocks) h = m->as<DFGANDiscriminatorBlockImpl>()->forward(h);
  return h;
}

at::Tensor DFGANDiscriminatorImpl::score(const at::Tensor& features, const at::Tensor& sentence) {
  if (sentence.dim() != 2 || sentence.size(1) != config.cond_dim || sentence.size(0) != features.size(0))
    throw UsageError("DF-GAN discriminator: expected sentence [B," + std::to_string(config.cond_dim) + "], got " +
                     c10::str(sentence.sizes()));
  const at::Tensor tiled = sentence.view({sentence.size(0), sentence.size(1), 1, 1}).expand({-1, -1, 4, 4});
  const at::Tensor h = lrelu(joint_conv[0]->as<torch::nn::Conv2dImpl>()->forward(at::cat({features, tiled}, 1)));
  return joint_conv[2]->as<torch::nn::Conv2dImpl>()->forward(h).flatten();
}

}  // namespace genvis::models
