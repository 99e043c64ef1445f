#include "models/inception/fid_inception.h"

#include "core/error.h"
#include "core/file.h"
#include "core/text.h"
#include "io/weights.h"
#include "nn/state_dict.h"

#include <torch/torch.h>

namespace genvis::models {
namespace {

// The pool branch of blocks A, C and Mixed_7b. TF's average pool ignores the zero padding, so a
// border output is the mean of the in-image pixels only (torchvision's own blocks count the
// padding).
at::Tensor avg_pool_3x3_exclude_pad(const at::Tensor& x) {
  return at::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, /*ceil_mode=*/false, /*count_include_pad=*/false);
}

bool is_classifier_key(const std::string& name) { return name.rfind("fc.", 0) == 0; }

// BatchNorm's step counter: only used in training, and absent from files saved before
// PyTorch 0.4.1, so it is neither required nor read.
bool is_batch_counter_key(const std::string& name) { return ends_with(name, ".num_batches_tracked"); }

// The classifier is not part of the module, but its size tells the FID network (1008 TF classes)
// from torchvision's ImageNet Inception (1000), whose other keys are the same.
void check_classifier(io::WeightReader& reader) {
  const io::TensorInfo* w = reader.find("fc.weight");
  const io::TensorInfo* b = reader.find("fc.bias");
  const std::vector<int64_t> want_w{kFIDInceptionClasses, kFIDInceptionFeatureDim}, want_b{kFIDInceptionClasses};
  if (w && w->shape != want_w)
    throw LoadError(reader.path(), "fc.weight",
                    "shape " + io::shape_string(w->shape) + ", expected " + io::shape_string(want_w) +
                        ": not the FID Inception weights (torchvision's ImageNet Inception has 1000 classes and "
                        "gives different features); use " + kFIDInceptionWeightsFile);
  if (b && b->shape != want_b)
    throw LoadError(reader.path(), "fc.bias",
                    "shape " + io::shape_string(b->shape) + ", expected " + io::shape_string(want_b) +
                        ": not the FID Inception weights; use " + kFIDInceptionWeightsFile);
}

}  // namespace

at::Tensor fid_inception_preprocess(const at::Tensor& images01, int64_t size) {
  if (images01.dim() != 4 || images01.size(1) != 3 || images01.size(2) < 1 || images01.size(3) < 1)
    throw UsageError("FID Inception: expected images [B,3,H,W], got " + c10::str(images01.sizes()));
  if (!at::isFloatingType(images01.scalar_type()))
    throw UsageError("FID Inception: expected float images in [0,1], got " +
                     std::string(c10::toString(images01.scalar_type())));
  at::Tensor x = images01.to(at::kFloat);
  // pytorch-fid resizes even when the size is already right; bilinear at the same size is exact.
  x = at::upsample_bilinear2d(x, {size, size}, /*align_corners=*/false);
  return 2.0 * x - 1.0;
}

BasicConv2dImpl::BasicConv2dImpl(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<2> kernel_size,
                                 torch::ExpandingArray<2> stride, torch::ExpandingArray<2> padding) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, kernel_size)
                                                       .stride(stride)
                                                       .padding(padding)
                                                       .bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(out_channels).eps(0.001)));
}

at::Tensor BasicConv2dImpl::forward(const at::Tensor& x) { return bn(conv(x)).relu_(); }

FIDInceptionAImpl::FIDInceptionAImpl(int64_t in, int64_t pool_features) {
  branch1x1 = register_module("branch1x1", BasicConv2d(in, 64, 1));
  branch5x5_1 = register_module("branch5x5_1", BasicConv2d(in, 48, 1));
  branch5x5_2 = register_module("branch5x5_2", BasicConv2d(48, 64, 5, 1, 2));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(in, 64, 1));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(64, 96, 3, 1, 1));
  branch3x3dbl_3 = register_module("branch3x3dbl_3", BasicConv2d(96, 96, 3, 1, 1));
  branch_pool = register_module("branch_pool", BasicConv2d(in, pool_features, 1));
}

