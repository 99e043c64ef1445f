#include "nn/fused_rows.h"

#include "nn/cpu_kernels.h"

#include <ATen/record_function.h>
#include <cmath>
#include <torch/torch.h>

namespace genvis::nn {
namespace {

bool needs_grad(const at::Tensor& t) { return t.defined() && t.requires_grad() && at::GradMode::is_enabled(); }

// Whether p (f32-convertible) broadcasts to [B,1,C] as one [C] row per batch entry.
bool row_broadcast(const at::Tensor& p, int64_t b, int64_t c) {
  if (!p.defined() || p.dim() == 0 || p.dim() > 3 || p.size(-1) != c || needs_grad(p) || !p.device().is_cpu()) return false;
  if (p.numel() == c) return true;
  return p.dim() == 3 && p.size(0) == b && p.size(1) == 1;
}

// p as f32 [B,C] contiguous (one row per batch entry).
at::Tensor per_batch(const at::Tensor& p, int64_t b, int64_t c) {
  return p.to(at::kFloat).reshape({-1, c}).expand({b, c}).contiguous();
}

// Rows of x: [B,N,C] or [N,C] (B = 1).
struct Rows {
  int64_t b, n, c;
  explicit Rows(const at::Tensor& x) : b(x.dim() == 3 ? x.size(0) : 1), n(x.size(-2)), c(x.size(-1)) {}
};

#if GENVIS_HAS_AVX512_KERNELS
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's own avx512fintrin.h (_mm512_undefined_*)
#pragma GCC diagnostic ignored "-Wuninitialized"       // (the same, through _mm512_castps512_ps256)

bool kernel_ok(const at::Tensor& x) {
  return cpu::avx512_supported() && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) &&
         (x.dim() == 2 || x.dim() == 3) && x.numel() > 0 && !needs_grad(x);
}

using cpu::load;
using cpu::store;

template <typename T>
T* ptr(const at::Tensor& t) {
  if constexpr (std::is_same_v<T, float>) return t.data_ptr<float>();
  else return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
}

// fn.template operator()<T>() with T = float or uint16_t (bf16) after x's dtype.
template <typename F>
void dispatch(at::ScalarType type, F&& fn) {
  if (type == at::kFloat) fn(float{});
  else fn(uint16_t{});
}

constexpr int64_t kRowGrain = 16;

// y = ((x - mean) * rstd) * a + b over one row.
template <typename T, typename U>
GENVIS_AVX512 void layer_norm_row(const T* x, U* y, int64_t c, float eps, const float* a, const float* b) {
  __m512 vs = _mm512_setzero_ps();
  for (int64_t j = 0; j < c; j += 16) vs = _mm512_add_ps(vs, load(x + j, cpu::tail_mask(c - j)));
  const __m512 mean = _mm512_set1_ps(_mm512_reduce_add_ps(vs) / static_cast<float>(c));
  __m512 vq = _mm512_setzero_ps();
  for (int64_t j = 0; j < c; j += 16) {
    const __mmask16 m = cpu::tail_mask(c - j);
    const __m512 d = _mm512_maskz_sub_ps(m, load(x + j, m), mean);
    vq = _mm512_fmadd_ps(d, d, vq);
  }
  const __m512 rstd = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(vq) / static_cast<float>(c) + eps));
  for (int64_t j = 0; j < c; j += 16) {
    const __mmask16 m = cpu::tail_mask(c - j);
    const __m512 n = _mm512_mul_ps(_mm512_sub_ps(load(x + j, m), mean), rstd);
    store(y + j, _mm512_add_ps(_mm512_mul_ps(n, cpu::load_f32(a + j, m)), cpu::load_f32(b + j, m)), m);
  }
}

// out = x + y * g over one row.
template <typename T>
GENVIS_AVX512 void add_gated_row(const T* x, const T* y, T* out, int64_t c, const float* g) {
  for (int64_t j = 0; j < c; j += 16) {
    const __mmask16 m = cpu::tail_mask(c - j);
    store(out + j, _mm512_add_ps(load(x + j, m), _mm512_mul_ps(load(y + j, m), cpu::load_f32(g + j, m))), m);
  }
}

// y = (x * rsqrt(mean(x^2) + eps)) * w over one row.
template <typename T>
GENVIS_AVX512 void rms_norm_row(const T* x, T* y, int64_t c, float eps, const float* w) {
  __m512 vq = _mm512_setzero_ps();
  for (int64_t j = 0; j < c; j += 16) {
    const __m512 v = load(x + j, cpu::tail_mask(c - j));
    vq = _mm512_fmadd_ps(v, v, vq);
  }
  const __m512 r = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(vq) / static_cast<float>(c) + eps));
  for (int64_t j = 0; j < c; j += 16) {
    const __mmask16 m = cpu::tail_mask(c - j);
    store(y + j, _mm512_mul_ps(_mm512_mul_ps(load(x + j, m), r), cpu::load_f32(w + j, m)), m);
  }
}

