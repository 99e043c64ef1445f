// The InceptionV3 feature network of the standard FID implementation (pytorch-fid's
// FIDInceptionV3: TensorFlow's 2015-12-05 Inception graph ported to torchvision's Inception3),
// up to the 2048-d pool3 features. Using exactly this network and preprocessing is what makes
// genvis' FID comparable with published numbers.
//
//   auto net = genvis::models::FIDInceptionV3Impl::load("pt_inception-2015-12-05-6726825d.pth");
//   at::Tensor f = net->pool3_features(images);   // [B,3,H,W] in [0,1], any size -> [B,2048] f32
//
// Structure (torchvision Inception3 with aux_logits=False, num_classes=1008, and pytorch-fid's
// patched blocks):
//   stem      Conv2d_1a_3x3 (stride 2), 2a_3x3, 2b_3x3 (pad 1), maxpool 3/2, 3b_1x1, 4a_3x3, maxpool 3/2
//   35x35     Mixed_5b, 5c, 5d   FIDInceptionA: pool branch avg 3x3/1 pad 1, count_include_pad=False
//   17x17     Mixed_6a           InceptionB (reduction)
//             Mixed_6b..6e       FIDInceptionC: pool branch as in A
//   8x8       Mixed_7a           InceptionD (reduction)
//             Mixed_7b           FIDInceptionE, pool branch as in A            (pytorch-fid's E_1)
//             Mixed_7c           FIDInceptionE, pool branch max 3x3/1 pad 1    (pytorch-fid's E_2)
//   pool3     adaptive average pool to 1x1 -> [B,2048]
// Every conv is BasicConv2d: conv (no bias) -> BatchNorm (eps 0.001, running statistics) -> ReLU.
//
// Keys are those of the released file: "Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch1x1.bn.running_mean",
// ... (no AuxLogits: pytorch-fid builds the net with aux_logits=False and loads strictly). The
// file's classifier fc.weight [1008,2048] / fc.bias [1008] is not part of this module.
#pragma once
#include <ATen/ATen.h>
#include <cstddef>
#include <cstdint>
#include <string>
#include <torch/expanding_array.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

namespace genvis::models {

inline constexpr int64_t kFIDInceptionInputSize = 299;     // images are resized to 299x299
inline constexpr int64_t kFIDInceptionFeatureDim = 2048;   // pool3
inline constexpr int64_t kFIDInceptionBatchSize = 50;      // pytorch-fid's default batch
// Parameters of this module (conv weights, BatchNorm weight and bias; the fc classifier and the
// running statistics are not counted): torchvision's Inception3 (27,161,264 with AuxLogits and a
// 1000-class fc) minus AuxLogits (3,326,696) minus fc (2,049,000).
inline constexpr int64_t kFIDInceptionParameterCount = 21'785'568;
// Tensors of the released file, not counting BatchNorm num_batches_tracked: 94 BasicConv2d x
// (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var) + fc.weight + fc.bias.
inline constexpr size_t kFIDInceptionFileTensorCount = 94 * 5 + 2;
inline constexpr int64_t kFIDInceptionClasses = 1008;  // the file's (unused) classifier
inline constexpr const char* kFIDInceptionWeightsFile = "pt_inception-2015-12-05-6726825d.pth";
inline constexpr const char* kFIDInceptionWeightsURL =
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";

// [B,3,H,W] in [0,1] -> [B,3,size,size] f32 in [-1,1]: bilinear resize with align_corners=False
// and no antialiasing (F.interpolate(x, size, mode="bilinear", align_corners=False)), then 2x-1.
at::Tensor fid_inception_preprocess(const at::Tensor& images01, int64_t size = kFIDInceptionInputSize);

// conv (no bias) -> BatchNorm2d(eps=0.001) -> ReLU. Keys: conv.weight, bn.{weight,bias,running_mean,running_var}.
struct BasicConv2dImpl : torch::nn::Module {
  BasicConv2dImpl(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<2> kernel_size,
                  torch::ExpandingArray<2> stride = 1, torch::ExpandingArray<2> padding = 0);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

// 35x35 block: [B,C,H,W] -> [B,64+64+96+pool_features,H,W].
struct FIDInceptionAImpl : torch::nn::Module {
  FIDInceptionAImpl(int64_t in_channels, int64_t pool_features);
  at::Tensor forward(const at::Tensor& x);

  BasicConv2d branch1x1{nullptr};
  BasicConv2d branch5x5_1{nullptr}, branch5x5_2{nullptr};
  BasicConv2d branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr};
  BasicConv2d branch_pool{nullptr};
};
TORCH_MODULE(FIDInceptionA);

// 35 -> 17 reduction (Mixed_6a): [B,C,H,W] -> [B,384+96+C,(H-3)/2+1,(W-3)/2+1].
struct InceptionBImpl : torch::nn::Module {
  explicit InceptionBImpl(int64_t in_channels);
  at::Tensor forward(const at::Tensor& x);

