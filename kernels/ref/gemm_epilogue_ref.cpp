// The obviously-right GEMM with an epilogue (kernels/gemm_epilogue.h): the product in double,
// then the epilogue's formula, element by element.
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/gemm_epilogue.h"

namespace hone::kernels::ref {

template <class T>
void gemm_epilogue(EpilogueKind kind, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, T* bias, T* aux, int64_t aux_ld) {
  auto a_at = [&](int64_t i, int64_t k) { return double(trans_a ? A[k * lda + i] : A[i * lda + k]); };
  auto b_at = [&](int64_t k, int64_t j) { return double(trans_b ? B[j * ldb + k] : B[k * ldb + j]); };
  std::vector<double> column_sums(kind == EpilogueKind::DGeluBgrad ? N : 0, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += a_at(i, k) * b_at(k, j);
      switch (kind) {
        case EpilogueKind::Bias: acc += double(bias[j]); break;
        case EpilogueKind::BiasGeluTanh:
          acc += double(bias[j]);
          if (aux) aux[i * aux_ld + j] = T(acc);
          acc = unary(UnaryOp::GeluTanh, acc, 0.0);
          break;
        case EpilogueKind::DGeluBgrad:
          acc *= unary_grad(UnaryOp::GeluTanh, double(aux[i * aux_ld + j]), 0.0);
          column_sums[j] += acc;
          break;
        case EpilogueKind::DGelu:
          acc *= unary_grad(UnaryOp::GeluTanh, double(aux[i * aux_ld + j]), 0.0);
          break;
        default: break;
      }
      C[i * ldc + j] = T(acc);
    }
  if (kind == EpilogueKind::DGeluBgrad)
    for (int64_t j = 0; j < N; ++j) bias[j] = T(column_sums[j]);
  if (kind == EpilogueKind::BgradA)
    for (int64_t i = 0; i < M; ++i) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += a_at(i, k);
      bias[i] = T(s);
    }
  if (kind == EpilogueKind::BgradB)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += b_at(k, j);
      bias[j] = T(s);
    }
}

#define HONE_INSTANTIATE(T)                                                                                  \
  template void gemm_epilogue<T>(EpilogueKind, bool, bool, int64_t, int64_t, int64_t, const T*, int64_t,     \
                                 const T*, int64_t, T*, int64_t, T*, T*, int64_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::ref
