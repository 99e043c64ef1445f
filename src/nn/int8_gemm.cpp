#include "nn/int8_gemm.h"

#include "core/error.h"
#include "nn/cpu_kernels.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <type_traits>
#include <vector>

// GCC 12's own avx512fintrin.h (_mm512_undefined_*, behind the masked loads and conversions).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace genvis::nn::int8 {
namespace {

constexpr int64_t kRows = 32;  // rows of the left operand per block (two 16-row tiles)
constexpr int64_t kCols = 32;  // columns per block (two 16-column tiles)

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

std::optional<Kernel>& forced_kernel() {
  static std::optional<Kernel> k;
  return k;
}

// A block of the left operand: rows [m0, m0 + kRows) quantised, kp bytes each (zeros from k to kp
// and in rows past the matrix), and their scales. Either filled into `a` (a kRows x kp scratch
// block, rows >= `rows` already zeroed) or found elsewhere: returns where the block's rows are.
using FillRows = std::function<const int8_t*(int64_t m0, int64_t rows, int8_t* a, float* scale)>;

// ---- quantisation of activations (scalar and AVX-512 give the same bytes) ----

inline float to_float(float v) { return v; }
inline float to_float(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename T>
float amax_scalar(const T* x, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(to_float(x[i])));
  return m;
}

template <typename T>
void quantize_scalar(const T* x, int64_t n, float inv, int8_t* q) {
  for (int64_t i = 0; i < n; ++i)
    q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(to_float(x[i]) * inv), -127.0f, 127.0f));
}

#if GENVIS_HAS_AVX512_KERNELS
template <typename T>
GENVIS_AVX512 float amax_avx512(const T* x, int64_t n) {
  __m512 m = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) m = _mm512_max_ps(m, _mm512_abs_ps(cpu::load(x + i, cpu::tail_mask(n - i))));
  return _mm512_reduce_max_ps(m);
}

template <typename T>
GENVIS_AVX512 void quantize_avx512(const T* x, int64_t n, float inv, int8_t* q) {
  const __m512 s = _mm512_set1_ps(inv);
  const __m512i hi = _mm512_set1_epi32(127), lo = _mm512_set1_epi32(-127);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = cpu::tail_mask(n - i);
    __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(cpu::load(x + i, m), s));  // round half to even
    v = _mm512_max_epi32(_mm512_min_epi32(v, hi), lo);
    _mm512_mask_cvtepi32_storeu_epi8(q + i, m, v);
  }
}
#endif

// The AVX-512 forms of the quantisation and epilogues (bit-identical quantisation, the same
// arithmetic); the reference kernel keeps to the portable scalar code everywhere, so that this
// machine's tests run the code of CPUs without AVX-512 too.
bool simd() {
#if GENVIS_HAS_AVX512_KERNELS
  return kernel() != Kernel::Reference && cpu::avx512_supported();
#else
  return false;
#endif
}

template <typename T>
float amax(const T* x, int64_t n) {
#if GENVIS_HAS_AVX512_KERNELS
  if (simd()) return amax_avx512(x, n);
#endif
  return amax_scalar(x, n);
}

template <typename T>
void quantize(const T* x, int64_t n, float inv, int8_t* q) {
#if GENVIS_HAS_AVX512_KERNELS
  if (simd()) return quantize_avx512(x, n, inv, q);
#endif
  quantize_scalar(x, n, inv, q);
}

float inverse_scale(float amax) { return amax > 0.0f ? 127.0f / amax : 0.0f; }

// ---- the epilogue: y = c * (sa[r] * sw[n]) + bias[n] for a block of int32 sums c [kRows][kCols] ----

struct Epilogue {
  const float* sw;    // weight scales, at the block's first column
  const float* bias;  // at the block's first column, or null
};

inline void store_scalar(float* p, float v) { *p = v; }
inline void store_scalar(uint16_t* p, float v) { *p = c10::BFloat16(v).x; }

// y[r][j] = value(r, j) for a block's rows and columns.
template <typename T, typename F>
void store_rows(int64_t rows, int64_t cols, T* y, int64_t ldy, F&& value) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) store_scalar(y + r * ldy + j, value(r, j));
}