  BasicConv2d branch3x3{nullptr};
  BasicConv2d branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr};
};
TORCH_MODULE(InceptionB);

// 17x17 block with factorised 7x7 convs: [B,C,H,W] -> [B,768,H,W].
struct FIDInceptionCImpl : torch::nn::Module {
  FIDInceptionCImpl(int64_t in_channels, int64_t channels_7x7);
  at::Tensor forward(const at::Tensor& x);

  BasicConv2d branch1x1{nullptr};
  BasicConv2d branch7x7_1{nullptr}, branch7x7_2{nullptr}, branch7x7_3{nullptr};
  BasicConv2d branch7x7dbl_1{nullptr}, branch7x7dbl_2{nullptr}, branch7x7dbl_3{nullptr}, branch7x7dbl_4{nullptr},
      branch7x7dbl_5{nullptr};
  BasicConv2d branch_pool{nullptr};
};
TORCH_MODULE(FIDInceptionC);

// 17 -> 8 reduction (Mixed_7a): [B,C,H,W] -> [B,320+192+C,(H-3)/2+1,(W-3)/2+1].
struct InceptionDImpl : torch::nn::Module {
  explicit InceptionDImpl(int64_t in_channels);
  at::Tensor forward(const at::Tensor& x);

  BasicConv2d branch3x3_1{nullptr}, branch3x3_2{nullptr};
  BasicConv2d branch7x7x3_1{nullptr}, branch7x7x3_2{nullptr}, branch7x7x3_3{nullptr}, branch7x7x3_4{nullptr};
};
TORCH_MODULE(InceptionD);

// The pool branch of an 8x8 block. The TF graph pools differently in its last two blocks.
enum class FIDInceptionEPool {
  AvgExcludePad,  // Mixed_7b (pytorch-fid's FIDInceptionE_1): avg 3x3/1 pad 1, count_include_pad=False
  Max,            // Mixed_7c (FIDInceptionE_2): max 3x3/1 pad 1 (an oddity of the TF graph, kept for parity)
};

// 8x8 block: [B,C,H,W] -> [B,320+768+768+192,H,W].
struct FIDInceptionEImpl : torch::nn::Module {
  FIDInceptionEImpl(int64_t in_channels, FIDInceptionEPool pool);
  at::Tensor forward(const at::Tensor& x);

  FIDInceptionEPool pool;
  BasicConv2d branch1x1{nullptr};
  BasicConv2d branch3x3_1{nullptr}, branch3x3_2a{nullptr}, branch3x3_2b{nullptr};
  BasicConv2d branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3a{nullptr}, branch3x3dbl_3b{nullptr};
  BasicConv2d branch_pool{nullptr};
};
TORCH_MODULE(FIDInceptionE);

class FIDInceptionV3;

struct FIDInceptionV3Impl : torch::nn::Module {
  // Randomly initialised (libtorch defaults; BatchNorm running statistics 0 and 1), in eval mode.
  FIDInceptionV3Impl();

  // The released weights (kFIDInceptionWeightsFile; or a .safetensors with the same keys), as f32
  // on the CPU, in eval mode. LoadError naming the file: where to get it when it does not exist;
  // every missing, unexpected and mis-shaped tensor at once when it does not fit; a classifier
  // other than 1008 classes (e.g. torchvision's ImageNet Inception, whose features differ).
  static FIDInceptionV3 load(const std::string& path);

  // [B,3,H,W] float in [0,1], any size -> [B,2048] f32 on the CPU: fid_inception_preprocess,
  // then forward, in batches of `batch_size` on the module's device and dtype. Puts the module
  // in eval mode (BatchNorm must use the running statistics); no gradients.
  at::Tensor pool3_features(const at::Tensor& images01, int64_t batch_size = kFIDInceptionBatchSize);

  // x [B,3,H,W] in [-1,1] (299x299 for the reference features; at least 75x75) -> [B,2048].
  at::Tensor forward(const at::Tensor& x);

  BasicConv2d Conv2d_1a_3x3{nullptr}, Conv2d_2a_3x3{nullptr}, Conv2d_2b_3x3{nullptr};
  BasicConv2d Conv2d_3b_1x1{nullptr}, Conv2d_4a_3x3{nullptr};
  FIDInceptionA Mixed_5b{nullptr}, Mixed_5c{nullptr}, Mixed_5d{nullptr};
  InceptionB Mixed_6a{nullptr};
  FIDInceptionC Mixed_6b{nullptr}, Mixed_6c{nullptr}, Mixed_6d{nullptr}, Mixed_6e{nullptr};
  InceptionD Mixed_7a{nullptr};
  FIDInceptionE Mixed_7b{nullptr}, Mixed_7c{nullptr};
};
TORCH_MODULE(FIDInceptionV3);

}  // namespace genvis::models
