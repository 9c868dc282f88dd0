// Reference softmax / log-softmax: the textbook formulas in double, one row at a time.
#include <cmath>
#include <vector>

#include "kernels/softmax.h"

namespace hone::kernels::ref {

template <class T> void softmax_forward(int64_t rows, int64_t cols, const T* x, T* y, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    double m = -INFINITY;
    for (int64_t i = 0; i < cols; ++i) m = std::max(m, double(acc_t<T>(xr[i])));
    double s = 0;
    for (int64_t i = 0; i < cols; ++i) s += std::exp(double(acc_t<T>(xr[i])) - m);
    for (int64_t i = 0; i < cols; ++i) {
      const double xi = double(acc_t<T>(xr[i]));
      const double v = log ? xi - m - std::log(s) : std::exp(xi - m) / s;
      y[r * cols + i] = T(acc_t<T>(v));
    }
  }
}

template <class T>
void softmax_backward(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * cols;
    double s = 0;  // sum(gy * y) for softmax, sum(gy) for log_softmax
    for (int64_t i = 0; i < cols; ++i)
      s += double(acc_t<T>(gy[o + i])) * (log ? 1.0 : double(acc_t<T>(y[o + i])));
    for (int64_t i = 0; i < cols; ++i) {
      const double yi = double(acc_t<T>(y[o + i])), gi = double(acc_t<T>(gy[o + i]));
      const double v = log ? gi - std::exp(yi) * s : yi * (gi - s);
      gx[o + i] = T(acc_t<T>(v));
    }
  }
}

#define HONE_INSTANTIATE(T)                                                              \
  template void softmax_forward<T>(int64_t, int64_t, const T*, T*, bool);                \
  template void softmax_backward<T>(int64_t, int64_t, const T*, const T*, T*, bool);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::ref
