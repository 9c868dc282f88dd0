// AVX2 + FMA SGEMM micro-kernel (compiled with -mavx2 -mfma; only called after cpu_has_avx2()).
//
// Register tile MR x NR = 6 x 16: two ymm accumulators per row of C (12 of the 16 ymm
// registers), two B loads and six broadcasts per k step -- the classic Haswell BLIS shape.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/gemm_internal.h"

namespace hone::kernels::detail {
namespace {  // everything here is compiled for AVX2: keep it out of other translation units

constexpr int kMR = 6;
constexpr int kNR = 16;

void micro_kernel(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, int m,
                  int n, float alpha, float beta) {
  __m256 c0[kMR], c1[kMR];
  for (int r = 0; r < kMR; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(Bp), b1 = _mm256_load_ps(Bp + 8);
#pragma GCC unroll 8
    for (int r = 0; r < kMR; ++r) {
      const __m256 a = _mm256_broadcast_ss(Ap + r);
      c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
    }
    Ap += kMR;
    Bp += kNR;
  }
  alignas(32) float tile[kMR][kNR];
  for (int r = 0; r < kMR; ++r) {
    _mm256_store_ps(tile[r], c0[r]);
    _mm256_store_ps(tile[r] + 8, c1[r]);
  }
  for (int r = 0; r < m; ++r) {
    float* cr = C + r * ldc;
    if (beta == 0.0f)
      for (int c = 0; c < n; ++c) cr[c] = alpha * tile[r][c];
    else
      for (int c = 0; c < n; ++c) cr[c] = alpha * tile[r][c] + beta * cr[c];
  }
}

void pack_a(bool trans, const float* A, int64_t lda, int64_t i0, int64_t k0, int mc, int kc,
            float* dst) {
  for (int p = 0; p < mc; p += kMR, dst += kMR * kc) {
    const int rows = std::min(kMR, mc - p);
    for (int k = 0; k < kc; ++k)
      for (int r = 0; r < kMR; ++r)
        dst[k * kMR + r] = r >= rows ? 0.0f
                           : trans   ? A[(k0 + k) * lda + i0 + p + r]
                                     : A[(i0 + p + r) * lda + k0 + k];
  }
}

void pack_b(bool trans, const float* B, int64_t ldb, int64_t k0, int64_t j0, int kc, int nc,
            float* dst) {
  for (int q = 0; q < nc; q += kNR, dst += kNR * kc) {
    const int cols = std::min(kNR, nc - q);
    for (int k = 0; k < kc; ++k)
      for (int c = 0; c < kNR; ++c)
        dst[k * kNR + c] = c >= cols ? 0.0f
                           : trans   ? B[(j0 + q + c) * ldb + k0 + k]
                                     : B[(k0 + k) * ldb + j0 + q + c];
  }
}

}  // namespace

const GemmKernels<float>& sgemm_avx2_kernels() {
  static const GemmKernels<float> ks = {"avx2", kMR, kNR, 256, 1536, 256,
                                        &micro_kernel, &pack_a, &pack_b};
  return ks;
}

}  // namespace hone::kernels::detail