template <typename T>
void epilogue_scalar(const int32_t* c, int64_t rows, int64_t cols, const float* sa, const Epilogue& e, T* y,
                     int64_t ldy) {
  store_rows(rows, cols, y, ldy, [&](int64_t r, int64_t j) {
    const float v = static_cast<float>(c[r * kCols + j]) * (sa[r] * e.sw[j]);
    return e.bias ? v + e.bias[j] : v;
  });
}

#if GENVIS_HAS_AVX512_KERNELS
template <typename T>
GENVIS_AVX512 void epilogue_avx512(const int32_t* c, int64_t rows, int64_t cols, const float* sa, const Epilogue& e,
                                   T* y, int64_t ldy) {
  for (int64_t h = 0; h < kCols && h < cols; h += 16) {
    const __mmask16 m = cpu::tail_mask(cols - h);
    const __m512 sw = _mm512_maskz_loadu_ps(m, e.sw + h);
    const __m512 bias = e.bias ? _mm512_maskz_loadu_ps(m, e.bias + h) : _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; ++r) {
      const __m512 v = _mm512_cvtepi32_ps(_mm512_loadu_si512(c + r * kCols + h));
      __m512 out = _mm512_mul_ps(v, _mm512_mul_ps(_mm512_set1_ps(sa[r]), sw));
      if (e.bias) out = _mm512_add_ps(out, bias);
      cpu::store(y + r * ldy + h, out, m);
    }
  }
}

#endif

template <typename T>
void epilogue(const int32_t* c, int64_t rows, int64_t cols, const float* sa, const Epilogue& e, T* y, int64_t ldy) {
#if GENVIS_HAS_AVX512_KERNELS
  if (simd()) return epilogue_avx512(c, rows, cols, sa, e, y, ldy);
#endif
  epilogue_scalar(c, rows, cols, sa, e, y, ldy);
}

// GEGLU's epilogue on an interleaved block (columns 0-15 the value half h, 16-31 the matching gate
// half g): y[r][j] = h * gelu(g), gelu(g) = g/2 (1 + erf(g / sqrt 2)), 16 outputs per block.
template <typename T>
void epilogue_geglu_scalar(const int32_t* c, int64_t rows, int64_t cols, const float* sa, const Epilogue& e, T* y,
                           int64_t ldy) {
  store_rows(rows, cols, y, ldy, [&](int64_t r, int64_t j) {
    float h = static_cast<float>(c[r * kCols + j]) * (sa[r] * e.sw[j]);
    float g = static_cast<float>(c[r * kCols + 16 + j]) * (sa[r] * e.sw[16 + j]);
    if (e.bias) h += e.bias[j], g += e.bias[16 + j];
    return h * (0.5f * g * (1.0f + std::erf(g * 0.70710678118654752f)));
  });
}

#if GENVIS_HAS_AVX512_KERNELS
// erf(x) by Abramowitz and Stegun 7.1.26 (absolute error < 1.5e-7): 1 - poly(t) exp(-x^2),
// t = 1 / (1 + p |x|), odd in x.
GENVIS_AVX512 inline __m512 erf_avx512(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
  const __m512 e = cpu::exp_nonpositive(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
  const __m512 r = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));  // 1 - p e
  return _mm512_mask_sub_ps(r, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps(), r);
}

template <typename T>
GENVIS_AVX512 void epilogue_geglu_avx512(const int32_t* c, int64_t rows, int64_t cols, const float* sa,
                                         const Epilogue& e, T* y, int64_t ldy) {
  const __mmask16 m = cpu::tail_mask(cols);
  const __m512 sh = _mm512_loadu_ps(e.sw), sg = _mm512_loadu_ps(e.sw + 16);
  const __m512 bh = e.bias ? _mm512_loadu_ps(e.bias) : _mm512_setzero_ps();
  const __m512 bg = e.bias ? _mm512_loadu_ps(e.bias + 16) : _mm512_setzero_ps();
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), rsqrt2 = _mm512_set1_ps(0.70710678118654752f);
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 s = _mm512_set1_ps(sa[r]);
    const __m512 h = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(c + r * kCols)),
                                                 _mm512_mul_ps(s, sh)), bh);
    const __m512 g = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(c + r * kCols + 16)),
                                                 _mm512_mul_ps(s, sg)), bg);
    const __m512 gelu = _mm512_mul_ps(_mm512_mul_ps(half, g), _mm512_add_ps(one, erf_avx512(_mm512_mul_ps(g, rsqrt2))));
    cpu::store(y + r * ldy, _mm512_mul_ps(h, gelu), m);
  }
}
#endif

