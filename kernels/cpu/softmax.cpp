// CPU softmax / log-softmax: one row per task-step, rows spread over threads in fixed chunks.
// Every row is computed entirely by one thread, so results never depend on the thread count.
#include <cmath>
#include <vector>

#include "kernels/cpu/rowwise.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/softmax.h"

namespace hone::kernels {

namespace {

using cpu::exp_nonpositive;
using cpu::lane_sum;
using cpu::row_max;

template <class T>
void softmax_row(int64_t n, const T* x, T* y, acc_t<T>* buf) {
  using A = acc_t<T>;
  const A m = row_max<A>(x, n);
  // exp values are kept in A until normalised: rounding them to T (bf16) first would add error.
  const A s = lane_sum<A>(n, [&](int64_t i) { return buf[i] = exp_nonpositive(A(x[i]) - m); });
  const A inv = A(1) / s;
  for (int64_t i = 0; i < n; ++i) y[i] = T(buf[i] * inv);
}

template <class T>
void log_softmax_row(int64_t n, const T* x, T* y) {
  using A = acc_t<T>;
  const A m = row_max<A>(x, n);
  const A s = lane_sum<A>(n, [&](int64_t i) { return exp_nonpositive(A(x[i]) - m); });
  const A shift = m + std::log(s);
  for (int64_t i = 0; i < n; ++i) y[i] = T(A(x[i]) - shift);
}

}  // namespace

template <class T> void softmax_forward(int64_t rows, int64_t cols, const T* x, T* y, bool log) {
  cpu::parallel_chunks(rows, cpu::rows_per_task(cols), [&](int64_t b, int64_t e) {
    std::vector<acc_t<T>> buf(log ? 0 : cols);
    for (int64_t r = b; r < e; ++r) {
      if (log)
        log_softmax_row(cols, x + r * cols, y + r * cols);
      else
        softmax_row(cols, x + r * cols, y + r * cols, buf.data());
    }
  });
}

template <class T>
void softmax_backward(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx, bool log) {
  using A = acc_t<T>;
  cpu::parallel_chunks(rows, cpu::rows_per_task(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* yr = y + r * cols;
      const T* gr = gy + r * cols;
      T* out = gx + r * cols;
      if (log) {
        const A s = lane_sum<A>(cols, [&](int64_t i) { return A(gr[i]); });
        for (int64_t i = 0; i < cols; ++i) out[i] = T(A(gr[i]) - exp_nonpositive(A(yr[i])) * s);
      } else {
        const A dot = lane_sum<A>(cols, [&](int64_t i) { return A(gr[i]) * A(yr[i]); });
        for (int64_t i = 0; i < cols; ++i) out[i] = T(A(yr[i]) * (A(gr[i]) - dot));
      }
    }
  });
}

#define HONE_INSTANTIATE(T)                                                              \
  template void softmax_forward<T>(int64_t, int64_t, const T*, T*, bool);                \
  template void softmax_backward<T>(int64_t, int64_t, const T*, const T*, T*, bool);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels
