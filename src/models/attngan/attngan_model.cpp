#include "models/attngan/attngan_model.h"

#include "core/error.h"

#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace nnm = torch::nn;

std::string shape_text(const at::Tensor& t) { return t.defined() ? c10::str(t.sizes()) : "undefined"; }

at::Tensor gated(const at::Tensor& x) {
  const int64_t half = x.size(1) / 2;
  return x.narrow(1, 0, half) * torch::sigmoid(x.narrow(1, half, half));
}

nnm::Conv2d conv3x3(int64_t in, int64_t out) {
  return nnm::Conv2d(nnm::Conv2dOptions(in, out, 3).stride(1).padding(1).bias(false));
}

nnm::LeakyReLU lrelu() { return nnm::LeakyReLU(nnm::LeakyReLUOptions().negative_slope(0.2)); }

// upBlock: nearest x2, conv3x3 -> 2*out, BatchNorm, GLU (parameters at 1 and 2).
nnm::Sequential up_block(int64_t in, int64_t out) {
  return nnm::Sequential(nnm::Upsample(nnm::UpsampleOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest)),
                         conv3x3(in, out * 2), nnm::BatchNorm2d(out * 2), nnm::Functional(gated));
}

struct ResBlockImpl : nnm::Module {
  explicit ResBlockImpl(int64_t channels) {
    block = register_module("block", nnm::Sequential(conv3x3(channels, channels * 2), nnm::BatchNorm2d(channels * 2),
                                                     nnm::Functional(gated), conv3x3(channels, channels),
                                                     nnm::BatchNorm2d(channels)));
  }
  at::Tensor forward(const at::Tensor& x) { return block->forward(x) + x; }
  nnm::Sequential block{nullptr};
};
TORCH_MODULE(ResBlock);

// Block3x3_leakRelu: conv3x3, BatchNorm, LeakyReLU(0.2).
nnm::Sequential block3x3_lrelu(int64_t in, int64_t out) {
  return nnm::Sequential(conv3x3(in, out), nnm::BatchNorm2d(out), lrelu());
}

// downBlock: 4x4 stride-2 conv, BatchNorm, LeakyReLU(0.2).
nnm::Sequential down_block(int64_t in, int64_t out) {
  return nnm::Sequential(nnm::Conv2d(nnm::Conv2dOptions(in, out, 4).stride(2).padding(1).bias(false)),
                         nnm::BatchNorm2d(out), lrelu());
}

// encode_image_by_16times at our sizes: log2(base / 4) stride-2 convolutions to 8 * df channels
// (the official four from df: df, 2df, 4df, 8df; fewer start wider), batch norm after all but
// the first.
nnm::Sequential encode_base(int64_t df, int64_t base) {
  int64_t n = 0;
  for (int64_t s = base; s > 4; s >>= 1) ++n;
  nnm::Sequential seq;
  int64_t in = 3;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t out = df * (int64_t{8} >> (n - 1 - i));
    seq->push_back(nnm::Conv2d(nnm::Conv2dOptions(in, out, 4).stride(2).padding(1).bias(false)));
    if (i > 0) seq->push_back(nnm::BatchNorm2d(out));
    seq->push_back(lrelu());
    in = out;
  }
  return seq;
}

nnm::Sequential outlogits(int64_t channels) {
  return nnm::Sequential(nnm::Conv2d(nnm::Conv2dOptions(channels, 1, 4).stride(4)));
}

}  // namespace

AttnGANConditioningImpl::AttnGANConditioningImpl(int64_t embedding_dim, int64_t condition_dim) {
  fc = register_module("fc", nnm::Linear(embedding_dim, condition_dim * 4));
}

AttnGANConditioningImpl::Output AttnGANConditioningImpl::forward(const at::Tensor& sentence, const at::Tensor& eps) {
  const at::Tensor x = gated(fc(sentence));
  const int64_t c = x.size(1) / 2;
  Output o;
  o.mu = x.narrow(1, 0, c);
  o.logvar = x.narrow(1, c, c);
  o.c = o.mu + torch::exp(0.5 * o.logvar) * eps;
  return o;
}

AttnGANWordAttentionImpl::AttnGANWordAttentionImpl(int64_t image_channels, int64_t word_dim) {
  conv_context = register_module("conv_context", nnm::Conv2d(nnm::Conv2dOptions(word_dim, image_channels, 1).bias(false)));
}