template <typename T>
void epilogue_geglu(const int32_t* c, int64_t rows, int64_t cols, const float* sa, const Epilogue& e, T* y,
                    int64_t ldy) {
#if GENVIS_HAS_AVX512_KERNELS
  if (simd()) return epilogue_geglu_avx512(c, rows, cols, sa, e, y, ldy);
#endif
  epilogue_geglu_scalar(c, rows, cols, sa, e, y, ldy);
}

// ---- int32 sums of one block: c [kRows][kCols] = a [kRows][kp] . columns [n0, n0 + 32) ----

// The reference: int32 sums in portable loops over the same packing as the SIMD kernels (b0: the
// block's first 16 columns, the next 16 at b0 + 16 kp), exact as theirs.
void block_reference(const int8_t* a, int64_t kp, const int8_t* b0, int32_t* c) {
  const int64_t groups = kp / 4;
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t half = 0; half < 2; ++half) {
      const int8_t* b = b0 + half * groups * 64;
      int32_t acc[16] = {};
      for (int64_t g = 0; g < groups; ++g) {
        const int8_t* x = a + r * kp + g * 4;
        const int8_t* w = b + g * 64;
        for (int j = 0; j < 16; ++j)
          acc[j] += x[0] * w[j * 4] + x[1] * w[j * 4 + 1] + x[2] * w[j * 4 + 2] + x[3] * w[j * 4 + 3];
      }
      std::copy(acc, acc + 16, c + r * kCols + half * 16);
    }
}

#if GENVIS_HAS_AVX512_KERNELS
// AVX-512 VNNI: vpdpbusd multiplies unsigned by signed bytes, so the activations go in as a + 128
// (a ^ 0x80) and 128 * col_sum is taken off afterwards. 8 rows x 32 columns of int32 sums in 16
// registers; the weights' 64-byte groups (16 columns x 4 k) load once per 8 rows.
GENVIS_AVX512VNNI void block_vnni(const int8_t* a, int64_t kp, const int8_t* b0, const int32_t* col_sum, int32_t* c) {
  const int64_t groups = kp / 4;
  const int8_t* b1 = b0 + groups * 64;
  const __m512i flip = _mm512_set1_epi32(static_cast<int>(0x80808080u));
  const __m512i corr0 = _mm512_slli_epi32(_mm512_loadu_si512(col_sum), 7);
  const __m512i corr1 = _mm512_slli_epi32(_mm512_loadu_si512(col_sum + 16), 7);
  for (int64_t r0 = 0; r0 < kRows; r0 += 8) {
    __m512i acc[8][2];
    _Pragma("GCC unroll 8") for (int r = 0; r < 8; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    const int8_t* ar = a + r0 * kp;
    for (int64_t g = 0; g < groups; ++g) {
      const __m512i w0 = _mm512_loadu_si512(b0 + g * 64), w1 = _mm512_loadu_si512(b1 + g * 64);
      _Pragma("GCC unroll 8") for (int r = 0; r < 8; ++r) {
        int32_t four;
        std::memcpy(&four, ar + r * kp + g * 4, 4);
        const __m512i x = _mm512_xor_si512(_mm512_set1_epi32(four), flip);
        acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, w0);
        acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, w1);
      }
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < 8; ++r) {
      _mm512_storeu_si512(c + (r0 + r) * kCols, _mm512_sub_epi32(acc[r][0], corr0));
      _mm512_storeu_si512(c + (r0 + r) * kCols + 16, _mm512_sub_epi32(acc[r][1], corr1));
    }
  }
}

