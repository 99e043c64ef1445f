#include "nn/attention.h"
#include "nn/group_norm_silu.h"
#include "nn/lora.h"
#include "nn/quantize.h"

#include "core/error.h"
#include "core/torch_compat.h"
#include "nn/cpu_kernels.h"

#include <ATen/record_function.h>
#include <algorithm>
#include <c10/util/BFloat16.h>
#include <cmath>
#include <cstring>
#include <limits>
#include <torch/torch.h>
#include <vector>

namespace genvis::nn {
namespace {

// Score elements per oneDNN call: large enough that the per-call reorder of the keys and values
// (the convolution's "weights") is amortised, small enough to stay in the last-level cache.
constexpr int64_t kScoreBlockElements = int64_t{4} << 20;

bool needs_grad(const at::Tensor& t) { return t.defined() && t.requires_grad() && at::GradMode::is_enabled(); }

// The oneDNN CPU path: f32/bf16 on the CPU with oneDNN, inference only.
bool use_onednn(const at::Tensor& x) {
  static const bool available = at::hasMKLDNN();
  return available && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) &&
         !needs_grad(x);
}

// A contiguous [M,K] matrix seen as the channels-last image [1,K,M,1] (the same memory), the
// layout in which oneDNN's 1x1 convolution is a GEMM that reads and writes plain row-major rows.
at::Tensor as_image(const at::Tensor& m) {
  const int64_t rows = m.size(0), cols = m.size(1);
  return m.as_strided({1, cols, rows, 1}, {rows * cols, 1, cols, cols});
}
// A contiguous [N,K] matrix as the 1x1 kernel [N,K,1,1].
at::Tensor as_kernel(const at::Tensor& w) {
  const int64_t n = w.size(0), k = w.size(1);
  return w.as_strided({n, k, 1, 1}, {k, 1, k, k});
}
// The [1,N,M,1] channels-last result back to [M,N] (a view when oneDNN wrote channels-last).
at::Tensor from_image(const at::Tensor& y) { return y.permute({0, 2, 3, 1}).reshape({y.size(2), y.size(1)}); }

// x [M,K] contiguous, kernel from as_kernel; `groups` splits K and N evenly.
at::Tensor conv_gemm(const at::Tensor& x, const at::Tensor& kernel, const at::Tensor& bias, int64_t groups) {
  const c10::optional<at::Tensor> b = bias.defined() ? c10::optional<at::Tensor>(bias.contiguous()) : c10::nullopt;
  return from_image(at::mkldnn_convolution(as_image(x), kernel, b, {0, 0}, {1, 1}, {1, 1}, groups));
}

// bf16 attention on AVX-512 BF16 CPUs in one pass over the keys (online softmax, as
// FlashAttention): per (batch, head, block of kRows queries), S = Q K^T for kKeyBlock keys in
// f32 registers (vdpbf16ps), P = exp(S*scale - running max) in f32, O += P V with P rounded to
// bf16, O rescaled when the max grows. Nothing of size N x T is stored, scores and softmax are
// f32 (5-10x smaller error than libtorch's bf16 matmul + bf16 softmax), and at SD's head size 40
// it is 2x faster than attention_onednn below and 4.5x faster than matmul/softmax/matmul
// (docs/performance.md); at Wan's head size 128 it runs at ~77-79% of the bf16 GEMM rate for
// self-attention over 1k-14k tokens. An additive bias (T5's position bias and padding mask) is
// added to the scaled scores of each block before the softmax. Pitfall: the `GCC unroll` pragmas
// keep the accumulator tiles in registers; without them GCC -O2 keeps acc[][] on the stack and
// the kernels run 2.4x slower.
#if GENVIS_HAS_AVX512_KERNELS
#define GENVIS_HAS_FLASH_BF16 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's own avx512fintrin.h (_mm512_undefined_*)

namespace flash {

constexpr int64_t kRows = 32;       // queries per work item (a multiple of 4)
constexpr int64_t kKeyBlock = 256;  // keys per online-softmax step (a multiple of 32)

// Sizes, with d padded to pairs (dp; to 32 for AMX tiles), to 16-wide vectors (dv * 16) and keys
// to 32 (tp).
struct Dims {
  int64_t b, n, t, heads, d, c, dp, dv, tp;
  bool amx;
  Dims(int64_t b_, int64_t n_, int64_t t_, int64_t heads_, int64_t d_, bool amx_)
      : b(b_), n(n_), t(t_), heads(heads_), d(d_), c(heads_ * d_), dp(amx_ ? (d_ + 31) / 32 * 32 : (d_ + 1) / 2 * 2),
        dv((d_ + 15) / 16), tp((t_ + 31) / 32 * 32), amx(amx_) {}
  int64_t key_pack_size() const { return tp * dp; }        // per (batch, head)
  int64_t value_pack_size() const { return tp * dv * 16; }
};

GENVIS_AVX512BF16 inline int32_t pair_at(const uint16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// s[4][NV*16] = q[4][dp] . keys, keys packed as [NV tiles][dp/2 pairs][16 keys][2].
template <int NV>
GENVIS_AVX512BF16 void qk_block(const uint16_t* q, int64_t dp, const uint16_t* kp, float* s, int64_t lds) {
  const int64_t pairs = dp / 2;
  __m512 acc[4][NV];
  _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r)
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    __m512bh kv[NV];
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) kv[v] = (__m512bh)_mm512_loadu_si512(kp + (v * pairs + p) * 32);
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r) {
      const __m512bh qb = (__m512bh)_mm512_set1_epi32(pair_at(q + r * dp + 2 * p));
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], qb, kv[v]);
    }
  }
  _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r)
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) _mm512_storeu_ps(s + r * lds + v * 16, acc[r][v]);
}

