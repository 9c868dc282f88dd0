// 2-d convolution (cross-correlation, PyTorch's conv2d) on contiguous NCHW arrays.
//
//   x [N, C_in, H, W], weight [C_out, C_in / groups, kH, kW], bias [C_out] (may be null),
//   y [N, C_out, H_out, W_out],  H_out = (H + 2 pad_h - dilation_h (kH - 1) - 1) / stride_h + 1.
//
// The CPU version (kernels/cpu/conv.cpp) lowers every group of every chunk of images to one
// GEMM (kernels/gemm.h): an im2col buffer [C_in/groups * kH * kW, images * H_out * W_out] per
// thread, or the input itself for a 1x1 stride-1 unpadded convolution of one image. Results do
// not depend on the number of OpenMP threads.
#pragma once
#include <cstdint>

namespace hone::kernels {

struct Conv2dGeometry {
  int64_t batch = 1, in_channels = 1, in_h = 1, in_w = 1;
  int64_t out_channels = 1, kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;

  // Assumes a valid geometry (the engine checks that the output is at least 1x1).
  int64_t out_h() const { return (in_h + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1; }
  int64_t out_w() const { return (in_w + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1; }
};

// T is float or double (16-bit tensors are converted to float by the engine).
// y is only written. bias may be null.
template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* weight, const T* bias, T* y);

// gx = d loss / d x from gy [N, C_out, H_out, W_out] (gx is only written).
template <class T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* gy, const T* weight, T* gx);

// gw = d loss / d weight (summed over the batch in a fixed order; only written).
template <class T>
void conv2d_backward_weight(const Conv2dGeometry& g, const T* x, const T* gy, T* gw);

// gb[c] = sum of gy over the batch and the output pixels of channel c (only written).
template <class T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* gy, T* gb);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// The definition as nested loops, accumulated in double (kernels/ref/conv_ref.cpp).
template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* weight, const T* bias, T* y);
template <class T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* gy, const T* weight, T* gx);
template <class T>
void conv2d_backward_weight(const Conv2dGeometry& g, const T* x, const T* gy, T* gw);
template <class T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* gy, T* gb);
}  // namespace hone::kernels::ref