// AMX-INT8: tiles 0-3 sum a 2 x 2 block of 16 x 16 int32 results, 4-5 hold the rows, 6-7 the two
// 16-column groups of weights (16 rows of 64 bytes = 64 k x 16 columns). Rows past `rows` are
// zeros in `a` and cost a tile product only when rows > 16.
GENVIS_AMX_INT8 void block_amx(const int8_t* a, int64_t kp, int64_t rows, const int8_t* b0, int32_t* c) {
  const int8_t* b1 = b0 + kp * 16;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  if (rows > 16) {
    for (int64_t kk = 0; kk < kp / 64; ++kk) {
      _tile_loadd(4, a + kk * 64, kp);
      _tile_loadd(5, a + 16 * kp + kk * 64, kp);
      _tile_loadd(6, b0 + kk * 1024, 64);
      _tile_loadd(7, b1 + kk * 1024, 64);
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
  } else {
    for (int64_t kk = 0; kk < kp / 64; ++kk) {
      _tile_loadd(4, a + kk * 64, kp);
      _tile_loadd(6, b0 + kk * 1024, 64);
      _tile_loadd(7, b1 + kk * 1024, 64);
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
    }
  }
  _tile_stored(0, c, kCols * 4);
  _tile_stored(1, c + 16, kCols * 4);
  _tile_stored(2, c + 16 * kCols, kCols * 4);
  _tile_stored(3, c + 16 * kCols + 16, kCols * 4);
}
#endif

template <typename T>
class AlignedBuffer {
public:
  explicit AlignedBuffer(size_t n)
      : p_(static_cast<T*>(std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64))) {
    if (!p_) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(p_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  T* data() { return p_; }

private:
  T* p_;
};

// y [m, n] (row-major, ldy = n) from m rows that `fill` produces, block by block; blocks of rows and
// ranges of column blocks are shared out over the threads. w.geglu_half > 0: GEGLU's interleaved
// weight, y [m, w.geglu_half] gets h * gelu(g).
template <typename T>
void run(int64_t m, const PackedWeight& w, const FillRows& fill, const float* bias, T* y) {
  const Kernel kern = kernel();
  const int64_t mblocks = (m + kRows - 1) / kRows, cblocks = w.np / kCols;
  // Split the columns too when there are few row blocks (short sequences, small batches).
  int64_t nsplit = 1;
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  while (mblocks * nsplit < 2 * threads && nsplit * 2 <= cblocks) nsplit *= 2;
  const auto* packed = w.packed.data_ptr<int8_t>();
  const auto* col_sum = w.col_sum.data_ptr<int32_t>();
  const auto* sw = w.scale.data_ptr<float>();
  cpu::parallel_for(mblocks * nsplit, 1, [&](int64_t begin, int64_t end) {
    // 64-byte aligned: a tile row that straddles two cache lines costs two loads.
    AlignedBuffer<int8_t> a(static_cast<size_t>(kRows * w.kp));
    AlignedBuffer<int32_t> c(static_cast<size_t>(kRows * kCols));
    float sa[kRows];
#if GENVIS_HAS_AVX512_KERNELS
    if (kern == Kernel::Amx) cpu::tile_config_16x64();
#endif
    for (int64_t t = begin; t < end; ++t) {
      const int64_t m0 = (t / nsplit) * kRows, rows = std::min(kRows, m - m0), part = t % nsplit;
      const int64_t c0 = cblocks * part / nsplit, c1 = cblocks * (part + 1) / nsplit;
      if (rows < kRows) std::memset(a.data() + rows * w.kp, 0, static_cast<size_t>((kRows - rows) * w.kp));
      std::fill(sa, sa + kRows, 0.0f);
      const int8_t* ab = fill(m0, rows, a.data(), sa);
      for (int64_t cb = c0; cb < c1; ++cb) {
        const int64_t n0 = cb * kCols;
        switch (kern) {
#if GENVIS_HAS_AVX512_KERNELS
          case Kernel::Amx:
            block_amx(ab, w.kp, rows, packed + n0 * w.kp, c.data());
            break;
          case Kernel::Vnni:
            block_vnni(ab, w.kp, packed + n0 * w.kp, col_sum + n0, c.data());
            break;
#endif
          default:
            block_reference(ab, w.kp, packed + n0 * w.kp, c.data());
        }
        const Epilogue e{sw + n0, bias ? bias + n0 : nullptr};
        if (const int64_t half = w.geglu_half; half > 0)
          epilogue_geglu(c.data(), rows, std::min<int64_t>(16, half - cb * 16), sa, e, y + m0 * half + cb * 16, half);
        else
          epilogue(c.data(), rows, std::min(kCols, w.n - n0), sa, e, y + m0 * w.n + n0, w.n);
      }
    }
#if GENVIS_HAS_AVX512_KERNELS
    if (kern == Kernel::Amx) cpu::tile_release();
#endif
  });
  (void)col_sum;
}

void check_input(const at::Tensor& x, int64_t k, const char* what) {
  if (!x.device().is_cpu()) throw UsageError(std::string("int8 ") + what + ": CPU tensors only");
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16)
    throw UsageError(std::string("int8 ") + what + ": input must be f32 or bf16, not " + std::string(c10::toString(x.scalar_type())));
  if (x.dim() < 1 || x.size(-1) != k)
    throw UsageError(std::string("int8 ") + what + ": input has " + std::to_string(x.dim() ? x.size(-1) : 0) +
                     " features, the weight takes " + std::to_string(k));
}

at::Tensor bias_f32(const at::Tensor& bias, int64_t n) {
  if (!bias.defined()) return {};
  if (bias.numel() != n) throw UsageError("int8: bias has " + std::to_string(bias.numel()) + " values for " + std::to_string(n) + " outputs");
  return bias.to(at::kCPU, at::kFloat).contiguous();
}

template <typename F>
void by_dtype(const at::Tensor& x, F&& f) {
  if (x.scalar_type() == at::kFloat) f(float{});
  else f(uint16_t{});
}

template <typename T>
T* data_of(const at::Tensor& t) {
  if constexpr (std::is_same_v<T, float>) return t.data_ptr<float>();
  else return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
}

}  // namespace