// o[4][NV*16] += p[4][2*pairs] . values, values packed as [pairs][dv vectors][16 d][2].
template <int NV>
GENVIS_AVX512BF16 void pv_block(const uint16_t* p, int64_t ldp, int64_t pairs, const uint16_t* vp, int64_t dv, float* o,
                                int64_t ldo) {
  __m512 acc[4][NV];
  _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r)
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_loadu_ps(o + r * ldo + v * 16);
  for (int64_t j = 0; j < pairs; ++j) {
    __m512bh vv[NV];
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) vv[v] = (__m512bh)_mm512_loadu_si512(vp + (j * dv + v) * 32);
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r) {
      const __m512bh pb = (__m512bh)_mm512_set1_epi32(pair_at(p + r * ldp + 2 * j));
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], pb, vv[v]);
    }
  }
  _Pragma("GCC unroll 4") for (int r = 0; r < 4; ++r)
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) _mm512_storeu_ps(o + r * ldo + v * 16, acc[r][v]);
}

// The same two products on AMX tiles (kRows = 32 queries as two tiles of 16 rows; tiles 0-3
// accumulate a 2 x 2 block of 16 x 16 f32 results, 4-5 hold the left operand, 6-7 the right).
static_assert(kRows == 32, "the AMX products take the queries as two tiles of 16 rows");
// s[32][kb] = q[32][dp] . keys of the block, packed [kb/16][dp/2][16][2] (dp a multiple of 32).
GENVIS_AMX_BF16 void amx_scores(const uint16_t* q, int64_t dp, const uint16_t* kp, float* s, int64_t kb) {
  const int64_t pairs = dp / 2, qstride = dp * 2, sstride = kb * 4;
  for (int64_t jt = 0; jt < kb / 16; jt += 2) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const uint16_t* k0 = kp + jt * pairs * 32;
    const uint16_t* k1 = k0 + pairs * 32;
    for (int64_t kk = 0; kk < dp / 32; ++kk) {
      _tile_loadd(4, q + kk * 32, qstride);
      _tile_loadd(5, q + 16 * dp + kk * 32, qstride);
      _tile_loadd(6, k0 + kk * 16 * 32, 64);
      _tile_loadd(7, k1 + kk * 16 * 32, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, s + jt * 16, sstride);
    _tile_stored(1, s + jt * 16 + 16, sstride);
    _tile_stored(2, s + 16 * kb + jt * 16, sstride);
    _tile_stored(3, s + 16 * kb + jt * 16 + 16, sstride);
  }
}

