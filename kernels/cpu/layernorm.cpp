// CPU layer norm. Forward and dx: one row per step, rows spread over threads. dweight/dbias:
// partial sums over fixed chunks of kRowChunk rows (computed in parallel), then added column by
// column in chunk order, in double; so every result is independent of the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/rowwise.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/layernorm.h"

namespace hone::kernels {

namespace {

using cpu::lane_sum;

constexpr int64_t kRowChunk = 32;

template <class T>
void layernorm_row(int64_t n, const T* x, const T* w, const T* b, acc_t<T> eps, T* y,
                   acc_t<T>& mean_out, acc_t<T>& rstd_out) {
  using A = acc_t<T>;
  // Two passes (mean, then squared deviations): no cancellation when |mean| >> std.
  const A mean = lane_sum<A>(n, [&](int64_t i) { return A(x[i]); }) / A(n);
  const A var = lane_sum<A>(n, [&](int64_t i) {
                  const A d = A(x[i]) - mean;
                  return d * d;
                }) / A(n);
  const A rstd = A(1) / std::sqrt(var + eps);
  for (int64_t i = 0; i < n; ++i) {
    A v = (A(x[i]) - mean) * rstd;
    if (w) v *= A(w[i]);
    if (b) v += A(b[i]);
    y[i] = T(v);
  }
  mean_out = mean;
  rstd_out = rstd;
}

// dx for one row: with xhat = (x - mean) rstd and g = gy * w,
//   dx = rstd (g - mean(g) - xhat mean(g xhat)).
template <class T, class G>
void layernorm_dx_row(int64_t n, const T* x, const T* w, acc_t<T> mean, acc_t<T> rstd, const G* gy, T* gx,
                      bool accumulate, G* gx_lowp) {
  using A = acc_t<T>;
  auto g = [&](int64_t i) { return w ? A(gy[i]) * A(w[i]) : A(gy[i]); };
  auto xhat = [&](int64_t i) { return (A(x[i]) - mean) * rstd; };
  const A g_mean = lane_sum<A>(n, g) / A(n);
  const A gx_mean = lane_sum<A>(n, [&](int64_t i) { return g(i) * xhat(i); }) / A(n);
  for (int64_t i = 0; i < n; ++i) {
    const T dx = T(rstd * (g(i) - g_mean - xhat(i) * gx_mean));
    gx[i] = accumulate ? T(A(gx[i]) + A(dx)) : dx;
    if (gx_lowp) gx_lowp[i] = G(gx[i]);
  }
}

}  // namespace

template <class T>
void layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* weight, const T* bias,
                       double eps, T* y, acc_t<T>* mean, acc_t<T>* rstd) {
  cpu::parallel_chunks(rows, cpu::rows_per_task(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      layernorm_row(cols, x + r * cols, weight, bias, acc_t<T>(eps), y + r * cols, mean[r], rstd[r]);
  });
}

namespace {
// layernorm_backward with gy of type G (T, or 16 bits for the _lowp_gy form).
template <class T, class G>
void layernorm_backward_impl(int64_t rows, int64_t cols, const T* x, const T* weight, const acc_t<T>* mean,
                             const acc_t<T>* rstd, const G* gy, T* gx, T* gweight, T* gbias, bool accumulate_gx,
                             G* gx_lowp) {
  using A = acc_t<T>;
  const int64_t nchunks = (rows + kRowChunk - 1) / kRowChunk;
  // Per-chunk partial sums of gy * xhat (for dweight) and gy (for dbias).
  std::vector<A> part_w(gweight ? nchunks * cols : 0), part_b(gbias ? nchunks * cols : 0);
  cpu::parallel_chunks(nchunks, 1, [&](int64_t cb, int64_t) {
    A* pw = gweight ? part_w.data() + cb * cols : nullptr;
    A* pb = gbias ? part_b.data() + cb * cols : nullptr;
    const int64_t r_end = std::min(rows, (cb + 1) * kRowChunk);
    for (int64_t r = cb * kRowChunk; r < r_end; ++r) {
      const T* xr = x + r * cols;
      const G* gr = gy + r * cols;
      if (gx)
        layernorm_dx_row(cols, xr, weight, mean[r], rstd[r], gr, gx + r * cols, accumulate_gx,
                         gx_lowp ? gx_lowp + r * cols : nullptr);
      if (pw)
        for (int64_t i = 0; i < cols; ++i) pw[i] += A(gr[i]) * ((A(xr[i]) - mean[r]) * rstd[r]);
      if (pb)
        for (int64_t i = 0; i < cols; ++i) pb[i] += A(gr[i]);
    }
  });
  // Columns are independent: each adds its chunk partials in chunk order.
  auto total = [&](const std::vector<A>& part, T* out) {
    cpu::parallel_chunks(cols, 256, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        double s = 0;
        for (int64_t c = 0; c < nchunks; ++c) s += double(part[c * cols + i]);
        out[i] = T(A(s));
      }
    });
  };
  if (gweight) total(part_w, gweight);
  if (gbias) total(part_b, gbias);
}
}  // namespace

template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* weight, const acc_t<T>* mean,
                        const acc_t<T>* rstd, const T* gy, T* gx, T* gweight, T* gbias, bool accumulate_gx) {
  layernorm_backward_impl<T, T>(rows, cols, x, weight, mean, rstd, gy, gx, gweight, gbias, accumulate_gx,
                                static_cast<T*>(nullptr));
}

template <class T, class H>
void layernorm_backward_lowp_gy(int64_t rows, int64_t cols, const T* x, const T* weight, const acc_t<T>* mean,
                                const acc_t<T>* rstd, const H* gy, T* gx, T* gweight, T* gbias, bool accumulate_gx,
                                H* gx_lowp) {
  layernorm_backward_impl<T, H>(rows, cols, x, weight, mean, rstd, gy, gx, gweight, gbias, accumulate_gx, gx_lowp);
}

#define HONE_INSTANTIATE(T)                                                                                   \
  template void layernorm_forward<T>(int64_t, int64_t, const T*, const T*, const T*, double, T*, acc_t<T>*,   \
                                     acc_t<T>*);                                                              \
  template void layernorm_backward<T>(int64_t, int64_t, const T*, const T*, const acc_t<T>*, const acc_t<T>*, \
                                      const T*, T*, T*, T*, bool);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE
template void layernorm_backward_lowp_gy<float, bf16>(int64_t, int64_t, const float*, const float*, const float*,
                                                      const float*, const bf16*, float*, float*, float*, bool, bf16*);
template void layernorm_backward_lowp_gy<float, f16>(int64_t, int64_t, const float*, const float*, const float*,
                                                     const float*, const f16*, float*, float*, float*, bool, f16*);

}  // namespace hone::kernels
