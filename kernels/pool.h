// 2-d pooling on contiguous [planes, H, W] arrays (planes = N * C), PyTorch's semantics:
//   max_pool2d      floor mode; padding is -inf; the argmax (flat index ih * W + iw within the
//                   plane) is the first maximum in row-major window order, a NaN wins (and
//                   propagates), and the backward sends each output's gradient to its argmax.
//   avg_pool2d      floor mode, count_include_pad = true: divisor = the window clipped to the
//                   padded input (kH * kW in floor mode).
//   adaptive_avg    window i along a dim of size H -> out: [floor(i H / out), ceil((i+1) H / out)).
// Every output plane depends on one input plane only: planes are spread over threads, so results
// never depend on the thread count. Instantiated for float, double, bf16 and f16 (arithmetic
// in acc_t<T>).
#pragma once
#include <cstdint>

#include "kernels/half.h"

namespace hone::kernels {

struct Pool2dGeometry {
  int64_t planes = 1, in_h = 1, in_w = 1, out_h = 1, out_w = 1;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

// y and argmax [planes, out_h, out_w] are only written.
template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* argmax);
// gx [planes, in_h, in_w] is only written.
template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* gy, const int64_t* argmax, T* gx);

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y);
template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx);

// Uses planes, in_h, in_w, out_h, out_w of g (the kernel/stride/pad fields are ignored).
template <class T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y);
template <class T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// The definitions, one output at a time, in double (kernels/ref/pool_ref.cpp).
template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* argmax);
template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* gy, const int64_t* argmax, T* gx);
template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y);
template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx);
template <class T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y);
template <class T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx);
}  // namespace hone::kernels::ref
