// Fused kernels (issue #4): patterns that the composed ops run as two passes over memory, done in
// one. Each has a composed, obviously-right twin (the plain kernels it replaces, and ref/ below)
// that the tests hold it to.
//
//   bias_gelu      y = gelu(x + bias), bias [cols] broadcast over the rows of x [rows, cols]:
//                  a linear layer's bias and the MLP's activation (GPT-2, BERT).
//   add_layernorm  sum = x + residual, y = layer_norm(sum) over each row: the pre-LN transformer
//                  step (sum is the new residual stream, y the next sublayer's input).
//
// All arrays are contiguous and row-major. T: float, double, bf16, f16; arithmetic happens in
// acc_t<T> (float for the 16-bit types).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/elementwise.h"
#include "kernels/half.h"

namespace hone::kernels {

// Throws unless op is one of the two gelu forms (the only activations bias_gelu fuses).
inline void require_gelu_op(UnaryOp op, const char* what) {
  if (op != UnaryOp::GeluErf && op != UnaryOp::GeluTanh)
    throw std::invalid_argument(std::string(what) + ": the activation must be UnaryOp::GeluErf or GeluTanh");
}

// `op` is UnaryOp::GeluErf or UnaryOp::GeluTanh (anything else is an std::invalid_argument).
// x + bias stays in acc_t<T> (for 16-bit T it is not rounded to T before the gelu).
template <class T>
void bias_gelu_forward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, T* y);
// Recomputes z = x + bias: gx = gy * gelu'(z), gbias[j] = sum over rows of gy * gelu'(z) (the
// unrounded values) in double, over fixed chunks of rows whose partials are added in chunk order:
// independent of the thread count. gx or gbias may be null (not wanted).
template <class T>
void bias_gelu_backward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, const T* gy,
                        T* gx, T* gbias);

// sum = x + residual (rounded to T), then y = layer_norm(sum) exactly as layernorm_forward
// (kernels/layernorm.h) computes it, with the per-row mean and rstd saved. weight and bias may be
// null. The backward is layernorm_backward on `sum` (its gradient with respect to sum is the
// gradient with respect to both x and residual).
template <class T>
void add_layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* residual, const T* weight,
                           const T* bias, double eps, T* sum, T* y, acc_t<T>* mean, acc_t<T>* rstd);
// The same with a 16-bit x (read as is: the sum is what x cast to T would give) and the normalized
// output y written as H (rounded once from the value the T version computes): autocast's case,
// where x comes from a 16-bit matmul and y feeds one. Bit-identical to casting x to T, calling
// add_layernorm_forward<T> and casting y to H. T = float, H = bf16 or f16.
template <class T, class H>
void add_layernorm_forward_lowp(int64_t rows, int64_t cols, const H* x, const T* residual, const T* weight,
                                const T* bias, double eps, T* sum, H* y, acc_t<T>* mean, acc_t<T>* rstd);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// The same, composed from the plain formulas in double (kernels::ref::unary / unary_grad and
// ref::layernorm_forward).
template <class T>
void bias_gelu_forward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, T* y);
template <class T>
void bias_gelu_backward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, const T* gy,
                        T* gx, T* gbias);
template <class T>
void add_layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* residual, const T* weight,
                           const T* bias, double eps, T* sum, T* y, acc_t<T>* mean, acc_t<T>* rstd);
}  // namespace hone::kernels::ref

// Explicit instantiations for every T: HONE_FUSED_FOR_EACH_TYPE(M) applies M to each storage type;
// HONE_FUSED_INSTANTIATE is the CPU and reference files' M (each expands it in its own namespace).
#define HONE_FUSED_FOR_EACH_TYPE(M) M(float) M(double) M(::hone::bf16) M(::hone::f16)
#define HONE_FUSED_INSTANTIATE(T)                                                                       \
  template void bias_gelu_forward<T>(UnaryOp, int64_t, int64_t, const T*, const T*, T*);               \
  template void bias_gelu_backward<T>(UnaryOp, int64_t, int64_t, const T*, const T*, const T*, T*, T*); \
  template void add_layernorm_forward<T>(int64_t, int64_t, const T*, const T*, const T*, const T*, double, \
                                         T*, T*, acc_t<T>*, acc_t<T>*);

#if defined(HONE_WITH_CUDA)
#include <cuda_runtime_api.h>

// The CUDA versions (kernels/cuda/fused.cu), declared beside their CPU twins rather than in
// kernels/cuda_api.h; same semantics and conventions as cuda_api.h (device pointers, enqueued on
// `stream`, fixed-order sums). Only CUDA builds see them.
namespace hone::kernels::cuda {
template <class T>
void bias_gelu_forward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, T* y,
                       cudaStream_t stream);
// gbias: per-block partial sums over fixed chunks of rows, added in a fixed order by a second kernel.
template <class T>
void bias_gelu_backward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, const T* gy,
                        T* gx, T* gbias, cudaStream_t stream);
// The backward is cuda::layernorm_backward on `sum`.
template <class T>
void add_layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* residual, const T* weight,
                           const T* bias, double eps, T* sum, T* y, acc_t<T>* mean, acc_t<T>* rstd,
                           cudaStream_t stream);
template <class T, class H>
void add_layernorm_forward_lowp(int64_t rows, int64_t cols, const H* x, const T* residual, const T* weight,
                                const T* bias, double eps, T* sum, H* y, acc_t<T>* mean, acc_t<T>* rstd,
                                cudaStream_t stream);
}  // namespace hone::kernels::cuda
#endif  // HONE_WITH_CUDA
