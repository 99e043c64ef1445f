// nn::int8: per-channel weight quantisation, the int8 linear and convolution on every kernel this
// CPU has (AMX-INT8, AVX-512 VNNI, reference), against exact integer products on hand-made
// inputs, against each other (the same int32 sums), and against the float layers (quantisation
// error), on shapes with every tail (rows, columns and reduction lengths that are not multiples of
// the blocks).
#include "nn/int8_gemm.h"

#include "core/error.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <vector>

namespace genvis::nn::int8 {
namespace {

std::vector<Kernel> available() {
  std::vector<Kernel> out;
  for (Kernel k : {Kernel::Reference, Kernel::Vnni, Kernel::Amx})
    if (supported(k)) out.push_back(k);
  return out;
}

struct KernelGuard {
  explicit KernelGuard(Kernel k) { set_kernel(k); }
  ~KernelGuard() { set_kernel(std::nullopt); }
};

// The AVX-512 kernels agree bit for bit; the reference kernel's portable scalar epilogue may round
// the last bit differently (contracted multiply-adds, std::erf against the erf polynomial).
::testing::AssertionResult same_output(const at::Tensor& got, const at::Tensor& reference) {
  const double tol = got.scalar_type() == at::kBFloat16 ? 1e-2 : 2e-5;
  const at::Tensor a = got.to(at::kFloat), b = reference.to(at::kFloat);
  if (at::allclose(a, b, tol, tol * b.abs().max().item<double>())) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max difference " << (a - b).abs().max().item<double>();
}

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  return ((got.to(at::kDouble) - want.to(at::kDouble)).norm() / want.to(at::kDouble).norm()).item<double>();
}

TEST(Int8Gemm, WeightQuantisationIsPerOutputChannel) {
  torch::manual_seed(0);
  at::Tensor w = torch::randn({5, 70});
  w[1] *= 100.0;  // a row with another range must not change the others' scales
  w[3].zero_();
  const PackedWeight p = quantize_weight(w);
  const at::Tensor q_rows = unpack(p);
  ASSERT_EQ(p.n, 5);
  ASSERT_EQ(p.k, 70);
  EXPECT_EQ(p.kp, 128);
  EXPECT_EQ(p.np, 32);
  for (int64_t i = 0; i < 5; ++i) {
    const float amax = w[i].abs().max().item<float>();
    EXPECT_FLOAT_EQ(p.scale[i].item<float>(), amax / 127.0f) << "row " << i;
    if (amax == 0.0f) {
      EXPECT_EQ(q_rows[i].abs().max().item<int>(), 0);
      continue;
    }
    EXPECT_EQ(q_rows[i].abs().max().item<int>(), 127) << "row " << i;
    const at::Tensor back = q_rows[i].to(at::kFloat) * p.scale[i];
    EXPECT_LE((back - w[i]).abs().max().item<float>(), 0.5f * amax / 127.0f * 1.0001f) << "row " << i;
  }
  // Packed: column i, reduction index j at [(i/16)][j/4][i%16][j%4]; col_sum the row sums.
  const at::Tensor expect_q = (w * (127.0 / w.abs().amax(1, true)).nan_to_num(0.0, 0.0, 0.0)).round().to(at::kChar);
  EXPECT_TRUE(at::equal(q_rows, expect_q));
  const auto q = q_rows.accessor<int8_t, 2>();
  const auto packed = p.packed.accessor<int8_t, 4>();
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 70; ++j) ASSERT_EQ(packed[i / 16][j / 4][i % 16][j % 4], q[i][j]);
  EXPECT_EQ(p.packed.abs().sum().item<int64_t>(), q_rows.abs().sum().item<int64_t>()) << "padding must be zeros";
  EXPECT_EQ(p.col_sum[2].item<int>(), q_rows[2].sum().item<int>());
  // Requantising the dequantised weight gives the same integers (what loading a stored int8 file relies on).
  const PackedWeight again = quantize_weight(q_rows.to(at::kFloat) * p.scale.narrow(0, 0, 5).unsqueeze(1));
  EXPECT_TRUE(at::equal(unpack(again), q_rows));
}

