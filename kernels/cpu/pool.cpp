// CPU pooling: one plane (one image, one channel) per step, planes spread over threads in fixed
// chunks. Backward passes scatter into their own plane only, in output order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/strided_loop.h"
#include "kernels/pool.h"

namespace hone::kernels {

namespace {

// Planes per parallel task: about 16K input elements.
int64_t planes_per_task(const Pool2dGeometry& g) {
  return std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, g.in_h * g.in_w));
}

template <class F>
void for_planes(const Pool2dGeometry& g, F&& f) {
  cpu::parallel_chunks(g.planes, planes_per_task(g), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) f(pl);
  });
}

}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* argmax) {
  using A = acc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w;
  for_planes(g, [&](int64_t pl) {
    const T* xp = x + pl * H * W;
    T* yp = y + pl * Ho * Wo;
    int64_t* ap = argmax + pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const PoolWindow w = pool_window(g, oh, ow);
        int64_t best = w.h0 * W + w.w0;
        A m = -std::numeric_limits<A>::infinity();
        for (int64_t ih = w.h0; ih < w.h1; ++ih)
          for (int64_t iw = w.w0; iw < w.w1; ++iw) {
            const A v = A(xp[ih * W + iw]);
            if (v > m || std::isnan(v)) {
              m = v;
              best = ih * W + iw;
            }
          }
        yp[oh * Wo + ow] = T(m);
        ap[oh * Wo + ow] = best;
      }
  });
}

template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* gy, const int64_t* argmax, T* gx) {
  using A = acc_t<T>;
  const int64_t HW = g.in_h * g.in_w, P = g.out_h * g.out_w;
  for_planes(g, [&](int64_t pl) {
    const T* gyp = gy + pl * P;
    const int64_t* ap = argmax + pl * P;
    cpu::with_acc_plane(gx + pl * HW, HW, [&](A* gp) {
      for (int64_t q = 0; q < P; ++q) gp[ap[q]] += A(gyp[q]);
    });
  });
}

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y) {
  using A = acc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w;
  for_planes(g, [&](int64_t pl) {
    const T* xp = x + pl * H * W;
    T* yp = y + pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const PoolWindow w = pool_window(g, oh, ow);
        A s = 0;
        for (int64_t ih = w.h0; ih < w.h1; ++ih)
          for (int64_t iw = w.w0; iw < w.w1; ++iw) s += A(xp[ih * W + iw]);
        yp[oh * Wo + ow] = T(s / A(w.padded_count));
      }
  });
}

template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx) {
  using A = acc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w;
  for_planes(g, [&](int64_t pl) {
    cpu::with_acc_plane(gx + pl * H * W, H * W, [&](A* gp) {
      const T* gyp = gy + pl * Ho * Wo;
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const PoolWindow w = pool_window(g, oh, ow);
          const A v = A(gyp[oh * Wo + ow]) / A(w.padded_count);
          for (int64_t ih = w.h0; ih < w.h1; ++ih)
            for (int64_t iw = w.w0; iw < w.w1; ++iw) gp[ih * W + iw] += v;
        }
    });
  });
}

template <class T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y) {
  using A = acc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w;
  for_planes(g, [&](int64_t pl) {
    const T* xp = x + pl * H * W;
    T* yp = y + pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const int64_t ih0 = adaptive_start(oh, H, Ho), ih1 = adaptive_end(oh, H, Ho);
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const int64_t iw0 = adaptive_start(ow, W, Wo), iw1 = adaptive_end(ow, W, Wo);
        A s = 0;
        for (int64_t ih = ih0; ih < ih1; ++ih)
          for (int64_t iw = iw0; iw < iw1; ++iw) s += A(xp[ih * W + iw]);
        yp[oh * Wo + ow] = T(s / A((ih1 - ih0) * (iw1 - iw0)));
      }
    }
  });
}

template <class T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx) {
  using A = acc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w;
  for_planes(g, [&](int64_t pl) {
    cpu::with_acc_plane(gx + pl * H * W, H * W, [&](A* buf) {
    const T* gyp = gy + pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const int64_t ih0 = adaptive_start(oh, H, Ho), ih1 = adaptive_end(oh, H, Ho);
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const int64_t iw0 = adaptive_start(ow, W, Wo), iw1 = adaptive_end(ow, W, Wo);
        const A v = A(gyp[oh * Wo + ow]) / A((ih1 - ih0) * (iw1 - iw0));
        for (int64_t ih = ih0; ih < ih1; ++ih)
          for (int64_t iw = iw0; iw < iw1; ++iw) buf[ih * W + iw] += v;
      }
    }
    });
  });
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

}  // namespace hone::kernels
