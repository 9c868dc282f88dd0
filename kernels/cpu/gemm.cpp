// Blocked GEMM driver, GotoBLAS/BLIS style (Goto & van de Geijn, "Anatomy of high-performance
// matrix multiplication", TOMS 2008; Van Zee & van de Geijn, "BLIS", TOMS 2015).
//
// Loop nest of one thread (outermost first), with what each level keeps in which cache. Our
// micro-kernels vectorise along N (C is row-major), so B plays the role BLIS gives to A on
// Skylake-X: the vector operand's block sits in L2 and the broadcast operand's sliver in L1.
//   ic: rows of C in steps of MC      -- packed A block (MC x KC) in L3
//   pc: K in steps of KC              -- each C element gets its KC-long partial sums in order
//   jc: columns of C in steps of NC   -- packed B block (KC x NC) in L2
//   ir: MR-tall A sliver              -- stays in L1 across the jr loop
//   jr: NR-wide B sliver              -- streams from L2
//   micro-kernel: MR x NR tile of C in registers, kc rank-1 updates.
// Packing copies op(A)/op(B) into contiguous, zero-padded panels, so the micro-kernel sees one
// layout for all four transpose cases and never handles a ragged K.
//
// Threads: C is cut into slabs along M or N (gemm_driver), never along K, and K is cut the
// same way for any thread count, so each C element sees exactly the same operations in the
// same order: results are bit-identical for any number of threads.
//
// This file holds no intrinsics (it must build and run on any x86-64); the AVX-512 and AVX2
// micro-kernels live in gemm_avx512.cpp / gemm_avx2.cpp and are picked at run time.
#include "kernels/gemm.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/gemm_internal.h"
#include "kernels/runtime.h"

namespace hone::kernels {
namespace detail {
namespace {

// ---- portable micro-kernel and packing (also used for dgemm) --------------------------------

// Plain loops the compiler can vectorise for whatever ISA it targets; the accumulator tile is
// small enough (MR x NR) to live in registers on any x86-64.
template <class T, int MR, int NR>
void micro_kernel_portable(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, int m, int n,
                           T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int r = 0; r < MR; ++r) {
      const T a = Ap[k * MR + r];
      for (int c = 0; c < NR; ++c) acc[r][c] += a * Bp[k * NR + c];
    }
  }
  for (int r = 0; r < m; ++r) {
    T* crow = C + r * ldc;
    if (beta == T(0)) {
      for (int c = 0; c < n; ++c) crow[c] = alpha * acc[r][c];
    } else {
      for (int c = 0; c < n; ++c) crow[c] = alpha * acc[r][c] + beta * crow[c];
    }
  }
}

template <class T, int MR>
void pack_a_portable(bool trans, const T* A, int64_t lda, int64_t i0, int64_t k0, int mc, int kc,
                     T* dst) {
  for (int p = 0; p < mc; p += MR, dst += MR * kc) {
    const int rows = std::min(MR, mc - p);
    for (int k = 0; k < kc; ++k) {
      T* d = dst + k * MR;
      for (int r = 0; r < rows; ++r) {
        const int64_t i = i0 + p + r, kk = k0 + k;
        d[r] = trans ? A[kk * lda + i] : A[i * lda + kk];
      }
      for (int r = rows; r < MR; ++r) d[r] = T(0);
    }
  }
}

template <class T, int NR>
void pack_b_portable(bool trans, const T* B, int64_t ldb, int64_t k0, int64_t j0, int kc, int nc,
                     T* dst) {
  for (int q = 0; q < nc; q += NR, dst += NR * kc) {
    const int cols = std::min(NR, nc - q);
    for (int k = 0; k < kc; ++k) {
      T* d = dst + k * NR;
      for (int c = 0; c < cols; ++c) {
        const int64_t j = j0 + q + c, kk = k0 + k;
        d[c] = trans ? B[j * ldb + kk] : B[kk * ldb + j];
      }
      for (int c = cols; c < NR; ++c) d[c] = T(0);
    }
  }
}

// Portable float: 4 x 16 tile (four 512-bit or sixteen 128-bit accumulators).
const GemmKernels<float> kPortableFloat = {
    "portable", 4, 16, 256, 2048, 256, &micro_kernel_portable<float, 4, 16>,
    &pack_a_portable<float, 4>, &pack_b_portable<float, 16>};
// dgemm: 4 x 8 doubles, same shape in bytes.
const GemmKernels<double> kPortableDouble = {
    "portable", 4, 8, 256, 1024, 256, &micro_kernel_portable<double, 4, 8>,
    &pack_a_portable<double, 4>, &pack_b_portable<double, 8>};

// ---- backend choice --------------------------------------------------------------------------

const GemmKernels<float>* auto_backend() {
#if defined(HONE_HAVE_AVX512_KERNELS)
  if (cpu_has_avx512()) return &sgemm_avx512_kernels();
#endif
#if defined(HONE_HAVE_AVX2_KERNELS)
  if (cpu_has_avx2()) return &sgemm_avx2_kernels();
#endif
  return &kPortableFloat;
}

std::atomic<const GemmKernels<float>*> g_forced{nullptr};

const GemmKernels<float>& float_kernels() {
  static const GemmKernels<float>* const automatic = auto_backend();
  const GemmKernels<float>* forced = g_forced.load(std::memory_order_relaxed);
  return forced ? *forced : *automatic;
}

// ---- scratch buffers -------------------------------------------------------------------------

// Per-thread, 64-byte aligned, grown on demand and kept: packing buffers are needed on every
// call and malloc of ~1 MB each time would cost page faults.
struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
  ~Scratch() { std::free(p); }
  template <class T>
  T* get(size_t n) {
    const size_t need = (n * sizeof(T) + 63) / 64 * 64;
    if (need > bytes) {
      std::free(p);
      p = std::aligned_alloc(64, need);
      bytes = need;
    }
    return static_cast<T*>(p);
  }
};
thread_local Scratch tl_pack_a, tl_pack_b;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// C = beta * C (beta == 0 writes zeros) for the degenerate K == 0 / alpha == 0 cases.
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