AttnGANWordAttentionImpl::Output AttnGANWordAttentionImpl::forward(const at::Tensor& h, const at::Tensor& words,
                                                                   const at::Tensor& word_mask) {
  const int64_t b = h.size(0), ih = h.size(2), iw = h.size(3), t = words.size(2);
  const at::Tensor source = conv_context(words.unsqueeze(3)).squeeze(3);        // [B,C,T]
  const at::Tensor target = h.reshape({b, h.size(1), ih * iw}).transpose(1, 2);  // [B,HW,C]
  at::Tensor scores = torch::bmm(target, source);                                // [B,HW,T]
  scores = scores.masked_fill(word_mask.logical_not().unsqueeze(1), -std::numeric_limits<double>::infinity());
  const at::Tensor attn = torch::softmax(scores, 2).transpose(1, 2);  // [B,T,HW]
  Output o;
  o.context = torch::bmm(source, attn).reshape({b, h.size(1), ih, iw});
  o.attention = attn.reshape({b, t, ih, iw});
  return o;
}

AttnGANInitStageImpl::AttnGANInitStageImpl(const AttnGANConfig& c) {
  const int64_t u = c.init_upsamples();
  channels = c.gf_dim << u;
  fc = register_module("fc", nnm::Sequential(nnm::Linear(nnm::LinearOptions(c.z_dim + c.condition_dim, channels * 16 * 2).bias(false)),
                                             nnm::BatchNorm1d(channels * 16 * 2), nnm::Functional(gated)));
  for (int64_t i = 0, ch = channels; i < u; ++i, ch /= 2)
    upsample.push_back(register_module("upsample" + std::to_string(i + 1), up_block(ch, ch / 2)));
}

at::Tensor AttnGANInitStageImpl::forward(const at::Tensor& z, const at::Tensor& c) {
  at::Tensor h = fc->forward(torch::cat({c, z}, 1)).view({z.size(0), channels, 4, 4});
  for (auto& up : upsample) h = up->forward(h);
  return h;
}

AttnGANNextStageImpl::AttnGANNextStageImpl(const AttnGANConfig& c) {
  att = register_module("att", AttnGANWordAttention(c.gf_dim, c.embedding_dim));
  residual = register_module("residual", nnm::Sequential());
  for (int64_t i = 0; i < c.r_num; ++i) residual->push_back(ResBlock(c.gf_dim * 2));
  upsample = register_module("upsample", up_block(c.gf_dim * 2, c.gf_dim));
}

AttnGANWordAttentionImpl::Output AttnGANNextStageImpl::forward(const at::Tensor& h, const at::Tensor& words,
                                                               const at::Tensor& word_mask) {
  auto a = att(h, words, word_mask);
  at::Tensor x = torch::cat({h, a.context}, 1);
  if (!residual->is_empty()) x = residual->forward(x);
  a.context = upsample->forward(x);
  return a;
}

AttnGANGeneratorImpl::AttnGANGeneratorImpl(const AttnGANConfig& c) : config(c) {
  if (const auto problems = c.validate(); !problems.empty())
    throw UsageError("AttnGAN: invalid config: " + problems.front());
  ca_net = register_module("ca_net", AttnGANConditioning(c.embedding_dim, c.condition_dim));
  h_net1 = register_module("h_net1", AttnGANInitStage(c));
  for (int64_t k = 1; k <= c.branch_num; ++k) {
    if (k > 1) next.push_back(register_module("h_net" + std::to_string(k), AttnGANNextStage(c)));
    // GET_IMAGE_G names its Sequential `img`: img_netK.img.0.weight.
    auto holder = register_module("img_net" + std::to_string(k), std::make_shared<nnm::Module>());
    img.push_back(holder->register_module("img", nnm::Sequential(conv3x3(c.gf_dim, 3), nnm::Functional([](const at::Tensor& x) { return torch::tanh(x); }))));
  }
  attngan_init_weights(*this);
}