at::Tensor FIDInceptionAImpl::forward(const at::Tensor& x) {
  const at::Tensor b1 = branch1x1(x);
  const at::Tensor b5 = branch5x5_2(branch5x5_1(x));
  const at::Tensor b3 = branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x)));
  const at::Tensor bp = branch_pool(avg_pool_3x3_exclude_pad(x));
  return at::cat({b1, b5, b3, bp}, 1);
}

InceptionBImpl::InceptionBImpl(int64_t in) {
  branch3x3 = register_module("branch3x3", BasicConv2d(in, 384, 3, 2));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(in, 64, 1));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(64, 96, 3, 1, 1));
  branch3x3dbl_3 = register_module("branch3x3dbl_3", BasicConv2d(96, 96, 3, 2));
}

at::Tensor InceptionBImpl::forward(const at::Tensor& x) {
  const at::Tensor b3 = branch3x3(x);
  const at::Tensor b3dbl = branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x)));
  const at::Tensor bp = at::max_pool2d(x, {3, 3}, {2, 2});
  return at::cat({b3, b3dbl, bp}, 1);
}

FIDInceptionCImpl::FIDInceptionCImpl(int64_t in, int64_t c7) {
  using A = torch::ExpandingArray<2>;
  const A k1x7({1, 7}), k7x1({7, 1}), p1x7({0, 3}), p7x1({3, 0});
  branch1x1 = register_module("branch1x1", BasicConv2d(in, 192, 1));
  branch7x7_1 = register_module("branch7x7_1", BasicConv2d(in, c7, 1));
  branch7x7_2 = register_module("branch7x7_2", BasicConv2d(c7, c7, k1x7, 1, p1x7));
  branch7x7_3 = register_module("branch7x7_3", BasicConv2d(c7, 192, k7x1, 1, p7x1));
  branch7x7dbl_1 = register_module("branch7x7dbl_1", BasicConv2d(in, c7, 1));
  branch7x7dbl_2 = register_module("branch7x7dbl_2", BasicConv2d(c7, c7, k7x1, 1, p7x1));
  branch7x7dbl_3 = register_module("branch7x7dbl_3", BasicConv2d(c7, c7, k1x7, 1, p1x7));
  branch7x7dbl_4 = register_module("branch7x7dbl_4", BasicConv2d(c7, c7, k7x1, 1, p7x1));
  branch7x7dbl_5 = register_module("branch7x7dbl_5", BasicConv2d(c7, 192, k1x7, 1, p1x7));
  branch_pool = register_module("branch_pool", BasicConv2d(in, 192, 1));
}

at::Tensor FIDInceptionCImpl::forward(const at::Tensor& x) {
  const at::Tensor b1 = branch1x1(x);
  const at::Tensor b7 = branch7x7_3(branch7x7_2(branch7x7_1(x)));
  const at::Tensor b7dbl =
      branch7x7dbl_5(branch7x7dbl_4(branch7x7dbl_3(branch7x7dbl_2(branch7x7dbl_1(x)))));
  const at::Tensor bp = branch_pool(avg_pool_3x3_exclude_pad(x));
  return at::cat({b1, b7, b7dbl, bp}, 1);
}

InceptionDImpl::InceptionDImpl(int64_t in) {
  using A = torch::ExpandingArray<2>;
  branch3x3_1 = register_module("branch3x3_1", BasicConv2d(in, 192, 1));
  branch3x3_2 = register_module("branch3x3_2", BasicConv2d(192, 320, 3, 2));
  branch7x7x3_1 = register_module("branch7x7x3_1", BasicConv2d(in, 192, 1));
  branch7x7x3_2 = register_module("branch7x7x3_2", BasicConv2d(192, 192, A({1, 7}), 1, A({0, 3})));
  branch7x7x3_3 = register_module("branch7x7x3_3", BasicConv2d(192, 192, A({7, 1}), 1, A({3, 0})));
  branch7x7x3_4 = register_module("branch7x7x3_4", BasicConv2d(192, 192, 3, 2));
}