// ---- the driver --------------------------------------------------------------------------------

// One thread's blocked product (the loop nest described at the top of the file).
template <class T>
void gemm_serial(const GemmKernels<T>& ks, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                 T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                 int64_t ldc) {
  const int MR = ks.mr, NR = ks.nr;
  // K blocks of (nearly) equal size, so no thin tail block wastes a pass over C. This depends
  // only on K, never on how M and N were split among threads (determinism).
  const int64_t kblocks = ceil_div(K, ks.kc);
  const int kc_max = int(round_up(ceil_div(K, kblocks), 4));
  // MC and NC likewise balanced, so edge blocks are not needlessly thin.
  const int mc_max = int(round_up(ceil_div(M, ceil_div(M, ks.mc)), MR));
  const int nc_max = int(round_up(ceil_div(N, ceil_div(N, ks.nc)), NR));
  T* apack = tl_pack_a.get<T>(size_t(mc_max) * kc_max);
  T* bpack = tl_pack_b.get<T>(size_t(nc_max) * kc_max);

  for (int64_t ic = 0; ic < M; ic += mc_max) {
    const int mc = int(std::min<int64_t>(mc_max, M - ic));
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int kc = int(std::min<int64_t>(kc_max, K - pc));
      // The first K block applies the caller's beta, the later ones accumulate.
      const T beta_k = pc == 0 ? beta : T(1);
      ks.pack_a(ta, A, lda, ic, pc, mc, kc, apack);
      for (int64_t jc = 0; jc < N; jc += nc_max) {
        const int nc = int(std::min<int64_t>(nc_max, N - jc));
        ks.pack_b(tb, B, ldb, pc, jc, kc, nc, bpack);
        for (int ir = 0; ir < mc; ir += MR) {
          const T* ap = apack + size_t(ir) * kc;
          T* ci = C + (ic + ir) * ldc + jc;
          for (int jr = 0; jr < nc; jr += NR)
            ks.kernel(kc, ap, bpack + size_t(jr) * kc, ci + jr, ldc, std::min(MR, mc - ir),
                      std::min(NR, nc - jr), alpha, beta_k);
        }
      }
    }
  }
}

