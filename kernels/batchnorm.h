// Batch normalisation over dim 1 of a contiguous [N, C, S] array (S = the product of the spatial
// dims, 1 for [N, C]): per channel c, over the M = N * S values x[n, c, s],
//   y = (x - mean[c]) * invstd[c] * weight[c] + bias[c].
// Statistics live in acc_t<T> (float for float/bf16/f16, double for double). Per-channel sums
// are taken by one thread in a fixed order (rows of S summed in lanes, rows added in double), so
// every result is independent of the thread count.
#pragma once
#include <cstdint>

#include "kernels/half.h"

namespace hone::kernels {

// Batch mean and biased variance (two passes) of every channel.
template <class T>
void batchnorm_stats(int64_t N, int64_t C, int64_t S, const T* x, acc_t<T>* mean, acc_t<T>* var);

// weight and bias may be null (scale 1, shift 0). y is only written.
template <class T>
void batchnorm_forward(int64_t N, int64_t C, int64_t S, const T* x, const acc_t<T>* mean,
                       const acc_t<T>* invstd, const T* weight, const T* bias, T* y);

// With xhat = (x - mean) invstd: gbias = sum gy, gweight = sum gy xhat (per channel), and
//   training:  gx = weight invstd (gy - mean(gy) - xhat mean(gy xhat))   (mean/invstd were the
//              batch statistics, so they depend on x)
//   eval:      gx = weight invstd gy                                      (constants)
// Any of gx, gweight, gbias may be null (not wanted); weight may be null (absent).
template <class T>
void batchnorm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* gy,
                        const acc_t<T>* mean, const acc_t<T>* invstd, const T* weight,
                        bool training, T* gx, T* gweight, T* gbias);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// The same formulas written plainly in double (kernels/ref/batchnorm_ref.cpp).
template <class T>
void batchnorm_stats(int64_t N, int64_t C, int64_t S, const T* x, acc_t<T>* mean, acc_t<T>* var);
template <class T>
void batchnorm_forward(int64_t N, int64_t C, int64_t S, const T* x, const acc_t<T>* mean,
                       const acc_t<T>* invstd, const T* weight, const T* bias, T* y);
template <class T>
void batchnorm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* gy,
                        const acc_t<T>* mean, const acc_t<T>* invstd, const T* weight,
                        bool training, T* gx, T* gweight, T* gbias);
}  // namespace hone::kernels::ref