// o[32][dv*16] += p[32][kb] . values of the block, packed [kb/2][dv][16][2].
GENVIS_AMX_BF16 void amx_values(const uint16_t* p, int64_t kb, const uint16_t* vp, int64_t dv, float* o, int64_t ldo) {
  const int64_t pstride = kb * 2, vstride = dv * 64, ostride = ldo * 4;
  for (int64_t v = 0; v < dv; v += 2) {
    const bool two = v + 1 < dv;
    float* o0 = o + v * 16;
    float* o1 = o + 16 * ldo + v * 16;
    _tile_loadd(0, o0, ostride);
    _tile_loadd(2, o1, ostride);
    if (two) {
      _tile_loadd(1, o0 + 16, ostride);
      _tile_loadd(3, o1 + 16, ostride);
    }
    for (int64_t kk = 0; kk < kb / 32; ++kk) {
      _tile_loadd(4, p + kk * 32, pstride);
      _tile_loadd(5, p + 16 * kb + kk * 32, pstride);
      const uint16_t* vb = vp + (kk * 16 * dv + v) * 32;
      _tile_loadd(6, vb, vstride);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(2, 5, 6);
      if (two) {
        _tile_loadd(7, vb + 32, vstride);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
    _tile_stored(0, o0, ostride);
    _tile_stored(2, o1, ostride);
    if (two) {
      _tile_stored(1, o0 + 16, ostride);
      _tile_stored(3, o1 + 16, ostride);
    }
  }
}

// Keys of one (batch, head) as qk_block wants them, zero-padded: [tp/16][dp/2][16][2].
void pack_keys(const uint16_t* k, const Dims& s, int64_t b, int64_t h, uint16_t* out) {
  const int64_t pairs = s.dp / 2;
  std::fill(out, out + s.key_pack_size(), uint16_t{0});
  for (int64_t j = 0; j < s.t; ++j) {
    const uint16_t* row = k + (b * s.t + j) * s.c + h * s.d;
    uint16_t* tile = out + (j / 16) * pairs * 32 + (j % 16) * 2;
    for (int64_t d = 0; d < s.d; ++d) tile[(d / 2) * 32 + d % 2] = row[d];
  }
}

// Values of one (batch, head) as pv_block wants them, zero-padded: [tp/2][dv][16][2].
void pack_values(const uint16_t* v, const Dims& s, int64_t b, int64_t h, uint16_t* out) {
  std::fill(out, out + s.value_pack_size(), uint16_t{0});
  for (int64_t j = 0; j < s.t; ++j) {
    const uint16_t* row = v + (b * s.t + j) * s.c + h * s.d;
    uint16_t* pair = out + (j / 2) * s.dv * 32 + j % 2;
    for (int64_t d = 0; d < s.d; ++d) pair[(d / 16) * 32 + (d % 16) * 2] = row[d];
  }
}

struct Scratch {
  std::vector<uint16_t> q, p;
  std::vector<float> s, o, m, l;
  explicit Scratch(const Dims& d)
      : q(kRows * d.dp), p(kRows * kKeyBlock), s(kRows * kKeyBlock), o(kRows * d.dv * 16), m(kRows), l(kRows) {}
};

// An additive f32 bias seen as [B,H,N,T]: element (b,h,n,t) at data[b*sb + h*sh + n*sn + t] (strides
// 0 where it broadcasts).
struct Bias {
  const float* data = nullptr;
  int64_t sb = 0, sh = 0, sn = 0;
  const float* row(int64_t b, int64_t h, int64_t n) const { return data + b * sb + h * sh + n * sn; }
};

// Rows [n0, n0+kRows) of one (batch, head): out = softmax(q k^T * scale + bias) v, in f32 but for P.
GENVIS_AVX512BF16 void attend_rows(const uint16_t* q, const uint16_t* kp, const uint16_t* vp, uint16_t* out, const Dims& s,
                                   int64_t b, int64_t h, int64_t n0, float scale, const Bias& bias, Scratch& w) {
  const int64_t rows = std::min(kRows, s.n - n0), ldo = s.dv * 16;
  std::fill(w.q.begin(), w.q.end(), uint16_t{0});
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(q + (b * s.n + n0 + r) * s.c + h * s.d, s.d, w.q.data() + r * s.dp);
  std::fill(w.o.begin(), w.o.end(), 0.0f);
  std::fill(w.m.begin(), w.m.end(), -std::numeric_limits<float>::infinity());
  std::fill(w.l.begin(), w.l.end(), 0.0f);
  // With a bias the scores are scaled and biased in step 1b, and step 2 takes them as they are.
  const float score_scale = bias.data ? 1.0f : scale;
  const __m512 vscale = _mm512_set1_ps(score_scale);
  for (int64_t j0 = 0; j0 < s.tp; j0 += kKeyBlock) {
    const int64_t kb = std::min(kKeyBlock, s.tp - j0), valid = std::min(kb, s.t - j0), tiles = kb / 16;
    // 1. S = Q K^T for this block of keys
    if (s.amx) amx_scores(w.q.data(), s.dp, kp + (j0 / 16) * (s.dp / 2) * 32, w.s.data(), kb);
    for (int64_t r0 = 0; r0 < kRows && !s.amx; r0 += 4) {
      const uint16_t* qr = w.q.data() + r0 * s.dp;
      float* sr = w.s.data() + r0 * kb;
      int64_t v = 0;
      for (; v + 4 <= tiles; v += 4) qk_block<4>(qr, s.dp, kp + (j0 / 16 + v) * (s.dp / 2) * 32, sr + v * 16, kb);
      for (; v + 2 <= tiles; v += 2) qk_block<2>(qr, s.dp, kp + (j0 / 16 + v) * (s.dp / 2) * 32, sr + v * 16, kb);
    }
    // 1b. S = S * scale + bias on the valid rows and keys
    if (bias.data) {
      const __m512 vs = _mm512_set1_ps(scale);
      for (int64_t r = 0; r < rows; ++r) {
        float* sr = w.s.data() + r * kb;
        const float* br = bias.row(b, h, n0 + r) + j0;
        for (int64_t j = 0; j < valid; j += 16) {
          const __mmask16 m = cpu::tail_mask(valid - j);
          _mm512_mask_storeu_ps(sr + j, m, _mm512_fmadd_ps(_mm512_loadu_ps(sr + j), vs, _mm512_maskz_loadu_ps(m, br + j)));
        }
      }
    }
    // 2. online softmax: P = exp(scale*S - m), rescale the running sums
    for (int64_t r = 0; r < kRows; ++r) {
      float* sr = w.s.data() + r * kb;
      __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
      for (int64_t j = 0; j < kb; j += 16) {
        const __mmask16 live = j + 16 <= valid ? __mmask16(0xFFFF) : j >= valid ? __mmask16(0) : __mmask16((1u << (valid - j)) - 1);
        vmax = _mm512_mask_max_ps(vmax, live, vmax, _mm512_loadu_ps(sr + j));
      }
      const float m_new = std::max(w.m[r], _mm512_reduce_max_ps(vmax) * score_scale);
      const float corr = std::exp(w.m[r] - m_new);
      const __m512 vneg = _mm512_set1_ps(-m_new);
      __m512 vsum = _mm512_setzero_ps();
      uint16_t* pr = w.p.data() + r * kb;
      for (int64_t j = 0; j < kb; j += 32) {
        __m512 e[2];
        for (int half = 0; half < 2; ++half) {
          const int64_t jj = j + 16 * half;
          const __mmask16 live = jj + 16 <= valid ? __mmask16(0xFFFF) : jj >= valid ? __mmask16(0) : __mmask16((1u << (valid - jj)) - 1);
          const __m512 x = _mm512_mask_blend_ps(live, _mm512_set1_ps(-1e30f), _mm512_fmadd_ps(_mm512_loadu_ps(sr + jj), vscale, vneg));
          e[half] = cpu::exp_nonpositive(x);
          vsum = _mm512_add_ps(vsum, e[half]);
        }
        _mm512_storeu_si512(pr + j, (__m512i)_mm512_cvtne2ps_pbh(e[1], e[0]));
      }
      w.l[r] = w.l[r] * corr + _mm512_reduce_add_ps(vsum);
      w.m[r] = m_new;
      if (corr != 1.0f) {
        float* orow = w.o.data() + r * ldo;
        const __m512 vc = _mm512_set1_ps(corr);
        for (int64_t d = 0; d < ldo; d += 16) _mm512_storeu_ps(orow + d, _mm512_mul_ps(_mm512_loadu_ps(orow + d), vc));
      }
    }
    // 3. O += P V
    if (s.amx) amx_values(w.p.data(), kb, vp + (j0 / 2) * s.dv * 32, s.dv, w.o.data(), ldo);
    for (int64_t r0 = 0; r0 < kRows && !s.amx; r0 += 4) {
      const uint16_t* pr = w.p.data() + r0 * kb;
      float* orow = w.o.data() + r0 * ldo;
      const uint16_t* vblk = vp + (j0 / 2) * s.dv * 32;
      int64_t v = 0;
      for (; v + 4 <= s.dv; v += 4) pv_block<4>(pr, kb, kb / 2, vblk + v * 32, s.dv, orow + v * 16, ldo);
      switch (s.dv - v) {
        case 3: pv_block<3>(pr, kb, kb / 2, vblk + v * 32, s.dv, orow + v * 16, ldo); break;
        case 2: pv_block<2>(pr, kb, kb / 2, vblk + v * 32, s.dv, orow + v * 16, ldo); break;
        case 1: pv_block<1>(pr, kb, kb / 2, vblk + v * 32, s.dv, orow + v * 16, ldo); break;
        default: break;
      }
    }
  }
  // 4. normalise and store the valid rows
  for (int64_t r = 0; r < rows; ++r) {
    const float inv = 1.0f / w.l[r];
    uint16_t* dst = out + (b * s.n + n0 + r) * s.c + h * s.d;
    const float* orow = w.o.data() + r * ldo;
    for (int64_t d = 0; d < s.d; ++d) dst[d] = c10::BFloat16(orow[d] * inv).x;
  }
}

// q [B,N,H*D], k/v [B,T,H*D] bf16 contiguous -> [B,N,H*D]; bias f32 [B,H,N,T] with unit stride
// along T (any strides, 0 included, elsewhere) or undefined.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads, double scale,
                     const at::Tensor& bias) {
  const Dims s(q.size(0), q.size(1), k.size(1), heads, q.size(2) / heads, cpu::amx_bf16_supported());
  Bias b;
  if (bias.defined()) b = {bias.data_ptr<float>(), bias.stride(0), bias.stride(1), bias.stride(2)};
  at::Tensor out = at::empty_like(q);
  const auto* qd = reinterpret_cast<const uint16_t*>(q.data_ptr<at::BFloat16>());
  const auto* kd = reinterpret_cast<const uint16_t*>(k.data_ptr<at::BFloat16>());
  const auto* vd = reinterpret_cast<const uint16_t*>(v.data_ptr<at::BFloat16>());
  auto* od = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  const int64_t bh = s.b * s.heads;
  std::vector<uint16_t> kpack(bh * s.key_pack_size()), vpack(bh * s.value_pack_size());
  cpu::parallel_for(bh, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      pack_keys(kd, s, i / s.heads, i % s.heads, kpack.data() + i * s.key_pack_size());
      pack_values(vd, s, i / s.heads, i % s.heads, vpack.data() + i * s.value_pack_size());
    }
  });
  const int64_t tiles = (s.n + kRows - 1) / kRows;
  cpu::parallel_for(bh * tiles, 1, [&](int64_t begin, int64_t end) {
    Scratch w(s);
    if (s.amx) cpu::tile_config_16x64();  // tile state is per thread
    for (int64_t i = begin; i < end; ++i) {
      const int64_t head = i / tiles;
      attend_rows(qd, kpack.data() + head * s.key_pack_size(), vpack.data() + head * s.value_pack_size(), od, s,
                  head / s.heads, head % s.heads, (i % tiles) * kRows, static_cast<float>(scale), b, w);
    }
    if (s.amx) cpu::tile_release();
  });
  return out;
}

}  // namespace flash
#pragma GCC diagnostic pop
#else
#define GENVIS_HAS_FLASH_BF16 0
#endif