TEST(Int8Gemm, ExactOnIntegerInputsWithEveryKernel) {
  // Rows whose largest magnitude is 127 quantise with scale 1: the result is the integer product.
  torch::manual_seed(1);
  const int64_t m = 45, k = 131, n = 37;
  at::Tensor x = torch::randint(-127, 128, {m, k}).to(at::kFloat);
  x.select(1, 0).fill_(127.0);
  at::Tensor w = torch::randint(-127, 128, {n, k}).to(at::kFloat);
  w.select(1, 5).fill_(-127.0);
  const at::Tensor bias = torch::randint(-50, 50, {n}).to(at::kFloat);
  const at::Tensor want = at::mm(x.to(at::kDouble), w.to(at::kDouble).t()) + bias.to(at::kDouble);
  const PackedWeight p = quantize_weight(w);
  for (Kernel kern : available()) {
    KernelGuard guard(kern);
    const at::Tensor got = linear(x, p, bias);
    EXPECT_TRUE(at::equal(got.to(at::kDouble), want)) << kernel_name(kern) << ": max difference "
                                                      << (got.to(at::kDouble) - want).abs().max().item<double>();
  }
}

TEST(Int8Gemm, KernelsAgreeAndStayCloseToTheFloatLayer) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  struct Case {
    int64_t m, k, n;
  };
  for (const Case c : {Case{1, 8, 3}, Case{37, 70, 45}, Case{100, 320, 96}, Case{33, 64, 33}, Case{77, 257, 130}}) {
    const at::Tensor x = torch::randn({c.m, c.k});
    const at::Tensor w = torch::randn({c.n, c.k}) * 0.1;
    const at::Tensor bias = torch::randn({c.n});
    const PackedWeight p = quantize_weight(w);
    const at::Tensor exact = at::linear(x, w, bias);
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      at::Tensor first;
      for (Kernel kern : available()) {
        KernelGuard guard(kern);
        const at::Tensor got = linear(x.to(dtype), p, bias);
        ASSERT_EQ(got.scalar_type(), dtype);
        ASSERT_EQ(got.sizes(), exact.sizes());
        EXPECT_LT(relative_error(got, exact), 0.02) << kernel_name(kern) << " " << c.m << "x" << c.k << "x" << c.n;
        if (!first.defined()) first = got;
        else
          EXPECT_TRUE(same_output(got, first)) << kernel_name(kern) << " differs from the reference kernel, " << c.m
                                                << "x" << c.k << "x" << c.n;
      }
    }
  }
}

TEST(Int8Gemm, LinearKeepsLeadingDimensionsAndZeroRowsGiveTheBias) {
  torch::manual_seed(3);
  at::Tensor x = torch::randn({2, 3, 40});
  x[1][2].zero_();
  const at::Tensor w = torch::randn({24, 40});
  const at::Tensor bias = torch::randn({24});
  const at::Tensor y = linear(x, quantize_weight(w), bias);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 24}));
  EXPECT_TRUE(at::equal(y[1][2], bias));
  EXPECT_LT(relative_error(y, at::linear(x, w, bias)), 0.02);
  const at::Tensor no_bias = linear(x, quantize_weight(w), {});
  EXPECT_TRUE(at::equal(no_bias[1][2], at::zeros({24})));
}

