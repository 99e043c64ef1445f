// Internal to src/nn: what the hand-written CPU kernels (attention.cpp, group_norm_silu.cpp) share.
//
// 1. parallel_for. Pitfall: at::parallel_for cannot be used in genvis. With libtorch's OpenMP
//    backend its body is a header template with `#pragma omp parallel`, which needs -fopenmp in
//    the calling translation unit; genvis is built without it, so the loop runs on one thread.
// 2. AVX-512 helpers. The library is built for baseline x86-64, so each kernel function carries
//    GENVIS_AVX512 / GENVIS_AVX512BF16 and is called only after a runtime check
//    (avx512_supported() and friends).
#pragma once
#include <cstdint>
#include <functional>

namespace genvis::nn::cpu {

// fn(begin, end) over [0, n), split into at::get_num_threads() contiguous ranges; the calling
// thread takes the first, persistent pool threads the others; returns when all are done and
// rethrows the first exception. Serial when n < 2 * grain, when one thread is configured, and
// inside another parallel_for.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace genvis::nn::cpu

#if defined(__x86_64__) && defined(__GNUC__)
#define GENVIS_HAS_AVX512_KERNELS 1
#include <immintrin.h>

#define GENVIS_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define GENVIS_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

namespace genvis::nn::cpu {

inline bool avx512_supported() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return ok;
}
inline bool avx512bf16_supported() {
  static const bool ok = avx512_supported() && __builtin_cpu_supports("avx512bf16");
  return ok;
}

// exp(x) for x <= 0: 2^n * 2^f with |f| <= 1/2 and a degree-6 polynomial for 2^f (relative
// error ~1e-6; underflows to 0 below -100).
GENVIS_AVX512 inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-100.0f));
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// x * sigmoid(x), from exp(-|x|) so that nothing overflows.
GENVIS_AVX512 inline __m512 silu(__m512 x) {
  const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 num = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), e, one);
  return _mm512_mul_ps(x, _mm512_div_ps(num, _mm512_add_ps(one, e)));
}

// 16 bf16 <-> 16 f32 (masked: lanes outside `m` read as 0 and are not written). Round to nearest
// even, as c10::BFloat16; NaN stays NaN.
GENVIS_AVX512 inline __m512 load_bf16(const uint16_t* p, __mmask16 m = 0xFFFF) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
GENVIS_AVX512 inline void store_bf16(uint16_t* p, __m512 v, __mmask16 m = 0xFFFF) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_set1_epi32(0x7FC0));
  _mm256_mask_storeu_epi16(p, m, _mm512_cvtepi32_epi16(rounded));
}
GENVIS_AVX512 inline __m512 load_f32(const float* p, __mmask16 m = 0xFFFF) { return _mm512_maskz_loadu_ps(m, p); }
GENVIS_AVX512 inline void store_f32(float* p, __m512 v, __mmask16 m = 0xFFFF) { _mm512_mask_storeu_ps(p, m, v); }
// The same by storage type, for kernels templated on f32 / bf16 (bf16 as its 16 bits).
GENVIS_AVX512 inline __m512 load(const float* p, __mmask16 m) { return load_f32(p, m); }
GENVIS_AVX512 inline __m512 load(const uint16_t* p, __mmask16 m) { return load_bf16(p, m); }
GENVIS_AVX512 inline void store(float* p, __m512 v, __mmask16 m) { store_f32(p, v, m); }
GENVIS_AVX512 inline void store(uint16_t* p, __m512 v, __mmask16 m) { store_bf16(p, v, m); }

inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// 3. AMX (Intel Sapphire Rapids and later): bf16 tile matrix products. A kernel carrying
// GENVIS_AMX_BF16 runs only after amx_bf16_supported(), and each thread configures its tiles
// (tile_config_16x64) before and releases them (_tile_release) after.
#define GENVIS_AMX_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16")))

// CPUID reports AMX-TILE and AMX-BF16, the kernel grants this process the tile state
// (arch_prctl ARCH_REQ_XCOMP_PERM), and GENVIS_NO_AMX is not set in the environment (for
// comparisons with the AVX-512 kernels). Decided once per process.
bool amx_bf16_supported();
// The same for AMX-INT8 (`tdpbssd`; CPUID AMX-TILE + AMX-INT8, tile permission, GENVIS_NO_AMX unset).
bool amx_int8_supported();
// AVX-512 VNNI (`vpdpbusd`): Intel Ice Lake and later, AMD Zen 4 and later.
inline bool avx512vnni_supported() {
  static const bool ok = avx512_supported() && __builtin_cpu_supports("avx512vnni");
  return ok;
}
#define GENVIS_AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define GENVIS_AMX_INT8 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,amx-tile,amx-int8")))

// Loads a tile configuration with all 8 tiles of 16 rows x 64 bytes (palette 1).
GENVIS_AMX_BF16 inline void tile_config_16x64() {
  alignas(64) uint8_t config[64] = {};
  config[0] = 1;  // palette
  for (int t = 0; t < 8; ++t) {
    config[16 + 2 * t] = 64;  // bytes per row (little-endian u16)
    config[48 + t] = 16;      // rows
  }
  // (GCC 12's _tile_loadconfig tells the compiler it reads 8 bytes, so the stores above could be
  // dropped as dead: the operand here is the whole 64-byte block.)
  __asm__ volatile("ldtilecfg %0" : : "m"(*reinterpret_cast<const uint8_t(*)[64]>(config)));
}
GENVIS_AMX_BF16 inline void tile_release() { _tile_release(); }

}  // namespace genvis::nn::cpu
#else
#define GENVIS_HAS_AVX512_KERNELS 0
#endif
