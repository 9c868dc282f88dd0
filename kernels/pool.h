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
#include "kernels/host_device.h"

namespace hone::kernels {

struct Pool2dGeometry {
  int64_t planes = 1, in_h = 1, in_w = 1, out_h = 1, out_w = 1;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

// The input window of output (oh, ow), clipped to the image: [h0, h1) x [w0, w1); padded_count is
// the number of its positions inside the padded image (avg pooling's divisor, PyTorch's
// count_include_pad=True). Max pooling uses the clipped window (padding is -inf, which never wins).
struct PoolWindow {
  int64_t h0, h1, w0, w1, padded_count;
};
HONE_HD PoolWindow pool_window(const Pool2dGeometry& g, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
  const int64_t he = h0 + g.kernel_h < g.in_h + g.pad_h ? h0 + g.kernel_h : g.in_h + g.pad_h;
  const int64_t we = w0 + g.kernel_w < g.in_w + g.pad_w ? w0 + g.kernel_w : g.in_w + g.pad_w;
  return {h0 > 0 ? h0 : 0, he < g.in_h ? he : g.in_h, w0 > 0 ? w0 : 0, we < g.in_w ? we : g.in_w, (he - h0) * (we - w0)};
}

// Adaptive pooling's window [start, end) of output i along an axis: floor(i in / out),
// ceil((i + 1) in / out).
HONE_HD int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
HONE_HD int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

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
