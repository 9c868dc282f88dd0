// GEMM through cuBLASLt, row-major.
//
// cuBLAS is column-major. A row-major matrix X [r, c] with leading dimension ld is, bit for bit,
// the column-major matrix X^T [c, r] with the same ld. So the row-major product C = op(A) op(B)
// is computed as the column-major C^T = op(B)^T op(A)^T: swap the operands (B first), keep each
// operand's transpose flag, and swap M and N. No data moves.
//
// Compute types: float32 in full precision (CUBLAS_COMPUTE_32F) or TF32 tensor cores when
// set_tf32(true); bf16/f16 operands with float32 accumulation and scale; float64 in float64.
// The heuristic is asked for an algorithm on every call with the operands' real alignment (a
// view into a fused qkv projection need not be 256-byte aligned, the heuristic's default).
#include <cublasLt.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "kernels/cuda_api.h"

namespace hone::kernels::cuda {

namespace {

std::atomic<bool> g_tf32{false};

void check_blas(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string("cuBLASLt ") + what + " failed: " + cublasLtGetStatusString(st));
}

template <class T> cudaDataType_t data_type();
template <> cudaDataType_t data_type<float>() { return CUDA_R_32F; }
template <> cudaDataType_t data_type<double>() { return CUDA_R_64F; }
template <> cudaDataType_t data_type<bf16>() { return CUDA_R_16BF; }
template <> cudaDataType_t data_type<f16>() { return CUDA_R_16F; }

// Largest power of two (up to 256) dividing the address.
uint32_t alignment_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && (a % align) != 0) align /= 2;
  return align;
}

// RAII holders for the descriptor objects.
struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  ~MatmulDesc() { if (d) cublasLtMatmulDescDestroy(d); }
};
struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  ~Layout() { if (l) cublasLtMatrixLayoutDestroy(l); }
};
struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  ~Preference() { if (p) cublasLtMatmulPreferenceDestroy(p); }
};

// A column-major rows x cols matrix with leading dimension ld, batched.
void make_layout(Layout& out, cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                 int64_t stride) {
  check_blas(cublasLtMatrixLayoutCreate(&out.l, type, uint64_t(rows), uint64_t(cols), ld), "MatrixLayoutCreate");
  if (batch > 1) {
    const int32_t count = int32_t(batch);
    check_blas(cublasLtMatrixLayoutSetAttribute(out.l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
               "MatrixLayoutSetAttribute(BATCH_COUNT)");
    check_blas(cublasLtMatrixLayoutSetAttribute(out.l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                sizeof(stride)),
               "MatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)");
  }
}

}  // namespace

void set_tf32(bool enabled) { g_tf32 = enabled; }
bool tf32_enabled() { return g_tf32; }

template <class T>
void gemm_strided_batched(const BlasContext& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                          float alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                          int64_t stride_b, float beta, T* C, int64_t ldc, int64_t stride_c, int64_t batch,
                          cudaStream_t stream) {
  if (M == 0 || N == 0 || batch == 0) return;
  if (!ctx.lt) throw std::runtime_error("cuda gemm: no cuBLASLt handle in the BlasContext");
  if (batch > INT32_MAX) throw std::invalid_argument("cuda gemm: batch too large");
  const bool is_double = std::is_same_v<T, double>;
  const cudaDataType_t type = data_type<T>();
  const cudaDataType_t scale_type = is_double ? CUDA_R_64F : CUDA_R_32F;
  const cublasComputeType_t compute =
      is_double ? CUBLAS_COMPUTE_64F
                : (std::is_same_v<T, float> && g_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);

  // Column-major view: C^T [N, M] = op(B)^T [N, K] x op(A)^T [K, M].
  // "First" operand = B: stored row-major [K, N] (or [N, K] with trans_b), i.e. column-major
  // [N, K] (or [K, N]) with ld = ldb; it needs a transpose exactly when trans_b.
  const cublasOperation_t op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  MatmulDesc desc;
  check_blas(cublasLtMatmulDescCreate(&desc.d, compute, scale_type), "MatmulDescCreate");
  check_blas(cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)),
             "MatmulDescSetAttribute(TRANSA)");
  check_blas(cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)),
             "MatmulDescSetAttribute(TRANSB)");
  Layout la, lb, lc;
  make_layout(la, type, trans_b ? K : N, trans_b ? N : K, ldb, batch, stride_b);
  make_layout(lb, type, trans_a ? M : K, trans_a ? K : M, lda, batch, stride_a);
  make_layout(lc, type, N, M, ldc, batch, stride_c);

  Preference pref;
  check_blas(cublasLtMatmulPreferenceCreate(&pref.p), "MatmulPreferenceCreate");
  const uint64_t ws = ctx.workspace_bytes;
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
             "MatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
  const uint32_t align_a = alignment_of(B), align_b = alignment_of(A), align_c = alignment_of(C);
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a,
                                                  sizeof(align_a)),
             "MatmulPreferenceSetAttribute(MIN_ALIGNMENT_A)");
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b,
                                                  sizeof(align_b)),
             "MatmulPreferenceSetAttribute(MIN_ALIGNMENT_B)");
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c,
                                                  sizeof(align_c)),
             "MatmulPreferenceSetAttribute(MIN_ALIGNMENT_C)");
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c,
                                                  sizeof(align_c)),
             "MatmulPreferenceSetAttribute(MIN_ALIGNMENT_D)");

  auto* handle = reinterpret_cast<cublasLtHandle_t>(ctx.lt);
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  check_blas(cublasLtMatmulAlgoGetHeuristic(handle, desc.d, la.l, lb.l, lc.l, lc.l, pref.p, 1, &heuristic, &found),
             "MatmulAlgoGetHeuristic");
  if (found == 0)
    throw std::runtime_error("cuBLASLt found no algorithm for a " + std::to_string(M) + "x" + std::to_string(N) +
                             "x" + std::to_string(K) + " GEMM (batch " + std::to_string(batch) + ")");
  const double alpha_d = alpha, beta_d = beta;
  const void* palpha = is_double ? static_cast<const void*>(&alpha_d) : static_cast<const void*>(&alpha);
  const void* pbeta = is_double ? static_cast<const void*>(&beta_d) : static_cast<const void*>(&beta);
  check_blas(cublasLtMatmul(handle, desc.d, palpha, B, la.l, A, lb.l, pbeta, C, lc.l, C, lc.l, &heuristic.algo,
                            ctx.workspace, ctx.workspace_bytes, stream),
             "Matmul");
}

#define HONE_INSTANTIATE(T)                                                                                 \
  template void gemm_strided_batched<T>(const BlasContext&, bool, bool, int64_t, int64_t, int64_t, float,  \
                                        const T*, int64_t, int64_t, const T*, int64_t, int64_t, float, T*,  \
                                        int64_t, int64_t, int64_t, cudaStream_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