PackedWeight pack_weight(const at::Tensor& q_in, const at::Tensor& scale_in) {
  if (q_in.dim() != 2 || q_in.scalar_type() != at::kChar)
    throw UsageError("int8 weight: expected int8 [out, in], got " + std::string(c10::toString(q_in.scalar_type())) + " " +
                     std::to_string(q_in.dim()) + "-D");
  if (scale_in.dim() != 1 || scale_in.size(0) != q_in.size(0))
    throw UsageError("int8 weight: expected one scale per output channel (" + std::to_string(q_in.size(0)) + "), got " +
                     std::to_string(scale_in.numel()));
  PackedWeight w;
  w.n = q_in.size(0);
  w.k = q_in.size(1);
  w.kp = round_up(std::max<int64_t>(w.k, 1), 64);
  w.np = round_up(std::max<int64_t>(w.n, 1), kCols);
  const at::Tensor values = q_in.to(at::kCPU).contiguous();
  w.scale = at::zeros({w.np}, at::TensorOptions().dtype(at::kFloat));
  w.scale.narrow(0, 0, w.n).copy_(scale_in.to(at::kCPU, at::kFloat));
  w.packed = at::zeros({w.np / 16, w.kp / 4, 16, 4}, at::TensorOptions().dtype(at::kChar));
  w.col_sum = at::zeros({w.np}, at::TensorOptions().dtype(at::kInt));
  const auto* q = values.data_ptr<int8_t>();
  auto* p = w.packed.data_ptr<int8_t>();
  auto* cs = w.col_sum.data_ptr<int32_t>();
  for (int64_t i = 0; i < w.n; ++i) {
    int32_t sum = 0;
    for (int64_t j = 0; j < w.k; ++j) {
      const int8_t v = q[i * w.k + j];
      p[((i / 16) * (w.kp / 4) + j / 4) * 64 + (i % 16) * 4 + j % 4] = v;
      sum += v;
    }
    cs[i] = sum;
  }
  return w;
}

at::Tensor unpack(const PackedWeight& w) {
  // [np/16][kp/4][16][4] -> [np/16][16][kp/4][4] -> [np, kp] -> [n, k]
  return w.packed.permute({0, 2, 1, 3}).reshape({w.np, w.kp}).narrow(0, 0, w.n).narrow(1, 0, w.k).contiguous();
}

