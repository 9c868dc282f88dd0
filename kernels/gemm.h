// Dense matrix products (GEMM) on the CPU, row-major everywhere.
//
// The implementation (kernels/cpu/gemm.cpp) follows the GotoBLAS/BLIS design: the operands are
// cut into cache-sized blocks, packed into contiguous panels, and a register-blocked micro-kernel
// (AVX-512, AVX2 or portable C++, chosen at run time) does all the arithmetic.
#pragma once
#include <cstdint>

namespace hone::kernels {

// C[M,N] = alpha * op(A) @ op(B) + beta * C, row-major; ld = row stride in elements.
// op(A) is A [M,K] (lda >= K) or, with trans_a, A^T where A is stored [K,M] (lda >= M).
// op(B) is B [K,N] (ldb >= N) or, with trans_b, B^T where B is stored [N,K] (ldb >= K).
// beta == 0 means C is only written (NaNs in C do not propagate).
// Deterministic: the result does not depend on the number of OpenMP threads (threads split M/N
// tiles, never K).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);

// The same for `batch` independent products, the i-th using A + i*stride_a, B + i*stride_b,
// C + i*stride_c (a stride may be 0 to broadcast an operand; C's must not overlap).
void sgemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                           float alpha, const float* A, int64_t lda, int64_t stride_a,
                           const float* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                           int64_t ldc, int64_t stride_c, int64_t batch);

// Double precision (used by gradient checks): blocked and OpenMP-parallel, portable micro-kernel.
// Same semantics as sgemm.
void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
           const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
           int64_t ldc);
void dgemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                           double alpha, const double* A, int64_t lda, int64_t stride_a,
                           const double* B, int64_t ldb, int64_t stride_b, double beta,
                           double* C, int64_t ldc, int64_t stride_c, int64_t batch);

// Which micro-kernel sgemm uses on this CPU: "avx512", "avx2" or "portable".
const char* sgemm_backend();

}  // namespace hone::kernels

namespace hone::kernels::ref {

// Obviously-right triple loop (double accumulation) for tests. Same semantics as sgemm.
// Instantiated for float and double in kernels/ref/gemm_ref.cpp.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace hone::kernels::ref
