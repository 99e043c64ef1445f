#include "nn/group_norm_silu.h"

#include "nn/cpu_kernels.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <cmath>
#include <torch/torch.h>
#include <vector>

namespace genvis::nn {
namespace {

#if GENVIS_HAS_AVX512_KERNELS
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's own avx512fintrin.h (_mm512_undefined_*)

using cpu::load;
using cpu::store;

constexpr int64_t kPixelBlock = 256;  // pixels summed in f32 before the double accumulation

// Channels-last [N][HW][C]: per-channel sum and sum of squares of pixels [p0, p1) into s/q.
template <typename T>
GENVIS_AVX512 void channel_moments_cl(const T* x, int64_t c, int64_t p0, int64_t p1, double* s, double* q) {
  std::vector<float> fs(c), fq(c);
  for (int64_t b0 = p0; b0 < p1; b0 += kPixelBlock) {
    const int64_t b1 = std::min(p1, b0 + kPixelBlock);
    for (int64_t ch = 0; ch < c; ch += 16) {
      const __mmask16 m = cpu::tail_mask(c - ch);
      __m512 vs = _mm512_setzero_ps(), vq = _mm512_setzero_ps();
      for (int64_t p = b0; p < b1; ++p) {
        const __m512 v = load(x + p * c + ch, m);
        vs = _mm512_add_ps(vs, v);
        vq = _mm512_fmadd_ps(v, v, vq);
      }
      cpu::store_f32(fs.data() + ch, vs, m);
      cpu::store_f32(fq.data() + ch, vq, m);
    }
    for (int64_t ch = 0; ch < c; ++ch) s[ch] += fs[ch], q[ch] += fq[ch];
  }
}

// NCHW: sum and sum of squares of one channel's hw contiguous values.
template <typename T>
GENVIS_AVX512 void row_moments(const T* x, int64_t hw, double* s, double* q) {
  for (int64_t b0 = 0; b0 < hw; b0 += kPixelBlock * 16) {
    const int64_t b1 = std::min(hw, b0 + kPixelBlock * 16);
    __m512 vs = _mm512_setzero_ps(), vq = _mm512_setzero_ps();
    for (int64_t p = b0; p < b1; p += 16) {
      const __m512 v = load(x + p, cpu::tail_mask(b1 - p));
      vs = _mm512_add_ps(vs, v);
      vq = _mm512_fmadd_ps(v, v, vq);
    }
    *s += _mm512_reduce_add_ps(vs);
    *q += _mm512_reduce_add_ps(vq);
  }
}

// y = silu(x * a[ch] + b[ch]) for pixels [p0, p1), channels-last.
template <typename T>
GENVIS_AVX512 void apply_cl(const T* x, T* y, int64_t c, int64_t p0, int64_t p1, const float* a, const float* b) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t ch = 0; ch < c; ch += 16) {
      const __mmask16 m = cpu::tail_mask(c - ch);
      const __m512 v = _mm512_fmadd_ps(load(x + p * c + ch, m), cpu::load_f32(a + ch, m), cpu::load_f32(b + ch, m));
      store(y + p * c + ch, cpu::silu(v), m);
    }
}

// y = silu(x * a + b) over one NCHW channel row.
template <typename T>
GENVIS_AVX512 void apply_row(const T* x, T* y, int64_t hw, float a, float b) {
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
  for (int64_t p = 0; p < hw; p += 16) {
    const __mmask16 m = cpu::tail_mask(hw - p);
    store(y + p, cpu::silu(_mm512_fmadd_ps(load(x + p, m), va, vb)), m);
  }
}