PackedWeight quantize_weight(const at::Tensor& weight) {
  if (weight.dim() != 2 || !at::isFloatingType(weight.scalar_type()))
    throw UsageError("int8 quantisation: expected a floating [out, in] weight, got " + std::to_string(weight.dim()) + "-D " +
                     std::string(c10::toString(weight.scalar_type())));
  const at::Tensor w = weight.detach().to(at::kCPU, at::kFloat);
  const at::Tensor amax = w.abs().amax(1);
  const at::Tensor inv = at::where(amax > 0, 127.0f / amax, at::zeros_like(amax));
  const at::Tensor q = (w * inv.unsqueeze(1)).round().clamp(-127, 127).to(at::kChar);
  return pack_weight(q, amax / 127.0f);
}

namespace {

// x [m, k] quantised row by row into [round_up(m, kRows), kp] int8 (zero padding) and [m] scales.
struct QuantizedRows {
  at::Tensor q, scale;
};

// `reuse` is the previous call's buffers: taken when the sizes match (a fresh allocation of this
// size is a fresh mapping, whose page faults cost as much as the quantisation).
template <typename T>
QuantizedRows quantize_rows(const T* x, int64_t m, int64_t k, int64_t kp, QuantizedRows reuse) {
  QuantizedRows out;
  const int64_t mp = round_up(std::max<int64_t>(m, 1), kRows);
  if (reuse.q.defined() && reuse.q.size(0) == mp && reuse.q.size(1) == kp && reuse.q.use_count() == 1 &&
      reuse.scale.use_count() == 1) {
    out = std::move(reuse);
    out.scale.zero_();
  } else {
    out.q = at::empty({mp, kp}, at::TensorOptions().dtype(at::kChar));
    out.scale = at::zeros({mp}, at::TensorOptions().dtype(at::kFloat));
  }
  auto* q = out.q.data_ptr<int8_t>();
  auto* sc = out.scale.data_ptr<float>();
  std::memset(q + m * kp, 0, static_cast<size_t>((mp - m) * kp));
  cpu::parallel_for(m, 64, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* row = x + r * k;
      const float mx = amax(row, k);
      quantize(row, k, inverse_scale(mx), q + r * kp);
      std::memset(q + r * kp + k, 0, static_cast<size_t>(kp - k));
      sc[r] = mx / 127.0f;
    }
  });
  return out;
}

// The last quantised input of this thread: q, k and v projections (and GEGLU's halves) read the
// same activations, which are then quantised once. The entry holds a reference to the input, so
// its memory cannot be reused by another tensor while cached; the version counter catches
// in-place changes.
struct InputCache {
  at::Tensor x;
  uint32_t version = 0;
  int64_t kp = 0;
  QuantizedRows rows;
};
thread_local InputCache input_cache;

// y [..., outputs] for x [..., k]; bias f32 in the packing's column order (or undefined).
at::Tensor linear_rows(const at::Tensor& x_in, const PackedWeight& w, const at::Tensor& bias, int64_t outputs) {
  const at::Tensor x = x_in.contiguous();
  const int64_t m = x.numel() / std::max<int64_t>(w.k, 1);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = outputs;
  at::Tensor y = at::empty(shape, x.options());
  InputCache& cache = input_cache;
  const bool hit = cache.x.defined() && cache.x.unsafeGetTensorImpl() == x.unsafeGetTensorImpl() &&
                   cache.version == x._version() && cache.kp == w.kp;
  by_dtype(x, [&](auto tag) {
    using T = decltype(tag);
    if (!hit) {
      QuantizedRows buffers = std::move(cache.rows);
      cache = InputCache{};  // drop the old input before keeping the new one
      cache.rows = quantize_rows(data_of<T>(x), m, w.k, w.kp, std::move(buffers));
      cache.x = x;
      cache.version = x._version();
      cache.kp = w.kp;
    }
    const int8_t* q = cache.rows.q.data_ptr<int8_t>();
    const float* sc = cache.rows.scale.data_ptr<float>();
    const int64_t kp = w.kp;
    const FillRows fill = [&](int64_t m0, int64_t rows, int8_t*, float* sa) {
      std::copy(sc + m0, sc + m0 + rows, sa);
      return q + m0 * kp;
    };
    run<T>(m, w, fill, bias.defined() ? bias.data_ptr<float>() : nullptr, data_of<T>(y));
  });
  return y;
}