// q [B,N,H*D], k/v [B,T,H*D] -> [B,N,H*D], oneDNN: per batch entry and block of queries, all heads
// in one grouped 1x1 convolution each for q k^T and p v; softmax in place in between.
at::Tensor attention_onednn(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in, int64_t heads,
                            double scale, const at::Tensor& bias) {
  const int64_t b = q_in.size(0), n = q_in.size(1), c = q_in.size(2), t = k_in.size(1), d = c / heads;
  const at::Tensor q = q_in.contiguous();
  at::Tensor out = at::empty({b, n, c}, q.options());
  const int64_t block = std::clamp<int64_t>(kScoreBlockElements / (heads * t), 16, n);
  for (int64_t i = 0; i < b; ++i) {
    // Keys as H kernels [T,D] (scale folded in), values as H kernels [D,T].
    const at::Tensor keys = as_kernel((k_in[i].view({t, heads, d}).permute({1, 0, 2}) * scale).contiguous().view({heads * t, d}));
    const at::Tensor values = as_kernel(v_in[i].view({t, heads, d}).permute({1, 2, 0}).contiguous().view({heads * d, t}));
    for (int64_t n0 = 0; n0 < n; n0 += block) {
      const int64_t rows = std::min(block, n - n0);
      at::Tensor scores = conv_gemm(q[i].narrow(0, n0, rows), keys, {}, heads);  // [rows, H*T] = [rows,H,T]
      at::Tensor per_head = scores.view({rows, heads, t});
      if (bias.defined()) per_head.add_(bias[i].narrow(1, n0, rows).permute({1, 0, 2}));  // [H,rows,T] -> [rows,H,T]
      at::_softmax_out(per_head, per_head, -1, false);
      out[i].narrow(0, n0, rows).copy_(conv_gemm(scores, values, {}, heads));  // [rows, H*D]
    }
  }
  return out;
}

