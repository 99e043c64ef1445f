#include "models/dalle/dvae.h"

#include "core/error.h"

#include <cmath>
#include <numbers>
#include <torch/torch.h>

namespace genvis::models {
namespace {

std::shared_ptr<torch::nn::Module> container(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

double half_cosine(int64_t step, int64_t steps) {
  if (steps <= 0) return 1.0;
  const double t = std::min(1.0, static_cast<double>(std::max<int64_t>(step, 0)) / static_cast<double>(steps));
  return 0.5 * (1 - std::cos(std::numbers::pi * t));  // 0 -> 1
}

}  // namespace

at::Tensor dvae_map_pixels(const at::Tensor& x) { return x * (1 - 2 * kDVAEPixelEps) + kDVAEPixelEps; }

at::Tensor dvae_unmap_pixels(const at::Tensor& x) {
  return ((x - kDVAEPixelEps) / (1 - 2 * kDVAEPixelEps)).clamp(0, 1);
}

DVAEConvImpl::DVAEConvImpl(int64_t in, int64_t out, int64_t kernel) {
  // OpenAI's init: w ~ N(0, 1 / (in * kernel^2)), b = 0.
  w = register_parameter("w", torch::randn({out, in, kernel, kernel}) / std::sqrt(static_cast<double>(in * kernel * kernel)));
  b = register_parameter("b", torch::zeros({out}));
}

at::Tensor DVAEConvImpl::forward(const at::Tensor& x) {
  const int64_t pad = (w.size(2) - 1) / 2;
  return at::conv2d(x, w.to(x.scalar_type()), b.to(x.scalar_type()), 1, pad);
}

DVAEBlockImpl::DVAEBlockImpl(int64_t in, int64_t out, double gain, bool decoder) : post_gain(gain) {
  const int64_t hidden = std::max<int64_t>(out / 4, 1);
  if (in != out) id_path = register_module("id_path", DVAEConv(in, out, 1));
  res_path = container(*this, "res_path");
  conv_1 = res_path->register_module("conv_1", DVAEConv(in, hidden, decoder ? 1 : 3));
  conv_2 = res_path->register_module("conv_2", DVAEConv(hidden, hidden, 3));
  conv_3 = res_path->register_module("conv_3", DVAEConv(hidden, hidden, 3));
  conv_4 = res_path->register_module("conv_4", DVAEConv(hidden, out, decoder ? 3 : 1));
}

at::Tensor DVAEBlockImpl::forward(const at::Tensor& x) {
  at::Tensor h = conv_1(at::relu(x));
  h = conv_2(at::relu(h));
  h = conv_3(at::relu(h));
  h = conv_4(at::relu(h));
  return (id_path ? id_path(x) : x) + h * post_gain;
}

DVAECoderImpl::DVAECoderImpl(const DVAEConfig& c, bool is_decoder) : decoder(is_decoder) {
  const int64_t G = c.num_groups;
  const double gain = 1.0 / static_cast<double>((G * c.blocks_per_group) * (G * c.blocks_per_group));
  blocks = container(*this, "blocks");
  // Encoder group g (1-based) ends at hidden * 2^(g-1); the decoder's at hidden * 2^(G-g).
  auto width = [&](int64_t g) { return c.hidden_size << (decoder ? G - g : g - 1); };
  int64_t in = decoder ? c.embedding_dim : c.hidden_size;
  input = blocks->register_module("input", DVAEConv(decoder ? c.vocab_size : c.in_channels, in, decoder ? 1 : 7));
  for (int64_t g = 1; g <= G; ++g) {
    auto group = container(*blocks, "group_" + std::to_string(g));
    std::vector<DVAEBlock> list;
    for (int64_t k = 1; k <= c.blocks_per_group; ++k) {
      list.push_back(group->register_module("block_" + std::to_string(k), DVAEBlock(in, width(g), gain, decoder)));
      in = width(g);
    }
    groups.push_back(std::move(list));
  }
  auto out = container(*blocks, "output");
  output = out->register_module("conv", DVAEConv(in, decoder ? 2 * c.in_channels : c.vocab_size, 1));
}

at::Tensor DVAECoderImpl::forward(const at::Tensor& x) {
  at::Tensor h = input(x);
  for (size_t g = 0; g < groups.size(); ++g) {
    for (auto& block : groups[g]) h = block(h);
    if (g + 1 < groups.size())
      h = decoder ? at::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2}) : at::max_pool2d(h, {2, 2});
  }
  return output(at::relu(h));
}

DiscreteVAEImpl::DiscreteVAEImpl(const DVAEConfig& c) : config(c) {
  if (auto problems = c.validate(); !problems.empty()) throw UsageError("invalid dVAE config: " + problems.front());
  encoder = register_module("encoder", DVAECoder(c, false));
  decoder = register_module("decoder", DVAECoder(c, true));
}

at::Tensor DiscreteVAEImpl::encode_logits(const at::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != config.in_channels || images.size(2) % config.downsample() != 0 ||
      images.size(3) % config.downsample() != 0)
    throw UsageError("dVAE: images must be [B," + std::to_string(config.in_channels) + ",H,W] with H and W multiples of " +
                     std::to_string(config.downsample()) + ", got " + c10::str(images.sizes()));
  return encoder(dvae_map_pixels(images));
}

at::Tensor DiscreteVAEImpl::encode(const at::Tensor& images) { return encode_logits(images).argmax(1); }