template <typename T>
void fused(const T* x, T* y, int64_t n, int64_t c, int64_t hw, bool channels_last, int64_t groups, double eps,
           const float* gamma, const float* beta) {
  // 1. per-channel moments in double, [n][c]
  std::vector<double> s(n * c, 0.0), q(n * c, 0.0);
  if (channels_last) {
    const int64_t chunk = 16 * kPixelBlock, chunks = (hw + chunk - 1) / chunk;
    std::vector<double> ps(n * chunks * c, 0.0), pq(n * chunks * c, 0.0);
    cpu::parallel_for(n * chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t img = i / chunks, p0 = (i % chunks) * chunk;
        channel_moments_cl(x + img * hw * c, c, p0, std::min(hw, p0 + chunk), ps.data() + i * c, pq.data() + i * c);
      }
    });
    for (int64_t i = 0; i < n * chunks; ++i)
      for (int64_t ch = 0; ch < c; ++ch) s[(i / chunks) * c + ch] += ps[i * c + ch], q[(i / chunks) * c + ch] += pq[i * c + ch];
  } else {
    cpu::parallel_for(n * c, std::max<int64_t>(1, 16384 / hw), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) row_moments(x + i * hw, hw, &s[i], &q[i]);
    });
  }
  // 2. per-channel affine y = silu(a x + b) from the group statistics
  const int64_t per_group = c / groups;
  const double count = static_cast<double>(per_group * hw);
  std::vector<float> a(n * c), b(n * c);
  for (int64_t img = 0; img < n; ++img)
    for (int64_t g = 0; g < groups; ++g) {
      double sum = 0, sq = 0;
      for (int64_t ch = g * per_group; ch < (g + 1) * per_group; ++ch) sum += s[img * c + ch], sq += q[img * c + ch];
      const double mean = sum / count, var = std::max(sq / count - mean * mean, 0.0), rstd = 1.0 / std::sqrt(var + eps);
      for (int64_t ch = g * per_group; ch < (g + 1) * per_group; ++ch) {
        const double scale = rstd * gamma[ch];
        a[img * c + ch] = static_cast<float>(scale);
        b[img * c + ch] = static_cast<float>(beta[ch] - mean * scale);
      }
    }
  // 3. apply
  if (channels_last) {
    const int64_t chunk = 256, chunks = (hw + chunk - 1) / chunk;
    cpu::parallel_for(n * chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t img = i / chunks, p0 = (i % chunks) * chunk;
        apply_cl(x + img * hw * c, y + img * hw * c, c, p0, std::min(hw, p0 + chunk), a.data() + img * c, b.data() + img * c);
      }
    });
  } else {
    cpu::parallel_for(n * c, std::max<int64_t>(1, 16384 / hw), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) apply_row(x + i * hw, y + i * hw, hw, a[i], b[i]);
    });
  }
}

#pragma GCC diagnostic pop
#endif

}  // namespace

at::Tensor group_norm_silu(torch::nn::GroupNorm& norm, const at::Tensor& x) {
#if GENVIS_HAS_AVX512_KERNELS
  const auto& o = norm->options;
  const bool dtype_ok = x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16;
  const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || (norm->weight.defined() && norm->weight.requires_grad()) ||
                                                   (norm->bias.defined() && norm->bias.requires_grad()));
  const bool channels_last = x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  if (cpu::avx512_supported() && x.device().is_cpu() && dtype_ok && !grad && x.dim() == 4 && o.affine() &&
      x.size(1) == o.num_channels() && (channels_last || x.is_contiguous())) {
    RECORD_FUNCTION("genvis::group_norm_silu", std::vector<c10::IValue>({x}));
    const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    const at::Tensor gamma = norm->weight.to(at::kFloat).contiguous(), beta = norm->bias.to(at::kFloat).contiguous();
    at::Tensor y = at::empty_like(x);  // same memory format
    if (x.scalar_type() == at::kFloat)
      fused(x.data_ptr<float>(), y.data_ptr<float>(), n, c, hw, channels_last, o.num_groups(), o.eps(),
            gamma.data_ptr<float>(), beta.data_ptr<float>());
    else
      fused(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()), reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()),
            n, c, hw, channels_last, o.num_groups(), o.eps(), gamma.data_ptr<float>(), beta.data_ptr<float>());
    return y;
  }
#endif
  return at::silu(group_norm(norm, x));
}

at::Tensor group_norm(torch::nn::GroupNorm& norm, const at::Tensor& x) {
  const auto& w = norm->weight;
  return w.defined() && w.scalar_type() != x.scalar_type() ? norm(x.to(w.scalar_type())) : norm(x);
}

}  // namespace genvis::nn
