// Softmax and log-softmax over the rows of a contiguous [rows, cols] array (the op moves the
// softmax dim last first). Numerically stable: the row maximum is subtracted before exp.
// Arithmetic in acc_t<T> (float for float/bf16/f16, double for double).
#pragma once
#include <cstdint>

#include "kernels/half.h"

namespace hone::kernels {

// y = softmax(x) (log == false) or log_softmax(x) (log == true), row by row.
template <class T> void softmax_forward(int64_t rows, int64_t cols, const T* x, T* y, bool log);

// Given the forward output y and its gradient gy:
//   softmax:     gx = y * (gy - sum(gy * y))
//   log_softmax: gx = gy - exp(y) * sum(gy)
template <class T>
void softmax_backward(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx, bool log);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// The same, written plainly, in double for every T.
template <class T> void softmax_forward(int64_t rows, int64_t cols, const T* x, T* y, bool log);
template <class T>
void softmax_backward(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx, bool log);
}  // namespace hone::kernels::ref