at::Tensor DiscreteVAEImpl::decode(const at::Tensor& codes) {
  if (codes.dim() != 3) throw UsageError("dVAE: codes must be [B,h,w], got " + c10::str(codes.sizes()));
  if (codes.numel() > 0 && (codes.min().item<int64_t>() < 0 || codes.max().item<int64_t>() >= config.vocab_size))
    throw UsageError("dVAE: codes must be in 0.." + std::to_string(config.vocab_size - 1));
  const at::Tensor z = at::one_hot(codes, config.vocab_size).permute({0, 3, 1, 2}).to(encoder->input->w.dtype());
  return image_from_raw(decode_raw(z));
}

at::Tensor DiscreteVAEImpl::decode_raw(const at::Tensor& z) { return decoder(z); }

at::Tensor DiscreteVAEImpl::image_from_raw(const at::Tensor& raw) const {
  return dvae_unmap_pixels(at::sigmoid(raw.narrow(1, 0, config.in_channels)));
}

at::Tensor gumbel_softmax(const at::Tensor& logits, double tau, bool straight_through, Rng& rng) {
  if (!(tau > 0)) throw UsageError("gumbel_softmax: the temperature must be positive");
  const at::Tensor u = rng.rand(logits.sizes(), at::TensorOptions().dtype(at::kFloat)).to(logits.device());
  const at::Tensor g = -at::log(-at::log(u.clamp(1e-10, 1 - 1e-7)));
  const at::Tensor soft = at::softmax((logits.to(at::kFloat) + g) / tau, 1);
  if (!straight_through) return soft;
  const at::Tensor hard = at::zeros_like(soft).scatter_(1, soft.argmax(1, true), 1.0);
  return hard - soft.detach() + soft;
}

double dvae_temperature(int64_t step, int64_t anneal_steps, double start, double end) {
  return start + (end - start) * half_cosine(step, anneal_steps);
}

double dvae_kl_weight(int64_t step, int64_t warmup_steps, double max_weight) {
  return max_weight * half_cosine(step, warmup_steps);
}

at::Tensor logit_laplace_nll(const at::Tensor& x, const at::Tensor& location, const at::Tensor& log_scale) {
  const at::Tensor logit = at::log(x) - at::log1p(-x);
  return std::log(2.0) + log_scale + at::log(x) + at::log1p(-x) + (logit - location).abs() * at::exp(-log_scale);
}

DVAELoss dvae_loss(DiscreteVAE& vae, const at::Tensor& images, const DVAELossOptions& o, Rng& rng) {
  if (o.reconstruction != "logit_laplace" && o.reconstruction != "mse")
    throw UsageError("dVAE reconstruction must be logit_laplace or mse, got '" + o.reconstruction + "'");
  const int64_t C = vae->config.in_channels;
  const at::Tensor logits = vae->encode_logits(images).to(at::kFloat);  // [B,K,h,w]
  const at::Tensor z = gumbel_softmax(logits, o.temperature, o.straight_through, rng);
  const at::Tensor raw = vae->decode_raw(z.to(vae->decoder->input->w.dtype())).to(at::kFloat);  // [B,2C,H,W]
  DVAELoss l;
  l.images = vae->image_from_raw(raw);
  at::Tensor per_element;  // [B,C,H,W]
  if (o.reconstruction == "mse") {
    per_element = (l.images - images.to(at::kFloat)).pow(2);
  } else {
    // The log-scale is clamped so that b stays in a range where the density is finite.
    const at::Tensor log_scale = raw.narrow(1, C, C).clamp(-8, 4);
    per_element = logit_laplace_nll(dvae_map_pixels(images.to(at::kFloat)), raw.narrow(1, 0, C), log_scale);
  }
  if (o.pixel_weight.defined()) {
    if (o.pixel_weight.dim() != 4 || o.pixel_weight.size(0) != images.size(0) || o.pixel_weight.size(1) != 1 ||
        o.pixel_weight.size(2) != images.size(2) || o.pixel_weight.size(3) != images.size(3))
      throw UsageError("dVAE: pixel_weight must be [B,1,H,W] of the images, got " + c10::str(o.pixel_weight.sizes()));
    const at::Tensor w = o.pixel_weight.to(at::kFloat).to(per_element.device()).expand_as(per_element);
    l.reconstruction = (per_element * w).sum() / w.sum();
  } else {
    l.reconstruction = per_element.mean();
  }
  // KL(q || uniform) per position = sum_k q log q + log K; summed over positions, per pixel value.
  const at::Tensor log_q = at::log_softmax(logits, 1);
  const at::Tensor kl_per_image = (log_q.exp() * log_q).sum(1).sum({1, 2}) +
                                  std::log(static_cast<double>(vae->config.vocab_size)) * logits.size(2) * logits.size(3);
  l.kl = kl_per_image.mean() / static_cast<double>(images[0].numel());
  l.loss = l.reconstruction + o.kl_weight * l.kl;
  return l;
}

CodebookUse codebook_use(const at::Tensor& codes, int64_t vocab_size) {
  CodebookUse use;
  if (codes.numel() == 0) return use;
  const at::Tensor counts = at::bincount(codes.flatten().to(at::kLong).cpu(), {}, vocab_size).to(at::kDouble);
  const at::Tensor p = counts / counts.sum();
  const at::Tensor used = p > 0;
  const double entropy = -(p.masked_select(used) * p.masked_select(used).log()).sum().item<double>();
  use.perplexity = std::exp(entropy);
  use.dead_codes = vocab_size - used.sum().item<int64_t>();
  return use;
}

}  // namespace genvis::models
