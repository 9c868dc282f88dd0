// CPU batch norm. Statistics and parameter gradients: one channel per step, channels spread over
// threads (each channel's sum is taken by a single thread in a fixed order). Normalisation and
// gx: one [n, c] row of S values per step, rows spread over threads in fixed chunks.
#include <algorithm>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/cpu/rowwise.h"
#include "kernels/cpu/strided_loop.h"

namespace hone::kernels {

namespace {

using cpu::lane_sum;

// Rows of S values per parallel task: about 16K elements.
int64_t rows_per_task(int64_t S) { return std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(S, 1)); }
// Channels per parallel task for the per-channel sums.
int64_t channels_per_task(int64_t N, int64_t S) {
  return std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(N * S, 1));
}

// sum over n of lane_sum over the row (n, c) of term(row pointer offset, s), rows added in double.
template <class A, class Term>
double channel_sum(int64_t N, int64_t C, int64_t S, int64_t c, Term&& term) {
  double s = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t base = (n * C + c) * S;
    s += double(lane_sum<A>(S, [&](int64_t i) { return term(base + i); }));
  }
  return s;
}

}  // namespace

template <class T>
void batchnorm_stats(int64_t N, int64_t C, int64_t S, const T* x, acc_t<T>* mean, acc_t<T>* var) {
  using A = acc_t<T>;
  const double M = double(N * S);
  cpu::parallel_chunks(C, channels_per_task(N, S), [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const A mu = A(channel_sum<A>(N, C, S, c, [&](int64_t i) { return A(x[i]); }) / M);
      const double ss = channel_sum<A>(N, C, S, c, [&](int64_t i) {
        const A dv = A(x[i]) - mu;
        return dv * dv;
      });
      mean[c] = mu;
      var[c] = A(ss / M);
    }
  });
}

template <class T>
void batchnorm_forward(int64_t N, int64_t C, int64_t S, const T* x, const acc_t<T>* mean,
                       const acc_t<T>* invstd, const T* weight, const T* bias, T* y) {
  using A = acc_t<T>;
  cpu::parallel_chunks(N * C, rows_per_task(S), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t c = r % C;
      const A scale = invstd[c] * (weight ? A(weight[c]) : A(1));
      const A shift = bias ? A(bias[c]) : A(0);
      const A mu = mean[c];
      const T* xr = x + r * S;
      T* yr = y + r * S;
      for (int64_t i = 0; i < S; ++i) yr[i] = T((A(xr[i]) - mu) * scale + shift);
    }
  });
}

template <class T>
void batchnorm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* gy,
                        const acc_t<T>* mean, const acc_t<T>* invstd, const T* weight,
                        bool training, T* gx, T* gweight, T* gbias) {
  using A = acc_t<T>;
  const double M = double(N * S);
  // Per channel: sum gy and sum gy xhat (both needed by a training-mode gx).
  const bool need_sums = gweight || gbias || (gx && training);
  std::vector<A> sum_g(need_sums ? C : 0), sum_gx(need_sums ? C : 0);
  if (need_sums)
    cpu::parallel_chunks(C, channels_per_task(N, S), [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        const A mu = mean[c], is = invstd[c];
        sum_g[c] = A(channel_sum<A>(N, C, S, c, [&](int64_t i) { return A(gy[i]); }));
        sum_gx[c] = A(channel_sum<A>(N, C, S, c, [&](int64_t i) { return A(gy[i]) * ((A(x[i]) - mu) * is); }));
        if (gbias) gbias[c] = T(sum_g[c]);
        if (gweight) gweight[c] = T(sum_gx[c]);
      }
    });
  if (!gx) return;
  cpu::parallel_chunks(N * C, rows_per_task(S), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t c = r % C;
      const A is = invstd[c], k = is * (weight ? A(weight[c]) : A(1));
      const T* gr = gy + r * S;
      T* out = gx + r * S;
      if (!training) {
        for (int64_t i = 0; i < S; ++i) out[i] = T(A(gr[i]) * k);
        continue;
      }
      const A mu = mean[c];
      const A g_mean = A(double(sum_g[c]) / M), gx_mean = A(double(sum_gx[c]) / M);
      const T* xr = x + r * S;
      for (int64_t i = 0; i < S; ++i) out[i] = T(k * (A(gr[i]) - g_mean - (A(xr[i]) - mu) * is * gx_mean));
    }
  });
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

}  // namespace hone::kernels