// GEGLU's interleaving: packed row b * 32 + i (i < 16) is value row b * 16 + i, row b * 32 + 16 + i
// its gate row half + b * 16 + i; -1 past the half.
std::vector<int64_t> geglu_order(int64_t half) {
  const int64_t blocks = (half + 15) / 16;
  std::vector<int64_t> order(static_cast<size_t>(blocks * 32), -1);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t i = 0; i < 16 && b * 16 + i < half; ++i) {
      order[b * 32 + i] = b * 16 + i;
      order[b * 32 + 16 + i] = half + b * 16 + i;
    }
  return order;
}

// rows [n, ...] -> [order.size(), ...] taking row order[i] (zeros for -1).
at::Tensor reorder_rows(const at::Tensor& rows, const std::vector<int64_t>& order) {
  std::vector<int64_t> shape(rows.sizes().begin(), rows.sizes().end());
  shape[0] = static_cast<int64_t>(order.size());
  at::Tensor out = at::zeros(shape, rows.options());
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i] >= 0) out[static_cast<int64_t>(i)].copy_(rows[order[i]]);
  return out;
}

}  // namespace

at::Tensor linear(const at::Tensor& x, const PackedWeight& w, const at::Tensor& bias) {
  RECORD_FUNCTION("genvis::int8_linear", std::vector<c10::IValue>({x}));
  if (w.geglu_half > 0) throw UsageError("int8 linear: the weight is packed for GEGLU (use linear_geglu)");
  check_input(x, w.k, "linear");
  return linear_rows(x, w, bias_f32(bias, w.n), w.n);
}

PackedWeight interleave_geglu(const PackedWeight& w) {
  if (w.geglu_half > 0) return w;
  if (w.n % 2 != 0) throw UsageError("int8 GEGLU: the projection has an odd number of outputs (" + std::to_string(w.n) + ")");
  const std::vector<int64_t> order = geglu_order(w.n / 2);
  PackedWeight out = pack_weight(reorder_rows(unpack(w), order), reorder_rows(w.scale.narrow(0, 0, w.n), order));
  out.geglu_half = w.n / 2;
  return out;
}

at::Tensor linear_geglu(const at::Tensor& x, const PackedWeight& w, const at::Tensor& bias) {
  RECORD_FUNCTION("genvis::int8_linear_geglu", std::vector<c10::IValue>({x}));
  if (w.geglu_half <= 0) throw UsageError("int8 GEGLU: the weight is not packed for GEGLU (interleave_geglu)");
  check_input(x, w.k, "GEGLU");
  const at::Tensor b = bias_f32(bias, 2 * w.geglu_half);
  return linear_rows(x, w, b.defined() ? reorder_rows(b, geglu_order(w.geglu_half)) : b, w.geglu_half);
}

void clear_input_cache() {
  input_cache.x = at::Tensor();  // (the buffers stay for the next input of the same size)
  input_cache.version = 0;
}

at::Tensor conv_weight_rows(const at::Tensor& weight) {
  if (weight.dim() != 4) throw UsageError("int8 conv: expected a [out, in, kh, kw] weight");
  return weight.permute({0, 2, 3, 1}).reshape({weight.size(0), -1});
}

