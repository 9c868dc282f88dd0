// Resizing [planes, H, W] -> [planes, out_h, out_w] (planes = N * C, contiguous), with
// torch.nn.functional.interpolate's index rules:
//   nearest    src = min(floor(dst * scale), in - 1), scale = float(in) / out, computed in float
//              as PyTorch does (with its exact shortcuts for out == in and out == 2 in).
//   bilinear   align_corners = False: src = max(scale (dst + 0.5) - 0.5, 0) in acc_t<T>,
//              i0 = min(floor(src), in - 1), i1 = i0 + (i0 < in - 1), lambda1 = clamp(src - i0, 0, 1),
//              lambda0 = 1 - lambda1.
// Backward passes scatter-add into their own plane in output order: results never depend on
// the thread count. Instantiated for float, double, bf16 and f16 (arithmetic in acc_t<T>).
#pragma once
#include <cstdint>

#include "kernels/half.h"

namespace hone::kernels {

struct Resample2dGeometry {
  int64_t planes = 1, in_h = 1, in_w = 1, out_h = 1, out_w = 1;
};

// PyTorch's nearest source index (shared with the reference and the tests).
inline int64_t nearest_source_index(int64_t dst, int64_t in, int64_t out) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  const float scale = float(in) / float(out);
  const int64_t src = int64_t(__builtin_floorf(float(dst) * scale));
  return src < in - 1 ? src : in - 1;
}

// Outputs are only written; gx is only written (zeroed, then accumulated).
template <class T>
void upsample_nearest2d_forward(const Resample2dGeometry& g, const T* x, T* y);
template <class T>
void upsample_nearest2d_backward(const Resample2dGeometry& g, const T* gy, T* gx);
template <class T>
void upsample_bilinear2d_forward(const Resample2dGeometry& g, const T* x, T* y);
template <class T>
void upsample_bilinear2d_backward(const Resample2dGeometry& g, const T* gy, T* gx);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// Output by output in double (kernels/ref/resample_ref.cpp).
template <class T>
void upsample_nearest2d_forward(const Resample2dGeometry& g, const T* x, T* y);
template <class T>
void upsample_nearest2d_backward(const Resample2dGeometry& g, const T* gy, T* gx);
template <class T>
void upsample_bilinear2d_forward(const Resample2dGeometry& g, const T* x, T* y);
template <class T>
void upsample_bilinear2d_backward(const Resample2dGeometry& g, const T* gy, T* gx);
}  // namespace hone::kernels::ref