AttnGANGeneratorOutput AttnGANGeneratorImpl::forward(const at::Tensor& z, const at::Tensor& eps, const at::Tensor& sentence,
                                                     const at::Tensor& words, const at::Tensor& word_mask) {
  const int64_t b = z.defined() ? z.size(0) : 0;
  const auto bad = [&](const at::Tensor& t, std::vector<int64_t> want) {
    return !t.defined() || t.sizes() != at::IntArrayRef(want);
  };
  if (b < 1 || bad(z, {b, config.z_dim}) || bad(eps, {b, config.condition_dim}) || bad(sentence, {b, config.embedding_dim}) ||
      !words.defined() || words.dim() != 3 || words.size(0) != b || words.size(1) != config.embedding_dim ||
      words.size(2) < 1 || bad(word_mask, {b, words.size(2)}))
    throw UsageError("AttnGAN generator: expected z [B," + std::to_string(config.z_dim) + "], eps [B," +
                     std::to_string(config.condition_dim) + "], sentence [B," + std::to_string(config.embedding_dim) +
                     "], words [B," + std::to_string(config.embedding_dim) + ",T], word_mask [B,T]; got " + shape_text(z) +
                     ", " + shape_text(eps) + ", " + shape_text(sentence) + ", " + shape_text(words) + ", " +
                     shape_text(word_mask));
  AttnGANGeneratorOutput out;
  const auto ca = ca_net(sentence, eps);
  out.mu = ca.mu;
  out.logvar = ca.logvar;
  at::Tensor h = h_net1(z, ca.c);
  out.images.push_back(img[0]->forward(h));
  const at::Tensor mask = word_mask.to(at::kBool);
  for (size_t k = 0; k < next.size(); ++k) {
    auto a = next[k](h, words, mask);
    h = a.context;
    out.attention.push_back(a.attention);
    out.images.push_back(img[k + 1]->forward(h));
  }
  return out;
}

AttnGANDiscriminatorImpl::AttnGANDiscriminatorImpl(const AttnGANConfig& c, int64_t stage) : config(c) {
  if (stage < 0 || stage >= c.branch_num) throw UsageError("AttnGAN: no stage " + std::to_string(stage));
  size = c.base_size() << stage;
  const int64_t df = c.df_dim;
  encode.push_back(register_module("img_code_s16", encode_base(df, c.base_size())));
  // The official D_NET128/256: downBlocks to 16 * df, 32 * df, ..., then 3x3 blocks back to 8 * df.
  int64_t ch = df * 8, scale = 16;
  for (int64_t i = 0; i < stage; ++i, ch *= 2) {
    scale *= 2;
    encode.push_back(register_module("img_code_s" + std::to_string(scale), down_block(ch, ch * 2)));
  }
  for (int64_t i = 1; i <= stage; ++i, ch /= 2)
    encode.push_back(register_module("img_code_s" + std::to_string(scale) + "_" + std::to_string(i),
                                     block3x3_lrelu(ch, ch / 2)));
  auto uncond = register_module("UNCOND_DNET", std::make_shared<nnm::Module>());
  uncond_outlogits = uncond->register_module("outlogits", outlogits(df * 8));
  auto cond = register_module("COND_DNET", std::make_shared<nnm::Module>());
  joint_conv = cond->register_module("jointConv", block3x3_lrelu(df * 8 + c.embedding_dim, df * 8));
  cond_outlogits = cond->register_module("outlogits", outlogits(df * 8));
  attngan_init_weights(*this);
}

at::Tensor AttnGANDiscriminatorImpl::forward(const at::Tensor& images) {
  if (!images.defined() || images.dim() != 4 || images.size(1) != 3 || images.size(2) != size || images.size(3) != size)
    throw UsageError("AttnGAN discriminator: expected images [B,3," + std::to_string(size) + "," + std::to_string(size) +
                     "], got " + shape_text(images));
  at::Tensor x = images;
  for (auto& e : encode) x = e->forward(x);
  return x;
}

at::Tensor AttnGANDiscriminatorImpl::unconditional(const at::Tensor& features) {
  return uncond_outlogits->forward(features).view({-1});
}

at::Tensor AttnGANDiscriminatorImpl::conditional(const at::Tensor& features, const at::Tensor& sentence) {
  const at::Tensor c = sentence.view({sentence.size(0), sentence.size(1), 1, 1}).expand({-1, -1, 4, 4});
  return cond_outlogits->forward(joint_conv->forward(torch::cat({features, c}, 1))).view({-1});
}

AttnGANDiscriminatorsImpl::AttnGANDiscriminatorsImpl(const AttnGANConfig& c) {
  for (int64_t k = 0; k < c.branch_num; ++k)
    stages.push_back(register_module("netD" + std::to_string(k), AttnGANDiscriminator(c, k)));
}

void attngan_init_weights(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* conv = m->as<nnm::Conv2d>()) {
      nnm::init::orthogonal_(conv->weight, 1.0);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* linear = m->as<nnm::Linear>()) {
      nnm::init::orthogonal_(linear->weight, 1.0);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* bn = m->as<nnm::BatchNorm2d>()) {
      bn->weight.normal_(1.0, 0.02);
      bn->bias.zero_();
    } else if (auto* bn1 = m->as<nnm::BatchNorm1d>()) {
      bn1->weight.normal_(1.0, 0.02);
      bn1->bias.zero_();
    }
  }
}

}  // namespace genvis::models