at::Tensor InceptionDImpl::forward(const at::Tensor& x) {
  const at::Tensor b3 = branch3x3_2(branch3x3_1(x));
  const at::Tensor b7 = branch7x7x3_4(branch7x7x3_3(branch7x7x3_2(branch7x7x3_1(x))));
  const at::Tensor bp = at::max_pool2d(x, {3, 3}, {2, 2});
  return at::cat({b3, b7, bp}, 1);
}

FIDInceptionEImpl::FIDInceptionEImpl(int64_t in, FIDInceptionEPool pool_kind) : pool(pool_kind) {
  using A = torch::ExpandingArray<2>;
  const A k1x3({1, 3}), k3x1({3, 1}), p1x3({0, 1}), p3x1({1, 0});
  branch1x1 = register_module("branch1x1", BasicConv2d(in, 320, 1));
  branch3x3_1 = register_module("branch3x3_1", BasicConv2d(in, 384, 1));
  branch3x3_2a = register_module("branch3x3_2a", BasicConv2d(384, 384, k1x3, 1, p1x3));
  branch3x3_2b = register_module("branch3x3_2b", BasicConv2d(384, 384, k3x1, 1, p3x1));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(in, 448, 1));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(448, 384, 3, 1, 1));
  branch3x3dbl_3a = register_module("branch3x3dbl_3a", BasicConv2d(384, 384, k1x3, 1, p1x3));
  branch3x3dbl_3b = register_module("branch3x3dbl_3b", BasicConv2d(384, 384, k3x1, 1, p3x1));
  branch_pool = register_module("branch_pool", BasicConv2d(in, 192, 1));
}

at::Tensor FIDInceptionEImpl::forward(const at::Tensor& x) {
  const at::Tensor b1 = branch1x1(x);
  const at::Tensor b3_1 = branch3x3_1(x);
  const at::Tensor b3 = at::cat({branch3x3_2a(b3_1), branch3x3_2b(b3_1)}, 1);  // [B,768,H,W]
  const at::Tensor b3dbl_2 = branch3x3dbl_2(branch3x3dbl_1(x));
  const at::Tensor b3dbl = at::cat({branch3x3dbl_3a(b3dbl_2), branch3x3dbl_3b(b3dbl_2)}, 1);  // [B,768,H,W]
  const at::Tensor pooled = pool == FIDInceptionEPool::Max ? at::max_pool2d(x, {3, 3}, {1, 1}, {1, 1})
                                                           : avg_pool_3x3_exclude_pad(x);
  return at::cat({b1, b3, b3dbl, branch_pool(pooled)}, 1);
}

FIDInceptionV3Impl::FIDInceptionV3Impl() {
  Conv2d_1a_3x3 = register_module("Conv2d_1a_3x3", BasicConv2d(3, 32, 3, 2));
  Conv2d_2a_3x3 = register_module("Conv2d_2a_3x3", BasicConv2d(32, 32, 3));
  Conv2d_2b_3x3 = register_module("Conv2d_2b_3x3", BasicConv2d(32, 64, 3, 1, 1));
  Conv2d_3b_1x1 = register_module("Conv2d_3b_1x1", BasicConv2d(64, 80, 1));
  Conv2d_4a_3x3 = register_module("Conv2d_4a_3x3", BasicConv2d(80, 192, 3));
  Mixed_5b = register_module("Mixed_5b", FIDInceptionA(192, 32));
  Mixed_5c = register_module("Mixed_5c", FIDInceptionA(256, 64));
  Mixed_5d = register_module("Mixed_5d", FIDInceptionA(288, 64));
  Mixed_6a = register_module("Mixed_6a", InceptionB(288));
  Mixed_6b = register_module("Mixed_6b", FIDInceptionC(768, 128));
  Mixed_6c = register_module("Mixed_6c", FIDInceptionC(768, 160));
  Mixed_6d = register_module("Mixed_6d", FIDInceptionC(768, 160));
  Mixed_6e = register_module("Mixed_6e", FIDInceptionC(768, 192));
  Mixed_7a = register_module("Mixed_7a", InceptionD(768));
  Mixed_7b = register_module("Mixed_7b", FIDInceptionE(1280, FIDInceptionEPool::AvgExcludePad));
  Mixed_7c = register_module("Mixed_7c", FIDInceptionE(2048, FIDInceptionEPool::Max));
  eval();
}

