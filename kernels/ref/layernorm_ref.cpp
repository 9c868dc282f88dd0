// Reference layer norm: the textbook formulas in double, one row at a time.
#include <cmath>
#include <vector>

#include "kernels/layernorm.h"

namespace hone::kernels::ref {

namespace {
template <class T> double d(T v) { return double(acc_t<T>(v)); }
}  // namespace

template <class T>
void layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* weight, const T* bias,
                       double eps, T* y, acc_t<T>* mean, acc_t<T>* rstd) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    double s = 0;
    for (int64_t i = 0; i < cols; ++i) s += d(xr[i]);
    const double mu = s / double(cols);
    double ss = 0;
    for (int64_t i = 0; i < cols; ++i) ss += (d(xr[i]) - mu) * (d(xr[i]) - mu);
    const double rs = 1.0 / std::sqrt(ss / double(cols) + eps);
    for (int64_t i = 0; i < cols; ++i) {
      const double w = weight ? d(weight[i]) : 1.0, b = bias ? d(bias[i]) : 0.0;
      y[r * cols + i] = T(acc_t<T>((d(xr[i]) - mu) * rs * w + b));
    }
    mean[r] = acc_t<T>(mu);
    rstd[r] = acc_t<T>(rs);
  }
}

template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* weight,
                        const acc_t<T>* mean, const acc_t<T>* rstd, const T* gy, T* gx,
                        T* gweight, T* gbias) {
  std::vector<double> gw(cols, 0.0), gb(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * cols;
    const double mu = double(mean[r]), rs = double(rstd[r]);
    std::vector<double> xhat(cols), g(cols);
    double g_sum = 0, gx_sum = 0;
    for (int64_t i = 0; i < cols; ++i) {
      xhat[i] = (d(x[o + i]) - mu) * rs;
      g[i] = d(gy[o + i]) * (weight ? d(weight[i]) : 1.0);
      g_sum += g[i];
      gx_sum += g[i] * xhat[i];
      gw[i] += d(gy[o + i]) * xhat[i];
      gb[i] += d(gy[o + i]);
    }
    if (gx)
      for (int64_t i = 0; i < cols; ++i)
        gx[o + i] = T(acc_t<T>(rs * (g[i] - g_sum / double(cols) - xhat[i] * gx_sum / double(cols))));
  }
  for (int64_t i = 0; i < cols; ++i) {
    if (gweight) gweight[i] = T(acc_t<T>(gw[i]));
    if (gbias) gbias[i] = T(acc_t<T>(gb[i]));
  }
}

#define HONE_INSTANTIATE(T)                                                                   \
  template void layernorm_forward<T>(int64_t, int64_t, const T*, const T*, const T*, double, \
                                     T*, acc_t<T>*, acc_t<T>*);                               \
  template void layernorm_backward<T>(int64_t, int64_t, const T*, const T*, const acc_t<T>*,  \
                                      const acc_t<T>*, const T*, T*, T*, T*);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::ref