// y = x w^T + b for x [M,K] with gradients, every product through conv_gemm (training in f32:
// at::linear's backward would run on the reference BLAS too). dx = g w, dw = g^T x, db = sum g.
struct OneDnnLinear : public torch::autograd::Function<OneDnnLinear> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            const at::Tensor& b) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["bias"] = b.requires_grad();
    return conv_gemm(x, as_kernel(w.contiguous()), b, 1).contiguous();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    const at::Tensor g = grads[0].contiguous();
    const at::Tensor dx = conv_gemm(g, as_kernel(w.t().contiguous()), {}, 1);
    const at::Tensor dw = conv_gemm(g.t().contiguous(), as_kernel(x.t().contiguous()), {}, 1);
    const at::Tensor db = ctx->saved_data["bias"].toBool() ? g.sum(0) : at::Tensor();
    return {dx, dw, db};
  }
};

}  // namespace

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  static const bool onednn_f32 = at::hasMKLDNN() && !at::hasMKL();  // with MKL, at::linear is fast
  if (!onednn_f32 || x.scalar_type() != at::kFloat || weight.scalar_type() != at::kFloat || !x.device().is_cpu() ||
      x.numel() == 0 || (bias.defined() && bias.scalar_type() != at::kFloat) || compat::autocast_enabled(at::kCPU))
    return at::linear(x, weight, bias);  // (under autocast at::linear runs in the autocast dtype)
  const int64_t k = weight.size(1);
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  const at::Tensor x2d = x.reshape({-1, k}).contiguous();
  if (needs_grad(x) || needs_grad(weight) || needs_grad(bias))
    // (autograd Functions take defined tensors only: no bias is a zero bias without gradient)
    return OneDnnLinear::apply(x2d, weight, bias.defined() ? bias : at::zeros({weight.size(0)}, weight.options()))
        .view(sizes);
  return conv_gemm(x2d, as_kernel(weight.contiguous()), bias, 1).view(sizes);
}

