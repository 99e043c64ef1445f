#include "nn/channel_norm.h"

#include "nn/cpu_kernels.h"

#include <ATen/record_function.h>
#include <algorithm>
#include <torch/torch.h>
#include <vector>

namespace genvis::nn {
namespace {

#if GENVIS_HAS_AVX512_KERNELS
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's own avx512fintrin.h (_mm512_undefined_*)

using cpu::load;
using cpu::store;

constexpr int64_t kPositions = 512;  // positions per work item: C rows of them stay in L2 between the passes

// Positions [p0, p1) of one sample x [C][P]: y = x / max(||x||_C, eps) * w, SiLU'd when asked.
template <typename T>
GENVIS_AVX512 void normalize_positions(const T* x, T* y, int64_t c, int64_t p, int64_t p0, int64_t p1, const float* w,
                                       float eps, bool silu, float* norm) {
  const int64_t n = p1 - p0;
  std::fill(norm, norm + n, 0.0f);
  for (int64_t ch = 0; ch < c; ++ch) {
    const T* row = x + ch * p + p0;
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 m = cpu::tail_mask(n - j);
      const __m512 v = load(row + j, m);
      cpu::store_f32(norm + j, _mm512_fmadd_ps(v, v, cpu::load_f32(norm + j, m)), m);
    }
  }
  const __m512 veps = _mm512_set1_ps(eps);
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = cpu::tail_mask(n - j);
    cpu::store_f32(norm + j, _mm512_max_ps(_mm512_sqrt_ps(cpu::load_f32(norm + j, m)), veps), m);
  }
  for (int64_t ch = 0; ch < c; ++ch) {
    const T* row = x + ch * p + p0;
    T* out = y + ch * p + p0;
    const __m512 wc = _mm512_set1_ps(w[ch]);
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 m = cpu::tail_mask(n - j);
      __m512 v = _mm512_mul_ps(_mm512_div_ps(load(row + j, m), _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, norm + j)), wc);
      if (silu) v = cpu::silu(v);
      store(out + j, v, m);
    }
  }
}

#pragma GCC diagnostic pop
#endif

}  // namespace

at::Tensor channel_l2_norm(const at::Tensor& x, const at::Tensor& weight, bool silu, double eps) {
  const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad());
#if GENVIS_HAS_AVX512_KERNELS
  if (cpu::avx512_supported() && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) &&
      !grad && x.dim() >= 2 && weight.numel() == x.size(1) && x.numel() > 0) {
    RECORD_FUNCTION("genvis::channel_l2_norm", std::vector<c10::IValue>({x}));
    const int64_t b = x.size(0), c = x.size(1), p = x.numel() / (b * c);
    const at::Tensor xc = x.contiguous(), w = weight.to(at::kFloat).contiguous();
    at::Tensor y = at::empty_like(xc);
    const int64_t chunks = (p + kPositions - 1) / kPositions;
    const auto run = [&](auto* xp, auto* yp) {
      cpu::parallel_for(b * chunks, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> norm(kPositions);
        for (int64_t i = begin; i < end; ++i) {
          const int64_t s = i / chunks, p0 = (i % chunks) * kPositions;
          normalize_positions(xp + s * c * p, yp + s * c * p, c, p, p0, std::min(p, p0 + kPositions), w.data_ptr<float>(),
                              static_cast<float>(eps), silu, norm.data());
        }
      });
    };
    if (x.scalar_type() == at::kFloat) run(xc.data_ptr<float>(), y.data_ptr<float>());
    else run(reinterpret_cast<const uint16_t*>(xc.data_ptr<at::BFloat16>()), reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()));
    return y;
  }
#endif
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = x.size(1);
  if (grad) {  // training: out of place, so that autograd keeps what it needs
    const at::Tensor norm = at::linalg_vector_norm(x, 2, at::IntArrayRef{1}, true, c10::nullopt).clamp_min(eps);
    const at::Tensor y = x / norm * weight.reshape(shape).to(x.scalar_type());
    return silu ? at::silu(y) : y;
  }
  const at::Tensor norm = at::linalg_vector_norm(x, 2, at::IntArrayRef{1}, true, c10::nullopt).clamp_min_(eps);
  at::Tensor y = (x / norm).mul_(weight.reshape(shape).to(x.scalar_type()));
  return silu ? at::silu_(y) : y;
}

}  // namespace genvis::nn
