// Layer normalisation over the rows of a contiguous [rows, cols] array:
//   y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps)   (biased variance)
// Statistics are kept in acc_t<T> (float for float/bf16/f16, double for double) and saved for
// the backward pass.
#pragma once
#include <cstdint>

#include "kernels/half.h"

namespace hone::kernels {

// weight and bias may be null (identity scale / no shift). mean and rstd receive one value per row.
template <class T>
void layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* weight, const T* bias,
                       double eps, T* y, acc_t<T>* mean, acc_t<T>* rstd);

// Gradients from gy and the saved statistics. Any of gx, gweight, gbias may be null (not
// wanted); weight may be null (it was absent in the forward). gweight/gbias sum over rows in
// fixed chunks of rows, chunk partials added in chunk order: independent of the thread count.
// accumulate_gx: gx already holds a gradient, and receives gx + dx (dx rounded to T before the add,
// so the values are those of writing dx and adding it after, to float rounding: the compiler may
// contract the add with dx's last product), without that separate pass.
template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* weight, const acc_t<T>* mean,
                        const acc_t<T>* rstd, const T* gy, T* gx, T* gweight, T* gbias, bool accumulate_gx = false);
// The same with gy in 16 bits (H = bf16 or f16; T = float), read as is: casting gy to T first gives
// the same results to float rounding (the compiler may contract the converted loads differently).
// Autocast's case: the output fed a 16-bit matmul, whose backward gives a 16-bit gy.
template <class T, class H>
// gx_lowp (may be null) receives gx's final values rounded to H as well: the gradient of a 16-bit
// branch added into the residual stream, without a separate cast pass.
void layernorm_backward_lowp_gy(int64_t rows, int64_t cols, const T* x, const T* weight, const acc_t<T>* mean,
                                const acc_t<T>* rstd, const H* gy, T* gx, T* gweight, T* gbias,
                                bool accumulate_gx = false, H* gx_lowp = nullptr);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// The same, written plainly, in double for every T (the statistics are rounded to acc_t<T>).
template <class T>
void layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* weight, const T* bias,
                       double eps, T* y, acc_t<T>* mean, acc_t<T>* rstd);
template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* weight,
                        const acc_t<T>* mean, const acc_t<T>* rstd, const T* gy, T* gx,
                        T* gweight, T* gbias);
}  // namespace hone::kernels::ref