at::Tensor conv2d(const at::Tensor& x_in, const PackedWeight& w, const at::Tensor& bias_in, const ConvGeometry& g) {
  RECORD_FUNCTION("genvis::int8_conv2d", std::vector<c10::IValue>({x_in}));
  if (x_in.dim() != 4) throw UsageError("int8 conv: expected a [B, C, H, W] input");
  const int64_t batch = x_in.size(0), ch = x_in.size(1), h = x_in.size(2), wd = x_in.size(3);
  if (ch * g.kh * g.kw != w.k)
    throw UsageError("int8 conv: input has " + std::to_string(ch) + " channels, the weight takes " +
                     std::to_string(w.k / std::max<int64_t>(g.kh * g.kw, 1)));
  const int64_t oh = (h + 2 * g.pad_h - g.kh) / g.stride_h + 1, ow = (wd + 2 * g.pad_w - g.kw) / g.stride_w + 1;
  if (oh <= 0 || ow <= 0) throw UsageError("int8 conv: the input is smaller than the kernel");
  const at::Tensor x = x_in.permute({0, 2, 3, 1}).contiguous();  // [B, H, W, C]: free for channels-last inputs
  check_input(x, ch, "conv");
  at::Tensor y = at::empty({batch, oh, ow, w.n}, x.options());
  const at::Tensor bias = bias_f32(bias_in, w.n);
  at::Tensor xq = at::empty(x.sizes(), x.options().dtype(at::kChar));
  auto* q = xq.data_ptr<int8_t>();
  by_dtype(x, [&](auto tag) {
    using T = decltype(tag);
    const T* xd = data_of<T>(x);
    const int64_t total = x.numel(), chunk = 1 << 16, chunks = (total + chunk - 1) / chunk;
    std::vector<float> part(static_cast<size_t>(chunks));
    cpu::parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) part[i] = amax(xd + i * chunk, std::min(chunk, total - i * chunk));
    });
    const float mx = chunks ? *std::max_element(part.begin(), part.end()) : 0.0f;
    const float inv = inverse_scale(mx), scale = mx / 127.0f;
    cpu::parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) quantize(xd + i * chunk, std::min(chunk, total - i * chunk), inv, q + i * chunk);
    });
    const int64_t kp = w.kp, k = w.k;
    const FillRows fill = [&](int64_t m0, int64_t rows, int8_t* a, float* sa) {
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t idx = m0 + r, b = idx / (oh * ow), oy = (idx / ow) % oh, ox = idx % ow;
        int8_t* dst = a + r * kp;
        for (int64_t ky = 0; ky < g.kh; ++ky) {
          const int64_t iy = oy * g.stride_h - g.pad_h + ky;
          for (int64_t kx = 0; kx < g.kw; ++kx, dst += ch) {
            const int64_t ix = ox * g.stride_w - g.pad_w + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) std::memset(dst, 0, static_cast<size_t>(ch));
            else std::memcpy(dst, q + ((b * h + iy) * wd + ix) * ch, static_cast<size_t>(ch));
          }
        }
        std::memset(a + r * kp + k, 0, static_cast<size_t>(kp - k));
        sa[r] = scale;
      }
      return a;
    };
    run<T>(batch * oh * ow, w, fill, bias.defined() ? bias.data_ptr<float>() : nullptr, data_of<T>(y));
  });
  return y.permute({0, 3, 1, 2});
}

bool supported(Kernel k) {
  switch (k) {
#if GENVIS_HAS_AVX512_KERNELS
    case Kernel::Amx:
      return cpu::amx_int8_supported();
    case Kernel::Vnni:
      return cpu::avx512vnni_supported();
#else
    case Kernel::Amx:
    case Kernel::Vnni:
      return false;
#endif
    case Kernel::Reference:
      return true;
  }
  return false;
}

std::string kernel_name(Kernel k) {
  switch (k) {
    case Kernel::Amx:
      return "amx-int8";
    case Kernel::Vnni:
      return "avx512-vnni";
    case Kernel::Reference:
      return "reference";
  }
  return "?";
}

void set_kernel(std::optional<Kernel> k) {
  if (k && !supported(*k)) throw UsageError("int8 kernel " + kernel_name(*k) + " is not supported by this CPU");
  forced_kernel() = k;
}

Kernel kernel() {
  if (forced_kernel()) return *forced_kernel();
  static const Kernel chosen = [] {
    if (const char* env = std::getenv("GENVIS_INT8_KERNEL"); env && *env) {
      for (Kernel k : {Kernel::Reference, Kernel::Vnni, Kernel::Amx})
        if (kernel_name(k) == env || (k == Kernel::Vnni && std::string(env) == "vnni") ||
            (k == Kernel::Amx && std::string(env) == "amx")) {
          if (!supported(k)) throw UsageError(std::string("GENVIS_INT8_KERNEL=") + env + ": not supported by this CPU");
          return k;
        }
      throw UsageError(std::string("GENVIS_INT8_KERNEL=") + env + ": expected reference, vnni or amx");
    }
    if (supported(Kernel::Amx)) return Kernel::Amx;
    if (supported(Kernel::Vnni)) return Kernel::Vnni;
    return Kernel::Reference;
  }();
  return chosen;
}

}  // namespace genvis::nn::int8
#pragma GCC diagnostic pop
