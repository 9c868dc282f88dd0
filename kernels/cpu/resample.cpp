// CPU nearest and bilinear resizing: per-axis index/weight tables computed once, then one plane
// per step, planes spread over threads in fixed chunks.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cpu/strided_loop.h"
#include "kernels/resample.h"

namespace hone::kernels {

namespace {

template <class A>
struct LinearAxis {
  std::vector<int64_t> i0, i1;
  std::vector<A> l0, l1;
  LinearAxis(int64_t in, int64_t out) : i0(out), i1(out), l0(out), l1(out) {
    const A scale = A(in) / A(out);
    for (int64_t o = 0; o < out; ++o) {
      A src = scale * (A(o) + A(0.5)) - A(0.5);
      if (src < A(0)) src = A(0);
      const int64_t idx = std::min<int64_t>(int64_t(src), in - 1);
      i0[o] = idx;
      i1[o] = idx + (idx < in - 1 ? 1 : 0);
      l1[o] = std::min(std::max(src - A(idx), A(0)), A(1));
      l0[o] = A(1) - l1[o];
    }
  }
};

std::vector<int64_t> nearest_axis(int64_t in, int64_t out) {
  std::vector<int64_t> idx(out);
  for (int64_t o = 0; o < out; ++o) idx[o] = nearest_source_index(o, in, out);
  return idx;
}

template <class F>
void for_planes(const Resample2dGeometry& g, F&& f) {
  const int64_t work = std::max<int64_t>(1, std::max(g.in_h * g.in_w, g.out_h * g.out_w));
  cpu::parallel_chunks(g.planes, std::max<int64_t>(1, (int64_t(1) << 14) / work), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) f(pl);
  });
}


}  // namespace

template <class T>
void upsample_nearest2d_forward(const Resample2dGeometry& g, const T* x, T* y) {
  const std::vector<int64_t> ih = nearest_axis(g.in_h, g.out_h), iw = nearest_axis(g.in_w, g.out_w);
  for_planes(g, [&](int64_t pl) {
    const T* xp = x + pl * g.in_h * g.in_w;
    T* yp = y + pl * g.out_h * g.out_w;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const T* xr = xp + ih[oh] * g.in_w;
      for (int64_t ow = 0; ow < g.out_w; ++ow) yp[oh * g.out_w + ow] = xr[iw[ow]];
    }
  });
}

template <class T>
void upsample_nearest2d_backward(const Resample2dGeometry& g, const T* gy, T* gx) {
  using A = acc_t<T>;
  const std::vector<int64_t> ih = nearest_axis(g.in_h, g.out_h), iw = nearest_axis(g.in_w, g.out_w);
  for_planes(g, [&](int64_t pl) {
    const T* gp = gy + pl * g.out_h * g.out_w;
    cpu::with_acc_plane(gx + pl * g.in_h * g.in_w, g.in_h * g.in_w, [&](A* acc) {
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        A* ar = acc + ih[oh] * g.in_w;
        for (int64_t ow = 0; ow < g.out_w; ++ow) ar[iw[ow]] += A(gp[oh * g.out_w + ow]);
      }
    });
  });
}

template <class T>
void upsample_bilinear2d_forward(const Resample2dGeometry& g, const T* x, T* y) {
  using A = acc_t<T>;
  const LinearAxis<A> h(g.in_h, g.out_h), w(g.in_w, g.out_w);
  for_planes(g, [&](int64_t pl) {
    const T* xp = x + pl * g.in_h * g.in_w;
    T* yp = y + pl * g.out_h * g.out_w;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const T* r0 = xp + h.i0[oh] * g.in_w;
      const T* r1 = xp + h.i1[oh] * g.in_w;
      const A h0 = h.l0[oh], h1 = h.l1[oh];
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const int64_t a = w.i0[ow], b = w.i1[ow];
        const A w0 = w.l0[ow], w1 = w.l1[ow];
        yp[oh * g.out_w + ow] =
            T(h0 * (w0 * A(r0[a]) + w1 * A(r0[b])) + h1 * (w0 * A(r1[a]) + w1 * A(r1[b])));
      }
    }
  });
}

template <class T>
void upsample_bilinear2d_backward(const Resample2dGeometry& g, const T* gy, T* gx) {
  using A = acc_t<T>;
  const LinearAxis<A> h(g.in_h, g.out_h), w(g.in_w, g.out_w);
  for_planes(g, [&](int64_t pl) {
    const T* gp = gy + pl * g.out_h * g.out_w;
    cpu::with_acc_plane(gx + pl * g.in_h * g.in_w, g.in_h * g.in_w, [&](A* acc) {
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        A* r0 = acc + h.i0[oh] * g.in_w;
        A* r1 = acc + h.i1[oh] * g.in_w;
        const A h0 = h.l0[oh], h1 = h.l1[oh];
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const int64_t a = w.i0[ow], b = w.i1[ow];
          const A w0 = w.l0[ow], w1 = w.l1[ow], v = A(gp[oh * g.out_w + ow]);
          r0[a] += h0 * w0 * v;
          r0[b] += h0 * w1 * v;
          r1[a] += h1 * w0 * v;
          r1[b] += h1 * w1 * v;
        }
      }
    });
  });
}

#define HONE_INSTANTIATE(T)                                                                   \
  template void upsample_nearest2d_forward<T>(const Resample2dGeometry&, const T*, T*);      \
  template void upsample_nearest2d_backward<T>(const Resample2dGeometry&, const T*, T*);     \
  template void upsample_bilinear2d_forward<T>(const Resample2dGeometry&, const T*, T*);     \
  template void upsample_bilinear2d_backward<T>(const Resample2dGeometry&, const T*, T*);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels
