// pytorch-fid's InceptionV3 (FID feature network): the key table of the released weight file
// (written here from torchvision's Inception3 and pytorch-fid's fid_inception_v3), the patched
// pooling of the FID blocks, the preprocessing (bilinear, align_corners=False, no antialiasing),
// output shapes, the safetensors round trip and the load errors. No parity against the real
// weights: the .pth is not in the fixtures.
#include "core/error.h"
#include "io/safetensors.h"
#include "models/inception/fid_inception.h"
#include "support/test_support.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <torch/torch.h>

namespace genvis::models {
namespace {

using Shape = std::vector<int64_t>;
using Table = std::map<std::string, Shape>;

// ---- The released file's tensors, block by block (torchvision inception.py) -------------------

void basic_conv(Table& t, const std::string& name, int64_t in, int64_t out, int64_t kh, int64_t kw) {
  t[name + ".conv.weight"] = {out, in, kh, kw};
  for (const char* s : {"weight", "bias", "running_mean", "running_var"}) t[name + ".bn." + s] = {out};
}

void block_a(Table& t, const std::string& p, int64_t in, int64_t pool_features) {
  basic_conv(t, p + ".branch1x1", in, 64, 1, 1);
  basic_conv(t, p + ".branch5x5_1", in, 48, 1, 1);
  basic_conv(t, p + ".branch5x5_2", 48, 64, 5, 5);
  basic_conv(t, p + ".branch3x3dbl_1", in, 64, 1, 1);
  basic_conv(t, p + ".branch3x3dbl_2", 64, 96, 3, 3);
  basic_conv(t, p + ".branch3x3dbl_3", 96, 96, 3, 3);
  basic_conv(t, p + ".branch_pool", in, pool_features, 1, 1);
}

void block_b(Table& t, const std::string& p, int64_t in) {
  basic_conv(t, p + ".branch3x3", in, 384, 3, 3);
  basic_conv(t, p + ".branch3x3dbl_1", in, 64, 1, 1);
  basic_conv(t, p + ".branch3x3dbl_2", 64, 96, 3, 3);
  basic_conv(t, p + ".branch3x3dbl_3", 96, 96, 3, 3);
}

void block_c(Table& t, const std::string& p, int64_t in, int64_t c7) {
  basic_conv(t, p + ".branch1x1", in, 192, 1, 1);
  basic_conv(t, p + ".branch7x7_1", in, c7, 1, 1);
  basic_conv(t, p + ".branch7x7_2", c7, c7, 1, 7);
  basic_conv(t, p + ".branch7x7_3", c7, 192, 7, 1);
  basic_conv(t, p + ".branch7x7dbl_1", in, c7, 1, 1);
  basic_conv(t, p + ".branch7x7dbl_2", c7, c7, 7, 1);
  basic_conv(t, p + ".branch7x7dbl_3", c7, c7, 1, 7);
  basic_conv(t, p + ".branch7x7dbl_4", c7, c7, 7, 1);
  basic_conv(t, p + ".branch7x7dbl_5", c7, 192, 1, 7);
  basic_conv(t, p + ".branch_pool", in, 192, 1, 1);
}

void block_d(Table& t, const std::string& p, int64_t in) {
  basic_conv(t, p + ".branch3x3_1", in, 192, 1, 1);
  basic_conv(t, p + ".branch3x3_2", 192, 320, 3, 3);
  basic_conv(t, p + ".branch7x7x3_1", in, 192, 1, 1);
  basic_conv(t, p + ".branch7x7x3_2", 192, 192, 1, 7);
  basic_conv(t, p + ".branch7x7x3_3", 192, 192, 7, 1);
  basic_conv(t, p + ".branch7x7x3_4", 192, 192, 3, 3);
}

void block_e(Table& t, const std::string& p, int64_t in) {
  basic_conv(t, p + ".branch1x1", in, 320, 1, 1);
  basic_conv(t, p + ".branch3x3_1", in, 384, 1, 1);
  basic_conv(t, p + ".branch3x3_2a", 384, 384, 1, 3);
  basic_conv(t, p + ".branch3x3_2b", 384, 384, 3, 1);
  basic_conv(t, p + ".branch3x3dbl_1", in, 448, 1, 1);
  basic_conv(t, p + ".branch3x3dbl_2", 448, 384, 3, 3);
  basic_conv(t, p + ".branch3x3dbl_3a", 384, 384, 1, 3);
  basic_conv(t, p + ".branch3x3dbl_3b", 384, 384, 3, 1);
  basic_conv(t, p + ".branch_pool", in, 192, 1, 1);
}

// Without BatchNorm num_batches_tracked (the loader neither needs nor reads them).
Table released_file_table() {
  Table t;
  basic_conv(t, "Conv2d_1a_3x3", 3, 32, 3, 3);
  basic_conv(t, "Conv2d_2a_3x3", 32, 32, 3, 3);
  basic_conv(t, "Conv2d_2b_3x3", 32, 64, 3, 3);
  basic_conv(t, "Conv2d_3b_1x1", 64, 80, 1, 1);
  basic_conv(t, "Conv2d_4a_3x3", 80, 192, 3, 3);
  block_a(t, "Mixed_5b", 192, 32);
  block_a(t, "Mixed_5c", 256, 64);
  block_a(t, "Mixed_5d", 288, 64);
  block_b(t, "Mixed_6a", 288);
  block_c(t, "Mixed_6b", 768, 128);
  block_c(t, "Mixed_6c", 768, 160);
  block_c(t, "Mixed_6d", 768, 160);
  block_c(t, "Mixed_6e", 768, 192);
  block_d(t, "Mixed_7a", 768);
  block_e(t, "Mixed_7b", 1280);
  block_e(t, "Mixed_7c", 2048);
  t["fc.weight"] = {1008, 2048};  // the TF graph's 1008 classes
  t["fc.bias"] = {1008};
  return t;
}

bool is_batch_counter(const std::string& name) {
  const std::string s = ".num_batches_tracked";
  return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
}

// The module's tensors as a file would hold them: parameters and running statistics, plus a
// fake classifier.
std::vector<std::pair<std::string, at::Tensor>> file_tensors(torch::nn::Module& m, bool with_batch_counters = false) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : m.named_parameters(true)) out.emplace_back(p.key(), p.value().detach());
  for (const auto& b : m.named_buffers(true))
    if (with_batch_counters || !is_batch_counter(b.key())) out.emplace_back(b.key(), b.value());
  out.emplace_back("fc.weight", torch::randn({1008, 2048}));
  out.emplace_back("fc.bias", torch::randn({1008}));
  return out;
}