// Splits C into slabs along the larger of M and N (so the operand every slab packs in full --
// A for column slabs, B for row slabs -- is the smaller one), each computed by gemm_serial with
// its thread's own packed buffers. No barrier anywhere: threads take slabs dynamically, a few
// per thread, so when the machine is busy and one thread is descheduled the other takes over
// its share instead of waiting at the join (a shared packed block would need two barriers per
// K block, which collapses under contention). Slabs stay wide enough that the duplicated
// packing is a few percent of the work. Measured on the GPT-2 shapes: as fast as OpenBLAS,
// which shares packed blocks between threads.
// On a machine busy with other processes, libgomp's default busy-wait (spinning for up to
// milliseconds at the end of each parallel region) made 1-3 ms products ~3x slower than
// OpenBLAS, whose idle threads yield; OMP_WAIT_POLICY=passive removes that (bench/RESULTS.md).
template <class T>
void gemm_driver(const GemmKernels<T>& ks, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                 T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                 int64_t ldc, int nt) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) return scale_c(M, N, beta, C, ldc);
  const int64_t m_tiles = ceil_div(M, ks.mr), n_tiles = ceil_div(N, ks.nr);
  const bool split_n = n_tiles * ks.nr >= m_tiles * ks.mr;
  const int64_t tiles = split_n ? n_tiles : m_tiles, step = split_n ? ks.nr : ks.mr;
  // Minimum slab: 128 columns (A re-packed per slab) or 192 rows (B re-packed per slab).
  const int64_t min_tiles = split_n ? ceil_div(128, ks.nr) : ceil_div(192, ks.mr);
  // When the operand every slab re-packs is too big to stay in cache (lm_head's 50257-long K),
  // each extra slab re-reads it from memory: then one slab per thread.
  const double dup_bytes = double(K) * double(split_n ? M : N) * sizeof(T);
  const int64_t max_slabs = dup_bytes > 16e6 ? nt : 4 * int64_t(nt);
  const int64_t slabs = std::clamp<int64_t>(tiles / min_tiles, nt, max_slabs);
  nt = int(std::min<int64_t>(nt, tiles));
  if (nt <= 1) return gemm_serial(ks, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t sl = 0; sl < slabs; ++sl) {
    const int64_t lo = tiles * sl / slabs * step;
    const int64_t hi = std::min(tiles * (sl + 1) / slabs * step, split_n ? N : M);
    if (hi <= lo) continue;
    if (split_n)
      gemm_serial(ks, ta, tb, M, hi - lo, K, alpha, A, lda, tb ? B + lo * ldb : B + lo, ldb, beta,
                  C + lo, ldc);
    else
      gemm_serial(ks, ta, tb, hi - lo, N, K, alpha, ta ? A + lo : A + lo * lda, lda, B, ldb, beta,
                  C + lo * ldc, ldc);
  }
}

// Threads for one product: below ~2 MFLOP the fork/join costs more than it saves.
int threads_for(int64_t M, int64_t N, int64_t K) {
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  return double(M) * double(N) * double(K) < 1.0e6 ? 1 : std::max(1, nt);
}

template <class T>
void gemm_batched(const GemmKernels<T>& ks, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                  T alpha, const T* A, int64_t lda, int64_t sa, const T* B, int64_t ldb,
                  int64_t sb, T beta, T* C, int64_t ldc, int64_t sc, int64_t batch) {
  if (batch <= 0) return;
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (batch >= nt && nt > 1) {
    // Enough products to give every thread whole ones: no synchronisation inside a product.
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < batch; ++i)
      gemm_driver(ks, ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc,
                  ldc, 1);
  } else {
    for (int64_t i = 0; i < batch; ++i)
      gemm_driver(ks, ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc,
                  ldc, threads_for(M, N, K));
  }
}

}  // namespace

bool sgemm_force_backend(const char* name) {
  if (name == nullptr) {
    g_forced.store(nullptr);
    return true;
  }
  const GemmKernels<float>* ks = nullptr;
  if (std::strcmp(name, "portable") == 0) ks = &kPortableFloat;
#if defined(HONE_HAVE_AVX512_KERNELS)
  if (std::strcmp(name, "avx512") == 0 && cpu_has_avx512()) ks = &sgemm_avx512_kernels();
#endif
#if defined(HONE_HAVE_AVX2_KERNELS)
  if (std::strcmp(name, "avx2") == 0 && cpu_has_avx2()) ks = &sgemm_avx2_kernels();
#endif
  if (ks == nullptr) return false;
  g_forced.store(ks);
  return true;
}

}  // namespace detail

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  detail::gemm_driver(detail::float_kernels(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                      beta, C, ldc, detail::threads_for(M, N, K));
}

void sgemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                           float alpha, const float* A, int64_t lda, int64_t stride_a,
                           const float* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                           int64_t ldc, int64_t stride_c, int64_t batch) {
  detail::gemm_batched(detail::float_kernels(), trans_a, trans_b, M, N, K, alpha, A, lda,
                       stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, batch);
}

void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
           const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
           int64_t ldc) {
  detail::gemm_driver(detail::kPortableDouble, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                      beta, C, ldc, detail::threads_for(M, N, K));
}

void dgemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                           double alpha, const double* A, int64_t lda, int64_t stride_a,
                           const double* B, int64_t ldb, int64_t stride_b, double beta,
                           double* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  detail::gemm_batched(detail::kPortableDouble, trans_a, trans_b, M, N, K, alpha, A, lda,
                       stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, batch);
}

const char* sgemm_backend() { return detail::float_kernels().name; }

}  // namespace hone::kernels
