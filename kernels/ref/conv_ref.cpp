// Reference conv2d: the definition as nested loops, accumulated in double.
#include <cstddef>
#include <vector>

#include "kernels/conv.h"

namespace hone::kernels::ref {

namespace {

// Calls f(n, co, oh, ow, ci, ki, kj, x_index) for every (output, tap) pair whose input lies
// inside the image (x_index is the flat index into x; ci is the absolute input channel).
template <class F>
void for_each_tap(const Conv2dGeometry& g, F&& f) {
  const int64_t Ho = g.out_h(), Wo = g.out_w();
  const int64_t Cig = g.in_channels / g.groups, Cog = g.out_channels / g.groups;
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t co = 0; co < g.out_channels; ++co)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow)
          for (int64_t cl = 0; cl < Cig; ++cl)
            for (int64_t ki = 0; ki < g.kernel_h; ++ki)
              for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
                const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dilation_h;
                const int64_t iw = ow * g.stride_w - g.pad_w + kj * g.dilation_w;
                if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) continue;
                const int64_t ci = (co / Cog) * Cig + cl;
                f(n, co, oh, ow, cl, ki, kj, ((n * g.in_channels + ci) * g.in_h + ih) * g.in_w + iw);
              }
}

int64_t y_index(const Conv2dGeometry& g, int64_t n, int64_t co, int64_t oh, int64_t ow) {
  return ((n * g.out_channels + co) * g.out_h() + oh) * g.out_w() + ow;
}

int64_t w_index(const Conv2dGeometry& g, int64_t co, int64_t cl, int64_t ki, int64_t kj) {
  return ((co * (g.in_channels / g.groups) + cl) * g.kernel_h + ki) * g.kernel_w + kj;
}

}  // namespace

template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t ny = g.batch * g.out_channels * g.out_h() * g.out_w();
  std::vector<double> acc(ny, 0.0);
  for_each_tap(g, [&](int64_t n, int64_t co, int64_t oh, int64_t ow, int64_t cl, int64_t ki, int64_t kj, int64_t xi) {
    acc[y_index(g, n, co, oh, ow)] += double(x[xi]) * double(w[w_index(g, co, cl, ki, kj)]);
  });
  const int64_t P = g.out_h() * g.out_w();
  for (int64_t i = 0; i < ny; ++i) y[i] = T(acc[i] + (bias ? double(bias[(i / P) % g.out_channels]) : 0.0));
}

template <class T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* gy, const T* w, T* gx) {
  std::vector<double> acc(g.batch * g.in_channels * g.in_h * g.in_w, 0.0);
  for_each_tap(g, [&](int64_t n, int64_t co, int64_t oh, int64_t ow, int64_t cl, int64_t ki, int64_t kj, int64_t xi) {
    acc[xi] += double(gy[y_index(g, n, co, oh, ow)]) * double(w[w_index(g, co, cl, ki, kj)]);
  });
  for (size_t i = 0; i < acc.size(); ++i) gx[i] = T(acc[i]);
}

template <class T>
void conv2d_backward_weight(const Conv2dGeometry& g, const T* x, const T* gy, T* gw) {
  std::vector<double> acc(g.out_channels * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w, 0.0);
  for_each_tap(g, [&](int64_t n, int64_t co, int64_t oh, int64_t ow, int64_t cl, int64_t ki, int64_t kj, int64_t xi) {
    acc[w_index(g, co, cl, ki, kj)] += double(gy[y_index(g, n, co, oh, ow)]) * double(x[xi]);
  });
  for (size_t i = 0; i < acc.size(); ++i) gw[i] = T(acc[i]);
}

template <class T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* gy, T* gb) {
  const int64_t P = g.out_h() * g.out_w();
  for (int64_t c = 0; c < g.out_channels; ++c) {
    double s = 0;
    for (int64_t n = 0; n < g.batch; ++n)
      for (int64_t q = 0; q < P; ++q) s += double(gy[(n * g.out_channels + c) * P + q]);
    gb[c] = T(s);
  }
}

#define HONE_INSTANTIATE(T)                                                                       \
  template void conv2d_forward<T>(const Conv2dGeometry&, const T*, const T*, const T*, T*);      \
  template void conv2d_backward_data<T>(const Conv2dGeometry&, const T*, const T*, T*);          \
  template void conv2d_backward_weight<T>(const Conv2dGeometry&, const T*, const T*, T*);        \
  template void conv2d_backward_bias<T>(const Conv2dGeometry&, const T*, T*);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::ref
