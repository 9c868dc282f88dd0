// AVX-512 SGEMM micro-kernel and packing (compiled with -mavx512f/bw/vl/dq -mfma; only called
// after cpu_has_avx512()).
//
// Register tile MR x NR = 12 x 32: each of the 12 rows of C holds two zmm accumulators (24 in
// all), the packed B sliver gives two zmm loads per k and the packed A sliver 12 broadcasts, so a
// k step is 24 FMAs for 14 loads -- enough FMAs to hide the FMA latency (4 cycles x 2 ports = 8
// independent chains needed) and few enough loads for the two load ports. C rows are contiguous
// in row-major C, so the tile is stored with plain (masked at the edges) vector stores.
// GCC 12 flags _mm512_undefined_ps() inside the shuffle intrinsics as "maybe uninitialized".
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/gemm_internal.h"

namespace hone::kernels::detail {
namespace {

constexpr int kMR = 12;
constexpr int kNR = 32;

inline __mmask16 tail_mask(int n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

template <int MR>
void micro_kernel(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, int m,
                  int n, float alpha, float beta) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    c0[r] = _mm512_setzero_ps();
    c1[r] = _mm512_setzero_ps();
  }
  // Warm C's lines while the K loop runs, so the final read-modify-write does not stall.
  for (int r = 0; r < m; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(Bp);
    const __m512 b1 = _mm512_load_ps(Bp + 16);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(Ap[r]);
      c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
    }
    Ap += MR;
    Bp += kNR;
  }

  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __mmask16 m0 = tail_mask(n), m1 = tail_mask(n - 16 > 0 ? n - 16 : 0);
  if (n == kNR && m == MR) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      float* cr = C + r * ldc;
      __m512 x0 = _mm512_mul_ps(c0[r], va), x1 = _mm512_mul_ps(c1[r], va);
      if (beta != 0.0f) {
        x0 = _mm512_fmadd_ps(_mm512_loadu_ps(cr), vb, x0);
        x1 = _mm512_fmadd_ps(_mm512_loadu_ps(cr + 16), vb, x1);
      }
      _mm512_storeu_ps(cr, x0);
      _mm512_storeu_ps(cr + 16, x1);
    }
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if (r >= m) break;
      float* cr = C + r * ldc;
      __m512 x0 = _mm512_mul_ps(c0[r], va), x1 = _mm512_mul_ps(c1[r], va);
      if (beta != 0.0f) {
        x0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, cr), vb, x0);
        x1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, cr + 16), vb, x1);
      }
      _mm512_mask_storeu_ps(cr, m0, x0);
      _mm512_mask_storeu_ps(cr + 16, m1, x1);
    }
  }
}

// In-register transpose of a 16x16 float block (rows r[0..15] -> columns).
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; ++g) {
    r[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
    t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
    r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
  }
}

// Gathers `rows` (<= 16) source rows, each contiguous in k, into k-major packed rows of `width`
// floats: dst[k*width + r] = src[r*ld + k] for k < kc; lanes r >= rows become zero. This is the
// packing of non-transposed A and of transposed B, done 16x16 at a time in registers.
inline void pack_transposed(const float* src, int64_t ld, int rows, int kc, float* dst,
                            int width, __mmask16 store_mask) {
  for (int k = 0; k < kc; k += 16) {
    const int kn = std::min(16, kc - k);
    const __mmask16 lm = tail_mask(kn);
    __m512 r[16];
    for (int i = 0; i < 16; ++i)
      r[i] = i < rows ? _mm512_maskz_loadu_ps(lm, src + i * ld + k) : _mm512_setzero_ps();
    transpose16(r);
    for (int i = 0; i < kn; ++i) _mm512_mask_storeu_ps(dst + (k + i) * width, store_mask, r[i]);
  }
}

// Copies rows of a block whose k-th row is contiguous in memory (transposed A, plain B) into
// packed panels of `width` floats: dst[(c / width) * width * kc + k * width + c % width] =
// src[k * ld + c] for c < cols, zero padded. k is the outer loop so each source row is read
// sequentially (rows are often far apart: a panel-by-panel walk would hop pages every 128 bytes
// and defeat the hardware prefetcher).
inline void pack_rows(const float* src, int64_t ld, int cols, int kc, float* dst, int width) {
  const size_t panel = size_t(width) * kc;
  for (int k = 0; k < kc; ++k) {
    const float* s = src + k * ld;
    float* d = dst + k * width;
    for (int c = 0; c < cols; c += width, d += panel) {
      for (int h = 0; h < width; h += 16) {
        const int left = cols - c - h;
        const __m512 v = _mm512_maskz_loadu_ps(tail_mask(left > 0 ? left : 0), s + c + h);
        _mm512_mask_storeu_ps(d + h, tail_mask(width - h), v);
      }
    }
  }
}

template <int MR>
void pack_a(bool trans, const float* A, int64_t lda, int64_t i0, int64_t k0, int mc, int kc,
            float* dst) {
  if (trans)  // A stored [K, M]: the MR values of one k are already contiguous.
    return pack_rows(A + k0 * lda + i0, lda, mc, kc, dst, MR);
  for (int p = 0; p < mc; p += MR, dst += MR * kc)
    pack_transposed(A + (i0 + p) * lda + k0, lda, std::min(MR, mc - p), kc, dst, MR,
                    tail_mask(MR));
}

static_assert(kNR % 16 == 0, "B rows are whole vectors");

void pack_b(bool trans, const float* B, int64_t ldb, int64_t k0, int64_t j0, int kc, int nc,
            float* dst) {
  if (!trans) return pack_rows(B + k0 * ldb + j0, ldb, nc, kc, dst, kNR);
  // B stored [N, K]: transpose 16 columns of op(B) at a time.
  for (int q = 0; q < nc; q += kNR, dst += kNR * kc) {
    const int cols = std::min(kNR, nc - q);
    for (int h = 0; h < kNR; h += 16)
      pack_transposed(B + (j0 + q + h) * ldb + k0, ldb, std::max(0, std::min(16, cols - h)), kc,
                      dst + h, kNR, __mmask16(0xFFFF));
  }
}

}  // namespace

const GemmKernels<float>& sgemm_avx512_kernels() {
  // Blocking after BLIS's Skylake-X sgemm (MR 32, NR 12, MC 480, KC 384) with the roles of A and
  // B swapped, since our vectors run along N: a 12 x 384 A sliver (18 KB) stays in the 48 KB L1
  // while 32 x 384 B slivers stream from a 384 x 480 packed B block (720 KB) in the 2 MB L2;
  // the packed A block (up to 3072 x 384, 4.5 MB) lives in L3. Measured: KC 256/512 and
  // NC 320/640/768 were no better.
  static const GemmKernels<float> ks = {"avx512", kMR, kNR, 384, 3072, 480,
                                        &micro_kernel<kMR>, &pack_a<kMR>, &pack_b};
  return ks;
}

}  // namespace hone::kernels::detail
