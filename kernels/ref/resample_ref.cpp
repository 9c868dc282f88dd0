// Reference resizing: each output from its source positions, in double. The nearest index is
// PyTorch's float formula (kernels/resample.h); the bilinear source position is computed in
// double from its definition.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/resample.h"

namespace hone::kernels::ref {

namespace {

template <class T> double d(T v) { return double(acc_t<T>(v)); }
template <class T> T round_to(double v) { return T(acc_t<T>(v)); }

struct Tap {
  int64_t i0, i1;
  double l0, l1;
};
Tap linear_tap(int64_t o, int64_t in, int64_t out) {
  const double src = std::max(double(in) / double(out) * (double(o) + 0.5) - 0.5, 0.0);
  const int64_t i0 = std::min<int64_t>(int64_t(std::floor(src)), in - 1);
  const double l1 = std::clamp(src - double(i0), 0.0, 1.0);
  return {i0, std::min(i0 + 1, in - 1), 1.0 - l1, l1};
}

}  // namespace

template <class T>
void upsample_nearest2d_forward(const Resample2dGeometry& g, const T* x, T* y) {
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow)
        y[(pl * g.out_h + oh) * g.out_w + ow] =
            x[(pl * g.in_h + nearest_source_index(oh, g.in_h, g.out_h)) * g.in_w +
              nearest_source_index(ow, g.in_w, g.out_w)];
}

template <class T>
void upsample_nearest2d_backward(const Resample2dGeometry& g, const T* gy, T* gx) {
  std::vector<double> acc(g.planes * g.in_h * g.in_w, 0.0);
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow)
        acc[(pl * g.in_h + nearest_source_index(oh, g.in_h, g.out_h)) * g.in_w +
            nearest_source_index(ow, g.in_w, g.out_w)] += d(gy[(pl * g.out_h + oh) * g.out_w + ow]);
  for (size_t i = 0; i < acc.size(); ++i) gx[i] = round_to<T>(acc[i]);
}

template <class T>
void upsample_bilinear2d_forward(const Resample2dGeometry& g, const T* x, T* y) {
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Tap h = linear_tap(oh, g.in_h, g.out_h), w = linear_tap(ow, g.in_w, g.out_w);
        auto at = [&](int64_t i, int64_t j) { return d(x[(pl * g.in_h + i) * g.in_w + j]); };
        y[(pl * g.out_h + oh) * g.out_w + ow] = round_to<T>(
            h.l0 * (w.l0 * at(h.i0, w.i0) + w.l1 * at(h.i0, w.i1)) + h.l1 * (w.l0 * at(h.i1, w.i0) + w.l1 * at(h.i1, w.i1)));
      }
}

template <class T>
void upsample_bilinear2d_backward(const Resample2dGeometry& g, const T* gy, T* gx) {
  std::vector<double> acc(g.planes * g.in_h * g.in_w, 0.0);
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Tap h = linear_tap(oh, g.in_h, g.out_h), w = linear_tap(ow, g.in_w, g.out_w);
        const double v = d(gy[(pl * g.out_h + oh) * g.out_w + ow]);
        auto add = [&](int64_t i, int64_t j, double wt) { acc[(pl * g.in_h + i) * g.in_w + j] += wt * v; };
        add(h.i0, w.i0, h.l0 * w.l0);
        add(h.i0, w.i1, h.l0 * w.l1);
        add(h.i1, w.i0, h.l1 * w.l0);
        add(h.i1, w.i1, h.l1 * w.l1);
      }
  for (size_t i = 0; i < acc.size(); ++i) gx[i] = round_to<T>(acc[i]);
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

}  // namespace hone::kernels::ref