at::Tensor FIDInceptionV3Impl::forward(const at::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != 3 || x.size(2) < 75 || x.size(3) < 75)
    throw UsageError("FID Inception: expected input [B,3,H,W] with H,W >= 75, got " + c10::str(x.sizes()));
  // Shapes for a 299x299 input.
  at::Tensor h = Conv2d_1a_3x3(x);  // [B,32,149,149]
  h = Conv2d_2a_3x3(h);             // [B,32,147,147]
  h = Conv2d_2b_3x3(h);             // [B,64,147,147]
  h = at::max_pool2d(h, {3, 3}, {2, 2});  // [B,64,73,73]
  h = Conv2d_3b_1x1(h);                   // [B,80,73,73]
  h = Conv2d_4a_3x3(h);                   // [B,192,71,71]
  h = at::max_pool2d(h, {3, 3}, {2, 2});  // [B,192,35,35]
  h = Mixed_5d(Mixed_5c(Mixed_5b(h)));    // [B,288,35,35]
  h = Mixed_6a(h);                        // [B,768,17,17]
  h = Mixed_6e(Mixed_6d(Mixed_6c(Mixed_6b(h))));  // [B,768,17,17]
  h = Mixed_7a(h);                                // [B,1280,8,8]
  h = Mixed_7c(Mixed_7b(h));                      // [B,2048,8,8]
  return at::adaptive_avg_pool2d(h, {1, 1}).flatten(1);  // [B,2048]
}

at::Tensor FIDInceptionV3Impl::pool3_features(const at::Tensor& images01, int64_t batch_size) {
  if (batch_size < 1) throw UsageError("FID Inception: batch size must be positive, got " + std::to_string(batch_size));
  if (images01.dim() != 4 || images01.size(1) != 3)
    throw UsageError("FID Inception: expected images [B,3,H,W], got " + c10::str(images01.sizes()));
  torch::NoGradGuard no_grad;
  eval();
  const at::Tensor weight = Conv2d_1a_3x3->conv->weight;
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < images01.size(0); i += batch_size) {
    const at::Tensor chunk = images01.narrow(0, i, std::min(batch_size, images01.size(0) - i));
    const at::Tensor x = fid_inception_preprocess(chunk.to(weight.device())).to(weight.scalar_type());
    out.push_back(forward(x).to(at::kCPU, at::kFloat));
  }
  if (out.empty()) return torch::empty({0, kFIDInceptionFeatureDim});
  return at::cat(out);
}

FIDInceptionV3 FIDInceptionV3Impl::load(const std::string& path) {
  if (!file_exists(path))
    throw LoadError(path, std::string("no such file. The FID Inception weights are ") + kFIDInceptionWeightsFile +
                              " from the pytorch-fid GitHub releases (" + kFIDInceptionWeightsURL +
                              "); download it and pass its path with --inception");
  const auto reader = io::open_weights(path);
  check_classifier(*reader);
  FIDInceptionV3 net;
  nn::LoadOptions options;
  options.dtype = at::kFloat;
  options.key_map = [](const std::string& name) {
    return is_classifier_key(name) || is_batch_counter_key(name) ? std::string() : name;
  };
  options.optional_key = is_batch_counter_key;
  nn::load_state_dict(*net, *reader, options);
  net->eval();
  return net;
}

}  // namespace genvis::models