// Scale-preserving random weights and running statistics, so that features are far from 0 and a
// tensor that is not loaded changes them.
void randomise(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.named_parameters(true)) {
    at::Tensor v = p.value();
    if (v.dim() == 4) v.normal_(0.0, std::sqrt(2.0 / static_cast<double>(v[0].numel())));
    else if (p.key().ends_with("bn.weight")) v.uniform_(0.5, 1.5);
    else v.uniform_(-0.1, 0.1);
  }
  for (auto& b : m.named_buffers(true)) {
    if (b.key().ends_with("running_mean")) b.value().uniform_(-0.1, 0.1);
    if (b.key().ends_with("running_var")) b.value().uniform_(0.5, 1.5);
  }
}

// A BasicConv2d from 1 channel that passes a positive input through unchanged on every output.
void make_identity(BasicConv2d& c) {
  torch::NoGradGuard no_grad;
  ASSERT_EQ(c->conv->weight.size(1), 1);
  c->conv->weight.fill_(1.0);
  c->bn->weight.fill_(1.0);
  c->bn->bias.zero_();
  c->bn->running_mean.zero_();
  c->bn->running_var.fill_(1.0 - 0.001);  // sqrt(var + eps) = 1
}

std::string load_error(const std::string& path) {
  try {
    FIDInceptionV3Impl::load(path);
  } catch (const LoadError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no LoadError for " << path;
  return "";
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

// ---- Tests -----------------------------------------------------------------------------------

TEST(FIDInceptionV3, HasTheKeysAndShapesOfTheReleasedFile) {
  const Table want = released_file_table();
  ASSERT_EQ(want.size(), kFIDInceptionFileTensorCount);
  ASSERT_EQ(want.size(), 472u);  // 94 BasicConv2d x 5 + fc.weight + fc.bias

  FIDInceptionV3 net;
  Table got;
  int64_t parameters = 0;
  for (const auto& p : net->named_parameters(true)) {
    got[p.key()] = p.value().sizes().vec();
    parameters += p.value().numel();
  }
  for (const auto& b : net->named_buffers(true))
    if (!is_batch_counter(b.key())) got[b.key()] = b.value().sizes().vec();
  EXPECT_EQ(net->named_buffers(true).size(), 94u * 3);  // running_mean, running_var, num_batches_tracked

  // Everything but the classifier, name for name and shape for shape.
  Table want_module = want;
  want_module.erase("fc.weight");
  want_module.erase("fc.bias");
  for (const auto& [name, shape] : want_module) {
    const auto it = got.find(name);
    if (it == got.end()) ADD_FAILURE() << "module lacks " << name;
    else EXPECT_EQ(it->second, shape) << name;
  }
  for (const auto& [name, shape] : got) EXPECT_TRUE(want_module.count(name)) << "module has extra " << name;

  // Counts per block: 5 tensors per BasicConv2d.
  std::map<std::string, int> per_block;
  for (const auto& [name, shape] : got) ++per_block[name.substr(0, name.find('.'))];
  EXPECT_EQ(per_block["Conv2d_1a_3x3"], 5);
  for (const char* a : {"Mixed_5b", "Mixed_5c", "Mixed_5d"}) EXPECT_EQ(per_block[a], 7 * 5) << a;
  EXPECT_EQ(per_block["Mixed_6a"], 4 * 5);
  for (const char* c : {"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"}) EXPECT_EQ(per_block[c], 10 * 5) << c;
  EXPECT_EQ(per_block["Mixed_7a"], 6 * 5);
  for (const char* e : {"Mixed_7b", "Mixed_7c"}) EXPECT_EQ(per_block[e], 9 * 5) << e;
  EXPECT_EQ(per_block.size(), 16u);  // 5 stem convs + 11 Mixed blocks; no AuxLogits, no fc

  // Spot checks straight from the reference.
  EXPECT_EQ(got["Conv2d_1a_3x3.conv.weight"], (Shape{32, 3, 3, 3}));
  EXPECT_EQ(got["Conv2d_1a_3x3.bn.running_mean"], (Shape{32}));
  EXPECT_EQ(got["Mixed_5b.branch_pool.conv.weight"], (Shape{32, 192, 1, 1}));
  EXPECT_EQ(got["Mixed_6b.branch7x7_2.conv.weight"], (Shape{128, 128, 1, 7}));
  EXPECT_EQ(got["Mixed_7a.branch3x3_2.conv.weight"], (Shape{320, 192, 3, 3}));
  EXPECT_EQ(got["Mixed_7c.branch_pool.conv.weight"], (Shape{192, 2048, 1, 1}));
  EXPECT_EQ(got["Mixed_7c.branch3x3dbl_3b.conv.weight"], (Shape{384, 384, 3, 1}));

  // Layer settings the key table cannot show: BatchNorm eps 0.001 everywhere, the pool of the
  // last two blocks.
  int batch_norms = 0;
  for (const auto& m : net->modules(/*include_self=*/false)) {
    if (const auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) {
      ++batch_norms;
      EXPECT_DOUBLE_EQ(bn->options.eps(), 0.001);
    }
  }
  EXPECT_EQ(batch_norms, 94);
  EXPECT_EQ(net->Mixed_7b->pool, FIDInceptionEPool::AvgExcludePad);
  EXPECT_EQ(net->Mixed_7c->pool, FIDInceptionEPool::Max);

  // torchvision's Inception3 has 27,161,264 parameters with AuxLogits (3,326,696) and a
  // 1000-class fc (2,049,000).
  EXPECT_EQ(parameters, kFIDInceptionParameterCount);
  EXPECT_EQ(parameters, 27'161'264 - 3'326'696 - 2'049'000);
}

TEST(FIDInceptionBlocks, PoolBranchesFollowTheTensorFlowGraph) {
  torch::manual_seed(0);
  // A positive non-constant map and a constant one, 1 channel, 5x5.
  const at::Tensor ramp = torch::rand({1, 1, 5, 5}) + 0.5;
  const at::Tensor ones = torch::ones({1, 1, 5, 5});
  const auto avg_exclude_pad = [](const at::Tensor& x) {
    return at::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, false, /*count_include_pad=*/false);
  };
  const auto last = [](const at::Tensor& y, int64_t n) { return y.narrow(1, y.size(1) - n, n); };
  torch::NoGradGuard no_grad;

  FIDInceptionA a(1, 2);
  FIDInceptionC c(1, 8);
  FIDInceptionE e_avg(1, FIDInceptionEPool::AvgExcludePad), e_max(1, FIDInceptionEPool::Max);
  for (BasicConv2d* bp : {&a->branch_pool, &c->branch_pool, &e_avg->branch_pool, &e_max->branch_pool}) make_identity(*bp);
  a->eval();  // BatchNorm on running statistics
  c->eval();
  e_avg->eval();
  e_max->eval();

  // Constant input: TF's average ignores the zero padding, so every output is 1 (counting the
  // padding would give 4/9 in the corners and 6/9 on the edges).
  for (const at::Tensor& y : {last(a(ones), 2), last(c(ones), 192), last(e_avg(ones), 192)}) {
    EXPECT_TRUE(torch::allclose(y, torch::ones_like(y), 1e-5, 1e-6)) << y[0][0];
  }
  EXPECT_EQ(a(ones).size(1), 64 + 64 + 96 + 2);
  EXPECT_EQ(c(ones).size(1), 768);
  EXPECT_EQ(e_avg(ones).size(1), 2048);

  // Non-constant input: average without padding in A, C and Mixed_7b; max in Mixed_7c.
  const at::Tensor avg = avg_exclude_pad(ramp), max = at::max_pool2d(ramp, {3, 3}, {1, 1}, {1, 1});
  ASSERT_FALSE(torch::allclose(avg, max));
  EXPECT_TRUE(torch::allclose(last(a(ramp), 2), avg.expand({1, 2, 5, 5}), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(last(c(ramp), 192), avg.expand({1, 192, 5, 5}), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(last(e_avg(ramp), 192), avg.expand({1, 192, 5, 5}), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(last(e_max(ramp), 192), max.expand({1, 192, 5, 5}), 1e-5, 1e-6));

  // The reductions pass the input through a 3x3/2 max pool, unpadded.
  InceptionB b(1);
  InceptionD d(1);
  b->eval();
  d->eval();
  const at::Tensor reduced = at::max_pool2d(ramp, {3, 3}, {2, 2});  // [1,1,2,2]
  const at::Tensor yb = b(ramp), yd = d(ramp);
  EXPECT_EQ(yb.sizes().vec(), (Shape{1, 384 + 96 + 1, 2, 2}));
  EXPECT_EQ(yd.sizes().vec(), (Shape{1, 320 + 192 + 1, 2, 2}));
  EXPECT_TRUE(torch::equal(last(yb, 1), reduced));
  EXPECT_TRUE(torch::equal(last(yd, 1), reduced));
}

TEST(FIDInceptionPreprocess, ResizesBilinearWithoutAlignedCornersThenMapsToMinusOneOne) {
  // Up: in[i][j] = (2i + j) / 4 on 2x2 -> 4x4. Source coordinates (d + 0.5) / 2 - 0.5 clamped
  // to [0,1]: 0, 0.25, 0.75, 1 (align_corners=True would give 0, 1/3, 2/3, 1).
  at::Tensor up = torch::tensor({0.0f, 0.25f, 0.5f, 0.75f}).reshape({1, 1, 2, 2}).expand({1, 3, 2, 2});
  const at::Tensor y = fid_inception_preprocess(up, 4);
  ASSERT_EQ(y.sizes().vec(), (Shape{1, 3, 4, 4}));
  const float s[4] = {0.0f, 0.25f, 0.75f, 1.0f};
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 4; ++c)
        EXPECT_NEAR(y[0][ch][r][c].item<float>(), 2.0f * (2.0f * s[r] + s[c]) / 4.0f - 1.0f, 1e-6f) << r << "," << c;

  // Down, non-square: 2x6 -> 2x2, columns j^2/25. Source columns (d + 0.5) * 3 - 0.5 = 1, 4:
  // plain bilinear samples 1/25 and 16/25 (area averaging would give 5/75 and 50/75, and an
  // antialiased filter something else again). Rows 2 -> 2 are copied.
  at::Tensor down = torch::empty({1, 3, 2, 6});
  for (int j = 0; j < 6; ++j) {
    down.select(3, j).select(2, 0).fill_(j * j / 25.0);
    down.select(3, j).select(2, 1).fill_(j * j / 50.0);
  }
  const at::Tensor z = fid_inception_preprocess(down, 2);
  ASSERT_EQ(z.sizes().vec(), (Shape{1, 3, 2, 2}));
  const at::Tensor want = torch::tensor({1 / 25.0f, 16 / 25.0f, 1 / 50.0f, 16 / 50.0f}).reshape({1, 1, 2, 2}) * 2 - 1;
  EXPECT_TRUE(torch::allclose(z, want.expand({1, 3, 2, 2}), 1e-5, 1e-6)) << z;

  // At the target size the resize is exact.
  const at::Tensor same = torch::rand({1, 3, 7, 7});
  EXPECT_TRUE(torch::allclose(fid_inception_preprocess(same, 7), same * 2 - 1, 0, 1e-6));

  EXPECT_THROW(fid_inception_preprocess(torch::rand({1, 1, 8, 8})), UsageError);
  EXPECT_THROW(fid_inception_preprocess(torch::rand({3, 8, 8})), UsageError);
  EXPECT_THROW(fid_inception_preprocess(torch::zeros({1, 3, 8, 8}, at::kByte)), UsageError);
}

TEST(FIDInceptionV3, Pool3FeaturesAre2048DForAnyInputSize) {
  torch::manual_seed(0);
  FIDInceptionV3 net;
  randomise(*net);
  net->train();  // pool3_features must switch to eval mode itself

  const at::Tensor images = torch::rand({2, 3, 299, 299});
  const at::Tensor f299 = net->pool3_features(images);
  EXPECT_FALSE(net->is_training());
  ASSERT_EQ(f299.sizes().vec(), (Shape{2, 2048}));
  EXPECT_EQ(f299.scalar_type(), at::kFloat);
  EXPECT_TRUE(f299.isfinite().all().item<bool>());
  EXPECT_TRUE((f299 >= 0).all().item<bool>());  // mean of ReLU outputs
  EXPECT_GT(f299.abs().max().item<float>(), 1e-3f);
  EXPECT_FALSE(torch::allclose(f299[0], f299[1]));

  // Step by step as in torchvision's Inception3._forward, with its shapes at 299x299.
  {
    torch::NoGradGuard no_grad;
    const auto shape = [](const at::Tensor& t) { return t.sizes().vec(); };
    at::Tensor h = fid_inception_preprocess(images.narrow(0, 0, 1));
    h = net->Conv2d_1a_3x3(h);
    EXPECT_EQ(shape(h), (Shape{1, 32, 149, 149}));
    h = net->Conv2d_2a_3x3(h);
    EXPECT_EQ(shape(h), (Shape{1, 32, 147, 147}));
    h = net->Conv2d_2b_3x3(h);
    EXPECT_EQ(shape(h), (Shape{1, 64, 147, 147}));
    h = at::max_pool2d(h, {3, 3}, {2, 2});
    h = net->Conv2d_3b_1x1(h);
    EXPECT_EQ(shape(h), (Shape{1, 80, 73, 73}));
    h = net->Conv2d_4a_3x3(h);
    EXPECT_EQ(shape(h), (Shape{1, 192, 71, 71}));
    h = at::max_pool2d(h, {3, 3}, {2, 2});
    h = net->Mixed_5b(h);
    EXPECT_EQ(shape(h), (Shape{1, 256, 35, 35}));
    h = net->Mixed_5d(net->Mixed_5c(h));
    EXPECT_EQ(shape(h), (Shape{1, 288, 35, 35}));
    h = net->Mixed_6a(h);
    EXPECT_EQ(shape(h), (Shape{1, 768, 17, 17}));
    h = net->Mixed_6e(net->Mixed_6d(net->Mixed_6c(net->Mixed_6b(h))));
    EXPECT_EQ(shape(h), (Shape{1, 768, 17, 17}));
    h = net->Mixed_7a(h);
    EXPECT_EQ(shape(h), (Shape{1, 1280, 8, 8}));
    h = net->Mixed_7c(net->Mixed_7b(h));
    EXPECT_EQ(shape(h), (Shape{1, 2048, 8, 8}));
    EXPECT_TRUE(torch::allclose(h.mean({2, 3})[0], f299[0], 1e-4, 1e-5));
  }

  // Other sizes are resized to 299; batches of 2 give the same features as one batch of 3.
  const at::Tensor small = torch::rand({3, 3, 64, 64});
  const at::Tensor f64 = net->pool3_features(small, /*batch_size=*/2);
  ASSERT_EQ(f64.sizes().vec(), (Shape{3, 2048}));
  EXPECT_TRUE(torch::allclose(f64, net->pool3_features(small, 3), 1e-4, 1e-5));
  const at::Tensor f_wide = net->pool3_features(torch::rand({1, 3, 40, 90}));
  EXPECT_EQ(f_wide.sizes().vec(), (Shape{1, 2048}));

  EXPECT_EQ(net->pool3_features(torch::rand({0, 3, 32, 32})).sizes().vec(), (Shape{0, 2048}));
  EXPECT_THROW(net->pool3_features(torch::rand({1, 4, 32, 32})), UsageError);
  EXPECT_THROW(net->pool3_features(torch::rand({1, 3, 32, 32}), 0), UsageError);
  EXPECT_THROW(net->forward(torch::rand({1, 3, 64, 64})), UsageError);  // unresized input below 75x75
}

TEST(FIDInceptionV3, SafetensorsRoundTripGivesIdenticalFeatures) {
  test::TempDir dir;
  torch::manual_seed(1);
  FIDInceptionV3 net;
  randomise(*net);
  const std::string path = dir.file("fid_inception.safetensors");
  const auto tensors = file_tensors(*net);
  ASSERT_EQ(tensors.size(), kFIDInceptionFileTensorCount);
  io::save_safetensors(path, tensors);

  FIDInceptionV3 loaded = FIDInceptionV3Impl::load(path);
  EXPECT_FALSE(loaded->is_training());
  const auto want = net->named_parameters(true);
  for (const auto& p : loaded->named_parameters(true)) EXPECT_TRUE(torch::equal(p.value(), want[p.key()])) << p.key();
  const auto want_buffers = net->named_buffers(true);
  for (const auto& b : loaded->named_buffers(true)) {
    if (is_batch_counter(b.key())) continue;
    EXPECT_TRUE(torch::equal(b.value(), want_buffers[b.key()])) << b.key();
  }

  const at::Tensor images = torch::rand({2, 3, 80, 80});
  const at::Tensor expected = net->pool3_features(images);
  EXPECT_TRUE(torch::equal(loaded->pool3_features(images), expected));
  FIDInceptionV3 other;  // a different initialisation gives different features: the check has teeth
  randomise(*other);
  EXPECT_FALSE(torch::allclose(other->pool3_features(images.narrow(0, 0, 1)), expected[0], 1e-3, 1e-4));

  // Files saved with BatchNorm's num_batches_tracked load too.
  const std::string with_counters = dir.file("with_counters.safetensors");
  io::save_safetensors(with_counters, file_tensors(*net, /*with_batch_counters=*/true));
  EXPECT_NO_THROW(FIDInceptionV3Impl::load(with_counters));
}

TEST(FIDInceptionV3, LoadErrorsNameTheFileAndEveryBadTensor) {
  test::TempDir dir;
  FIDInceptionV3 net;
  const auto good = file_tensors(*net);
  const auto write = [&](const std::string& name, const std::function<void(std::vector<std::pair<std::string, at::Tensor>>&)>& edit) {
    auto t = good;
    edit(t);
    const std::string path = dir.file(name);
    io::save_safetensors(path, t);
    return path;
  };
  const auto erase = [](std::vector<std::pair<std::string, at::Tensor>>& t, const std::string& name) {
    const auto it = std::find_if(t.begin(), t.end(), [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, t.end()) << name;
    t.erase(it);
  };
  const auto replace = [](std::vector<std::pair<std::string, at::Tensor>>& t, const std::string& name, at::Tensor v) {
    for (auto& p : t)
      if (p.first == name) p.second = v;
  };

  const std::string missing = write("missing.safetensors", [&](auto& t) { erase(t, "Mixed_6c.branch7x7dbl_3.bn.running_var"); });
  std::string what = load_error(missing);
  EXPECT_CONTAINS(what, missing);
  EXPECT_CONTAINS(what, "missing");
  EXPECT_CONTAINS(what, "Mixed_6c.branch7x7dbl_3.bn.running_var");

  const std::string mis_shaped = write("shape.safetensors", [&](auto& t) {
    replace(t, "Mixed_7c.branch_pool.conv.weight", torch::zeros({192, 1280, 1, 1}));
  });
  what = load_error(mis_shaped);
  EXPECT_CONTAINS(what, "Mixed_7c.branch_pool.conv.weight [192, 1280, 1, 1] (expected [192, 2048, 1, 1])");

  // Every problem in one message.
  const std::string both = write("both.safetensors", [&](auto& t) {
    erase(t, "Conv2d_2a_3x3.conv.weight");
    replace(t, "Mixed_5d.branch_pool.bn.bias", torch::zeros({32}));
    t.emplace_back("AuxLogits.fc.weight", torch::zeros({1008, 768}));
  });
  what = load_error(both);
  EXPECT_CONTAINS(what, "Conv2d_2a_3x3.conv.weight");
  EXPECT_CONTAINS(what, "Mixed_5d.branch_pool.bn.bias [32] (expected [64])");
  EXPECT_CONTAINS(what, "AuxLogits.fc.weight");

  // torchvision's ImageNet weights have the same keys but a 1000-class fc and other features.
  const std::string imagenet = write("imagenet.safetensors", [&](auto& t) {
    replace(t, "fc.weight", torch::zeros({1000, 2048}));
    replace(t, "fc.bias", torch::zeros({1000}));
  });
  what = load_error(imagenet);
  EXPECT_CONTAINS(what, "fc.weight");
  EXPECT_CONTAINS(what, "[1008, 2048]");
  EXPECT_CONTAINS(what, kFIDInceptionWeightsFile);

  const std::string absent = dir.file("nowhere/pt_inception.pth");
  what = load_error(absent);
  EXPECT_CONTAINS(what, absent);
  EXPECT_CONTAINS(what, "pt_inception-2015-12-05-6726825d.pth");
  EXPECT_CONTAINS(what, "pytorch-fid GitHub releases");
  EXPECT_CONTAINS(what, "--inception");
}

}  // namespace
}  // namespace genvis::models