TEST(Int8Gemm, ConvolutionMatchesTheFloatConvolution) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  struct Case {
    int64_t batch, in, out, h, w, k, stride, pad;
  };
  for (const Case c : {Case{2, 5, 6, 9, 7, 3, 1, 1}, Case{1, 16, 40, 8, 8, 3, 2, 1}, Case{2, 8, 12, 6, 5, 1, 1, 0},
                       Case{1, 3, 4, 7, 7, 3, 2, 0}}) {
    const at::Tensor x = torch::randn({c.batch, c.in, c.h, c.w});
    const at::Tensor weight = torch::randn({c.out, c.in, c.k, c.k}) * 0.2;
    const at::Tensor bias = torch::randn({c.out});
    const at::Tensor exact = at::conv2d(x, weight, bias, {c.stride, c.stride}, {c.pad, c.pad});
    const PackedWeight p = quantize_weight(conv_weight_rows(weight));
    const ConvGeometry g{c.k, c.k, c.stride, c.stride, c.pad, c.pad};
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      at::Tensor first;
      for (Kernel kern : available()) {
        KernelGuard guard(kern);
        for (bool channels_last : {false, true}) {
          const at::Tensor in = channels_last ? x.to(dtype).contiguous(at::MemoryFormat::ChannelsLast) : x.to(dtype);
          const at::Tensor got = conv2d(in, p, bias, g);
          ASSERT_EQ(got.sizes(), exact.sizes());
          ASSERT_EQ(got.scalar_type(), dtype);
          // One scale for the whole input: a little coarser than the linear's per-row scales.
          EXPECT_LT(relative_error(got, exact), 0.03) << kernel_name(kern) << " case in=" << c.in << " k=" << c.k;
          if (!first.defined()) first = got;
          else EXPECT_TRUE(same_output(got, first)) << kernel_name(kern) << " disagrees";
        }
      }
    }
  }
}

TEST(Int8Gemm, GegluIsTheProjectionThenValueTimesGeluOfGate) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  for (const int64_t half : {45, 64, 7}) {
    const at::Tensor x = torch::randn({37, 70});
    const at::Tensor w = torch::randn({2 * half, 70}) * 0.15;
    const at::Tensor bias = torch::randn({2 * half});
    const auto parts = at::linear(x, w, bias).chunk(2, -1);
    const at::Tensor want = parts[0] * at::gelu(parts[1]);
    const PackedWeight p = interleave_geglu(quantize_weight(w));
    EXPECT_EQ(p.geglu_half, half);
    EXPECT_THROW(linear(x, p, bias), UsageError);
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      at::Tensor first;
      for (Kernel kern : available()) {
        KernelGuard guard(kern);
        const at::Tensor got = linear_geglu(x.to(dtype), p, bias);
        ASSERT_EQ(got.sizes(), want.sizes());
        EXPECT_LT(relative_error(got, want), 0.03) << kernel_name(kern) << " half " << half;
        if (!first.defined()) first = got;
        else EXPECT_TRUE(same_output(got, first)) << kernel_name(kern) << " disagrees";
      }
    }
  }
  EXPECT_THROW(interleave_geglu(quantize_weight(torch::randn({5, 8}))), UsageError);
}

TEST(Int8Gemm, BadInputsAreUsageErrors) {
  const PackedWeight p = quantize_weight(torch::randn({4, 8}));
  EXPECT_THROW(linear(torch::randn({2, 9}), p, {}), UsageError);
  EXPECT_THROW(linear(torch::randn({2, 8}).to(at::kDouble), p, {}), UsageError);
  EXPECT_THROW(linear(torch::randn({2, 8}), p, torch::randn({5})), UsageError);
  EXPECT_THROW(quantize_weight(torch::randn({2, 3, 4})), UsageError);
  EXPECT_THROW(pack_weight(torch::zeros({4, 8}, at::kChar), torch::ones({3})), UsageError);
  const PackedWeight c = quantize_weight(conv_weight_rows(torch::randn({4, 3, 3, 3})));
  EXPECT_THROW(conv2d(torch::randn({1, 4, 8, 8}), c, {}, {3, 3, 1, 1, 1, 1}), UsageError);
  EXPECT_THROW(conv2d(torch::randn({1, 3, 2, 2}), c, {}, {3, 3, 1, 1, 0, 0}), UsageError);
}

}  // namespace
}  // namespace genvis::nn::int8
