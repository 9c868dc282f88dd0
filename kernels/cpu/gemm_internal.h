// Internals shared by the GEMM driver (gemm.cpp) and its ISA-specific micro-kernels
// (gemm_avx512.cpp, gemm_avx2.cpp), plus a test hook that forces a backend.
#pragma once
#include <cstdint>

namespace hone::kernels::detail {

// Packed layouts (the micro-kernel sees only these, whatever the transposes):
//   A block [mc, kc] -> ceil(mc/MR) micro-panels; panel p holds, for k = 0..kc-1, the MR values
//     op(A)[p*MR + r, k] at dst[p*MR*kc + k*MR + r] (rows past mc are zero).
//   B block [kc, nc] -> ceil(nc/NR) micro-panels; panel q holds, for k, the NR values
//     op(B)[k, q*NR + c] at dst[q*NR*kc + k*NR + c] (columns past nc are zero).
// pack_a packs rows [i0, i0+mc) and k in [k0, k0+kc) of op(A); pack_b packs k in [k0, k0+kc)
// and columns [j0, j0+nc) of op(B).
template <class T>
using PackAFn = void (*)(bool trans, const T* A, int64_t lda, int64_t i0, int64_t k0, int mc,
                         int kc, T* dst);
template <class T>
using PackBFn = void (*)(bool trans, const T* B, int64_t ldb, int64_t k0, int64_t j0, int kc,
                         int nc, T* dst);
// C[m, n] (m <= MR, n <= NR) = alpha * Ap . Bp + beta * C over kc steps; beta == 0 never reads C.
template <class T>
using MicroKernelFn = void (*)(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, int m,
                               int n, T alpha, T beta);

// One backend: tile shape, cache blocking, and the functions that use them.
template <class T>
struct GemmKernels {
  const char* name;
  int mr, nr;      // register tile of the micro-kernel
  int kc, mc, nc;  // cache blocks: mr x kc A sliver in L1, kc x nc B block in L2, mc x kc A in L3
  MicroKernelFn<T> kernel;
  PackAFn<T> pack_a;
  PackBFn<T> pack_b;
};

// Defined in gemm_avx512.cpp / gemm_avx2.cpp when those are compiled (HONE_HAVE_*_KERNELS);
// only called after the run-time CPU check.
const GemmKernels<float>& sgemm_avx512_kernels();
const GemmKernels<float>& sgemm_avx2_kernels();

// Test hook: force the sgemm backend ("avx512", "avx2", "portable"), or nullptr for automatic.
// Returns false (and changes nothing) when that backend is not available on this CPU/build.
bool sgemm_force_backend(const char* name);

}  // namespace hone::kernels::detail