at::Tensor linear(const at::Tensor& x, const torch::nn::Linear& layer) {
  if (Int8LayerImpl* q = int8_layer(*layer); q && q->weight.geglu_half == 0 && int8_applies(x, layer->weight)) {
    q->calls.fetch_add(1, std::memory_order_relaxed);
    return add_lora(*layer, x, int8::linear(x, q->weight, layer->bias));
  }
  return add_lora(*layer, x, linear(x, layer->weight, layer->bias));
}

namespace {

// bias as f32 [B,H,N,T] (a broadcasting view; unit stride along T), or undefined.
at::Tensor expand_bias(const at::Tensor& bias, int64_t b, int64_t heads, int64_t n, int64_t t) {
  if (!bias.defined()) return {};
  if (bias.dim() > 4) throw UsageError("attention bias must broadcast to [B,H,N,T], got " + c10::str(bias.sizes()));
  at::Tensor e = bias.to(at::kFloat).expand({b, heads, n, t});
  if (e.stride(3) != 1) e = e.contiguous();
  return e;
}

}  // namespace

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads, std::optional<double> scale,
                     const at::Tensor& bias) {
  RECORD_FUNCTION("genvis::attention", std::vector<c10::IValue>({q, k, v}));
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1) / heads));
  if (use_onednn(q) && !needs_grad(k) && !needs_grad(v) && !needs_grad(bias)) {
    const at::Tensor b = expand_bias(bias, q.size(0), heads, q.size(1), k.size(1));
#if GENVIS_HAS_FLASH_BF16
    if (q.scalar_type() == at::kBFloat16 && cpu::avx512bf16_supported())
      return flash::attention(q.contiguous(), k.contiguous(), v.contiguous(), heads, s, b);
#endif
    return attention_onednn(q, k, v, heads, s, b);
  }
  return merge_heads(
      scaled_dot_product_attention(split_heads(q, heads), split_heads(k, heads), split_heads(v, heads), s, bias));
}

