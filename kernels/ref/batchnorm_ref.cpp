// Reference batch norm: the textbook formulas in double, channel by channel.
#include <vector>

#include "kernels/batchnorm.h"

namespace hone::kernels::ref {

namespace {
template <class T> double d(T v) { return double(acc_t<T>(v)); }
template <class T> T round_to(double v) { return T(acc_t<T>(v)); }
}  // namespace

template <class T>
void batchnorm_stats(int64_t N, int64_t C, int64_t S, const T* x, acc_t<T>* mean, acc_t<T>* var) {
  const double M = double(N * S);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) s += d(x[(n * C + c) * S + i]);
    const double mu = s / M;
    double ss = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) ss += (d(x[(n * C + c) * S + i]) - mu) * (d(x[(n * C + c) * S + i]) - mu);
    mean[c] = acc_t<T>(mu);
    var[c] = acc_t<T>(ss / M);
  }
}

template <class T>
void batchnorm_forward(int64_t N, int64_t C, int64_t S, const T* x, const acc_t<T>* mean,
                       const acc_t<T>* invstd, const T* weight, const T* bias, T* y) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t o = (n * C + c) * S + i;
        const double w = weight ? d(weight[c]) : 1.0, b = bias ? d(bias[c]) : 0.0;
        y[o] = round_to<T>((d(x[o]) - double(mean[c])) * double(invstd[c]) * w + b);
      }
}

template <class T>
void batchnorm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* gy,
                        const acc_t<T>* mean, const acc_t<T>* invstd, const T* weight,
                        bool training, T* gx, T* gweight, T* gbias) {
  const double M = double(N * S);
  for (int64_t c = 0; c < C; ++c) {
    const double mu = double(mean[c]), is = double(invstd[c]), w = weight ? d(weight[c]) : 1.0;
    double sg = 0, sgx = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t o = (n * C + c) * S + i;
        sg += d(gy[o]);
        sgx += d(gy[o]) * (d(x[o]) - mu) * is;
      }
    if (gbias) gbias[c] = round_to<T>(sg);
    if (gweight) gweight[c] = round_to<T>(sgx);
    if (!gx) continue;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t o = (n * C + c) * S + i;
        const double xhat = (d(x[o]) - mu) * is;
        gx[o] = round_to<T>(training ? w * is * (d(gy[o]) - sg / M - xhat * sgx / M) : w * is * d(gy[o]));
      }
  }
}

#define HONE_INSTANTIATE(T)                                                                           \
  template void batchnorm_stats<T>(int64_t, int64_t, int64_t, const T*, acc_t<T>*, acc_t<T>*);       \
  template void batchnorm_forward<T>(int64_t, int64_t, int64_t, const T*, const acc_t<T>*,           \
                                     const acc_t<T>*, const T*, const T*, T*);                        \
  template void batchnorm_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, const acc_t<T>*, \
                                      const acc_t<T>*, const T*, bool, T*, T*, T*);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::ref