// 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), as x / (1 + e) for u >= 0 and
// x e / (1 + e) for u < 0 with e = exp(-2|u|): the same function without 1 + tanh(u)'s
// cancellation for negative x (relative error ~1e-6 everywhere; libtorch's is absolute).
GENVIS_AVX512 inline __m512 gelu_tanh_ps(__m512 x) {
  const __m512 beta = _mm512_set1_ps(static_cast<float>(M_SQRT2 * M_2_SQRTPI * 0.5)), kappa = _mm512_set1_ps(0.044715f);
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 cube = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  const __m512 u = _mm512_mul_ps(beta, _mm512_add_ps(x, _mm512_mul_ps(kappa, cube)));
  const __m512 e = cpu::exp_nonpositive(_mm512_mul_ps(_mm512_set1_ps(-2.0f), _mm512_abs_ps(u)));
  const __m512 r = _mm512_div_ps(one, _mm512_add_ps(one, e));
  const __m512 factor = _mm512_mask_mul_ps(r, _mm512_cmp_ps_mask(u, _mm512_setzero_ps(), _CMP_LT_OQ), r, e);
  return _mm512_mul_ps(x, factor);
}

template <typename T>
GENVIS_AVX512 void gelu_range(T* x, int64_t n) {
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = cpu::tail_mask(n - j);
    store(x + j, gelu_tanh_ps(load(x + j, m)), m);
  }
}

// One token's row of H heads x D values: pairs rotated in float64 by (cos, sin) [D/2].
template <typename T>
GENVIS_AVX512 void rotary_row(const T* x, T* y, int64_t heads, int64_t d, const double* cos, const double* sin) {
  const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
  const __m512i lo_idx = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), hi_idx = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
  const int64_t pairs = d / 2;
  for (int64_t h = 0; h < heads; ++h) {
    const T* xh = x + h * d;
    T* yh = y + h * d;
    for (int64_t i = 0; i < pairs; i += 8) {  // 8 pairs = 16 values
      const int64_t left = pairs - i;
      const __mmask16 m = cpu::tail_mask(2 * left);
      const __mmask8 m8 = left >= 8 ? __mmask8(0xFF) : __mmask8((1u << left) - 1);
      const __m512 v = load(xh + 2 * i, m);                                   // a0 b0 a1 b1 ... a7 b7
      const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));         // a0 b0 .. a3 b3
      const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));      // a4 b4 .. a7 b7
      const __m512d a = _mm512_permutex2var_pd(lo, even, hi), b = _mm512_permutex2var_pd(lo, odd, hi);
      const __m512d c = _mm512_maskz_loadu_pd(m8, cos + i), s = _mm512_maskz_loadu_pd(m8, sin + i);
      const __m512d ra = _mm512_sub_pd(_mm512_mul_pd(a, c), _mm512_mul_pd(b, s));
      const __m512d rb = _mm512_add_pd(_mm512_mul_pd(a, s), _mm512_mul_pd(b, c));
      // Interleave back, float64 -> f32 (round to nearest even, as libtorch's double -> float/bf16).
      const __m256 flo = _mm512_cvtpd_ps(_mm512_permutex2var_pd(ra, lo_idx, rb));
      const __m256 fhi = _mm512_cvtpd_ps(_mm512_permutex2var_pd(ra, hi_idx, rb));
      store(yh + 2 * i, _mm512_insertf32x8(_mm512_castps256_ps512(flo), fhi, 1), m);
    }
  }
}

#pragma GCC diagnostic pop
#else
bool kernel_ok(const at::Tensor&) { return false; }
#endif

}  // namespace

at::Tensor layer_norm_scale_shift(const at::Tensor& x, double eps, const at::Tensor& scale, const at::Tensor& shift,
                                  at::ScalarType dtype) {
  const Rows r(x);
  if (kernel_ok(x) && (dtype == at::kFloat || dtype == at::kBFloat16) && row_broadcast(scale, r.b, r.c) &&
      row_broadcast(shift, r.b, r.c)) {
#if GENVIS_HAS_AVX512_KERNELS
    RECORD_FUNCTION("genvis::layer_norm_scale_shift", std::vector<c10::IValue>({x}));
    const at::Tensor xc = x.contiguous(), a = per_batch(scale, r.b, r.c), b = per_batch(shift, r.b, r.c);
    at::Tensor y = at::empty(x.sizes(), x.options().dtype(dtype));
    dispatch(x.scalar_type(), [&](auto in) {
      using T = decltype(in);
      dispatch(dtype, [&](auto out) {
        using U = decltype(out);
        const T* xp = ptr<T>(xc);
        U* yp = ptr<U>(y);
        cpu::parallel_for(r.b * r.n, kRowGrain, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i)
            layer_norm_row(xp + i * r.c, yp + i * r.c, r.c, static_cast<float>(eps), a.data_ptr<float>() + (i / r.n) * r.c,
                           b.data_ptr<float>() + (i / r.n) * r.c);
        });
      });
    });
    return y;
