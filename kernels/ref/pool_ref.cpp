// Reference pooling: every output from its window, in double; backward by the adjoint loops.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/pool.h"

namespace hone::kernels::ref {

namespace {

template <class T> double d(T v) { return double(acc_t<T>(v)); }
template <class T> T round_to(double v) { return T(acc_t<T>(v)); }

// Window [h0, h1) x [w0, w1) of output (oh, ow) clipped to the image, and the count_include_pad
// divisor (the window clipped to the padded image).
struct Window {
  int64_t h0, h1, w0, w1, divisor;
};
Window window(const Pool2dGeometry& g, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
  const int64_t h1 = std::min(h0 + g.kernel_h, g.in_h + g.pad_h);
  const int64_t w1 = std::min(w0 + g.kernel_w, g.in_w + g.pad_w);
  return {std::max<int64_t>(h0, 0), std::min(h1, g.in_h), std::max<int64_t>(w0, 0), std::min(w1, g.in_w),
          (h1 - h0) * (w1 - w0)};
}
Window adaptive_window(const Pool2dGeometry& g, int64_t oh, int64_t ow) {
  const int64_t h0 = int64_t(std::floor(double(oh) * g.in_h / g.out_h));
  const int64_t h1 = int64_t(std::ceil(double(oh + 1) * g.in_h / g.out_h));
  const int64_t w0 = int64_t(std::floor(double(ow) * g.in_w / g.out_w));
  const int64_t w1 = int64_t(std::ceil(double(ow + 1) * g.in_w / g.out_w));
  return {h0, h1, w0, w1, (h1 - h0) * (w1 - w0)};
}

template <class T, class WinFn>
void avg_forward(const Pool2dGeometry& g, const T* x, T* y, WinFn win) {
  const int64_t HW = g.in_h * g.in_w;
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Window w = win(g, oh, ow);
        double s = 0;
        for (int64_t ih = w.h0; ih < w.h1; ++ih)
          for (int64_t iw = w.w0; iw < w.w1; ++iw) s += d(x[pl * HW + ih * g.in_w + iw]);
        y[(pl * g.out_h + oh) * g.out_w + ow] = round_to<T>(s / double(w.divisor));
      }
}

template <class T, class WinFn>
void avg_backward(const Pool2dGeometry& g, const T* gy, T* gx, WinFn win) {
  const int64_t HW = g.in_h * g.in_w;
  std::vector<double> acc(g.planes * HW, 0.0);
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Window w = win(g, oh, ow);
        const double v = d(gy[(pl * g.out_h + oh) * g.out_w + ow]) / double(w.divisor);
        for (int64_t ih = w.h0; ih < w.h1; ++ih)
          for (int64_t iw = w.w0; iw < w.w1; ++iw) acc[pl * HW + ih * g.in_w + iw] += v;
      }
  for (size_t i = 0; i < acc.size(); ++i) gx[i] = round_to<T>(acc[i]);
}

}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* argmax) {
  const int64_t HW = g.in_h * g.in_w;
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Window w = window(g, oh, ow);
        double m = -std::numeric_limits<double>::infinity();
        int64_t best = w.h0 * g.in_w + w.w0;
        for (int64_t ih = w.h0; ih < w.h1; ++ih)
          for (int64_t iw = w.w0; iw < w.w1; ++iw) {
            const double v = d(x[pl * HW + ih * g.in_w + iw]);
            if (v > m || std::isnan(v)) m = v, best = ih * g.in_w + iw;
          }
        const int64_t o = (pl * g.out_h + oh) * g.out_w + ow;
        y[o] = round_to<T>(m);
        argmax[o] = best;
      }
}

template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* gy, const int64_t* argmax, T* gx) {
  const int64_t HW = g.in_h * g.in_w, P = g.out_h * g.out_w;
  std::vector<double> acc(g.planes * HW, 0.0);
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t q = 0; q < P; ++q) acc[pl * HW + argmax[pl * P + q]] += d(gy[pl * P + q]);
  for (size_t i = 0; i < acc.size(); ++i) gx[i] = round_to<T>(acc[i]);
}

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y) {
  avg_forward(g, x, y, window);
}
template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx) {
  avg_backward(g, gy, gx, window);
}
template <class T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y) {
  avg_forward(g, x, y, adaptive_window);
}
template <class T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx) {
  avg_backward(g, gy, gx, adaptive_window);
}

#define HONE_INSTANTIATE(T)                                                                           \
  template void max_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*, int64_t*);                \
  template void max_pool2d_backward<T>(const Pool2dGeometry&, const T*, const int64_t*, T*);         \
  template void avg_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*);                          \
  template void avg_pool2d_backward<T>(const Pool2dGeometry&, const T*, T*);                         \
  template void adaptive_avg_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*);                 \
  template void adaptive_avg_pool2d_backward<T>(const Pool2dGeometry&, const T*, T*);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::ref