const char* cpu_attention_kernel(at::ScalarType dtype) {
  if (!at::hasMKLDNN()) return "reference";
#if GENVIS_HAS_FLASH_BF16
  if (dtype == at::kBFloat16 && cpu::avx512bf16_supported()) return cpu::amx_bf16_supported() ? "amx-bf16" : "avx512-bf16";
#endif
  return dtype == at::kFloat || dtype == at::kBFloat16 ? "onednn" : "reference";
}

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        std::optional<double> scale, const at::Tensor& bias) {
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
#if GENVIS_HAS_SDPA && GENVIS_TORCH_AT_LEAST(2, 1)
  // A float attn_mask is added to the scaled scores; it must have the query's dtype.
  const c10::optional<at::Tensor> mask = bias.defined() ? c10::optional<at::Tensor>(bias.to(q.scalar_type())) : c10::nullopt;
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, s);
#else
  if (use_onednn(q) && !needs_grad(k) && !needs_grad(v) && !needs_grad(bias))
    return split_heads(attention(merge_heads(q), merge_heads(k), merge_heads(v), q.size(1), s, bias), q.size(1));
  const at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) * s;  // [B,H,N,T]
  if (!bias.defined()) return at::matmul(scores.softmax(-1), v);
  // Biased scores and their softmax in at least f32 (as transformers' T5 does in f16/bf16), cast back.
  const auto wide = at::promote_types(scores.scalar_type(), at::kFloat);
  return at::matmul((scores.to(wide) + bias.to(wide)).softmax(-1).to(scores.scalar_type()), v);
#endif
}

at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  const auto b = x.size(0), n = x.size(1);
  return x.view({b, n, heads, x.size(2) / heads}).transpose(1, 2);
}

at::Tensor merge_heads(const at::Tensor& x) {
  const auto b = x.size(0), h = x.size(1), n = x.size(2), d = x.size(3);
  return x.transpose(1, 2).reshape({b, n, h * d});
}

AttentionImpl::AttentionImpl(const AttentionOptions& o) : options(o) {
  const int64_t inner = o.heads * o.dim_head;
  const int64_t kv_dim = o.cross_attention_dim > 0 ? o.cross_attention_dim : o.query_dim;
  if (o.norm_num_groups > 0)
    group_norm = register_module(
        "group_norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.norm_num_groups, o.query_dim).eps(o.eps)));
  to_q = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(o.query_dim, inner).bias(o.bias)));
  to_k = register_module("to_k", torch::nn::Linear(torch::nn::LinearOptions(kv_dim, inner).bias(o.bias)));
  to_v = register_module("to_v", torch::nn::Linear(torch::nn::LinearOptions(kv_dim, inner).bias(o.bias)));
  out_proj = torch::nn::Linear(inner, o.query_dim);
  to_out = register_module("to_out", torch::nn::ModuleList(out_proj));
}

at::Tensor AttentionImpl::forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states) {
  at::Tensor x = hidden_states;
  const bool spatial = x.dim() == 4;
  int64_t b = 0, c = 0, h = 0, w = 0;
  if (spatial) {
    b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    if (group_norm) x = nn::group_norm(group_norm, x);  // on [B,C,H,W]: the statistics of [B,C,HW], in the input's memory format
    x = x.flatten(2).transpose(1, 2).contiguous();  // [B,HW,C]; a view when channels-last
  } else if (group_norm) {
    x = nn::group_norm(group_norm, x.transpose(1, 2)).transpose(1, 2);
  }
  const at::Tensor context = encoder_hidden_states.defined() ? encoder_hidden_states : x;
  x = linear(attention(linear(x, to_q), linear(context, to_k), linear(context, to_v), options.heads), out_proj);
  if (spatial) x = x.transpose(1, 2).reshape({b, c, h, w});
  if (options.residual_connection) x = x + hidden_states;
  return x;
}

}  // namespace genvis::nn