#endif
  }
  return (at::layer_norm(x.to(at::kFloat), {r.c}, {}, {}, eps) * scale + shift).to(dtype);
}

at::Tensor add_gated(const at::Tensor& x, const at::Tensor& y, const at::Tensor& gate) {
  const Rows r(x);
  if (kernel_ok(x) && !needs_grad(y) && y.sizes() == x.sizes() && y.scalar_type() == x.scalar_type() &&
      row_broadcast(gate, r.b, r.c)) {
#if GENVIS_HAS_AVX512_KERNELS
    RECORD_FUNCTION("genvis::add_gated", std::vector<c10::IValue>({x, y}));
    const at::Tensor xc = x.contiguous(), yc = y.contiguous(), g = per_batch(gate, r.b, r.c);
    at::Tensor out = at::empty_like(xc);
    dispatch(x.scalar_type(), [&](auto in) {
      using T = decltype(in);
      const T *xp = ptr<T>(xc), *yp = ptr<T>(yc);
      T* op = ptr<T>(out);
      cpu::parallel_for(r.b * r.n, kRowGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          add_gated_row(xp + i * r.c, yp + i * r.c, op + i * r.c, r.c, g.data_ptr<float>() + (i / r.n) * r.c);
      });
    });
    return out;
#endif
  }
  return (x.to(at::kFloat) + y.to(at::kFloat) * gate).to(x.scalar_type());
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const Rows r(x);
  if (kernel_ok(x) && weight.defined() && weight.dim() == 1 && row_broadcast(weight, r.b, r.c)) {
#if GENVIS_HAS_AVX512_KERNELS
    RECORD_FUNCTION("genvis::rms_norm", std::vector<c10::IValue>({x}));
    const at::Tensor xc = x.contiguous(), w = weight.to(at::kFloat).contiguous();
    at::Tensor y = at::empty_like(xc);
    dispatch(x.scalar_type(), [&](auto in) {
      using T = decltype(in);
      const T* xp = ptr<T>(xc);
      T* yp = ptr<T>(y);
      cpu::parallel_for(r.b * r.n, kRowGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          rms_norm_row(xp + i * r.c, yp + i * r.c, r.c, static_cast<float>(eps), w.data_ptr<float>());
      });
    });
    return y;
#endif
  }
  const at::Tensor f = x.to(at::kFloat);
  return (f * at::rsqrt(f.pow(2).mean(-1, true) + eps) * weight.to(at::kFloat)).to(x.scalar_type());
}

at::Tensor gelu_tanh(at::Tensor x) {
  if (kernel_ok(x) && x.is_contiguous()) {
#if GENVIS_HAS_AVX512_KERNELS
    RECORD_FUNCTION("genvis::gelu_tanh", std::vector<c10::IValue>({x}));
    dispatch(x.scalar_type(), [&](auto in) {
      using T = decltype(in);
      T* p = ptr<T>(x);
      constexpr int64_t kChunk = 16384;
      const int64_t n = x.numel(), chunks = (n + kChunk - 1) / kChunk;
      cpu::parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) gelu_range(p + i * kChunk, std::min(kChunk, n - i * kChunk));
      });
    });
    return x;
#endif
  }
  return at::gelu(x, "tanh");
}

at::Tensor rotary_pairs(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t heads) {
  const Rows r(x);
  const int64_t d = r.c / heads;
  if (kernel_ok(x) && d % 2 == 0 && d * heads == r.c && cos.scalar_type() == at::kDouble && sin.scalar_type() == at::kDouble &&
      cos.dim() == 2 && cos.size(0) == r.n && cos.size(1) == d / 2 && sin.sizes() == cos.sizes() && cos.device().is_cpu()) {
#if GENVIS_HAS_AVX512_KERNELS
    RECORD_FUNCTION("genvis::rotary_pairs", std::vector<c10::IValue>({x}));
    const at::Tensor xc = x.contiguous(), cc = cos.contiguous(), sc = sin.contiguous();
    at::Tensor y = at::empty_like(xc);
    dispatch(x.scalar_type(), [&](auto in) {
      using T = decltype(in);
      const T* xp = ptr<T>(xc);
      T* yp = ptr<T>(y);
      cpu::parallel_for(r.b * r.n, kRowGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          rotary_row(xp + i * r.c, yp + i * r.c, heads, d, cc.data_ptr<double>() + (i % r.n) * (d / 2),
                     sc.data_ptr<double>() + (i % r.n) * (d / 2));
      });
    });
    return y;
#endif
  }
  // [B,N,H,D/2,2] in float64; (cos, sin) [N,1,D/2] broadcast over batch and heads.
  const at::Tensor pairs = x.unflatten(-1, {heads, -1}).to(at::kDouble).unflatten(-1, {-1, 2});
  const at::Tensor a = pairs.select(-1, 0), b = pairs.select(-1, 1);
  const at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);
  return at::stack({a * c - b * s, a * s + b * c}, -1).flatten(-3).to(x.scalar_type());
}

}  // namespace genvis::nn
