// CPU cross-entropy. Rows are independent and spread over threads; the per-row losses go to a
// buffer that is summed in row order afterwards, so the total is independent of the thread count.
#include <cmath>
#include <vector>

#include "kernels/cpu/rowwise.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/loss.h"

namespace hone::kernels {

namespace {

using cpu::exp_nonpositive;
using cpu::kLanes;

// One pass over a row for both sum_c exp(x_c - m) and sum_c x_c (the latter only for label
// smoothing), with lane-split accumulators like cpu::lane_sum.
template <class A, class T>
void exp_and_plain_sums(const T* x, int64_t n, A m, bool want_plain, A& sum_exp, A& sum_plain) {
  A se[kLanes] = {}, sp[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const A v = A(x[i + l]);
      se[l] += exp_nonpositive(v - m);
      if (want_plain) sp[l] += v;
    }
  A te = A(0), tp = A(0);
  for (; i < n; ++i) {
    const A v = A(x[i]);
    te += exp_nonpositive(v - m);
    tp += v;
  }
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) se[l] += se[l + w], sp[l] += sp[l + w];
  sum_exp = se[0] + te;
  sum_plain = want_plain ? sp[0] + tp : A(0);
}

}  // namespace

template <class I> int64_t cross_entropy_first_bad_target(const CrossEntropyArgs& a, const I* t) {
  for (int64_t r = 0; r < a.rows; ++r) {
    const int64_t v = int64_t(t[r]);
    if (v != a.ignore_index && (v < 0 || v >= a.classes)) return r;
  }
  return -1;
}

template <class T, class I>
CrossEntropyTotals cross_entropy_forward(const CrossEntropyArgs& a, const T* logits,
                                         const I* targets, acc_t<T>* lse) {
  using A = acc_t<T>;
  const int64_t C = a.classes;
  const A eps = A(a.label_smoothing);
  std::vector<double> row_loss(a.rows, 0.0);
  cpu::parallel_chunks(a.rows, cpu::rows_per_task(C), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      lse[r] = A(0);
      const int64_t t = int64_t(targets[r]);
      if (t == a.ignore_index) continue;
      const T* x = logits + r * C;
      const A m = cpu::row_max<A>(x, C);
      A sum_exp, sum_x;
      exp_and_plain_sums(x, C, m, a.label_smoothing != 0.0, sum_exp, sum_x);
      const A l = m + std::log(sum_exp);
      lse[r] = l;
      A loss = (A(1) - eps) * (l - A(x[t]));
      if (a.label_smoothing != 0.0) loss += eps * (l - sum_x / A(C));
      row_loss[r] = double(loss);
    }
  });
  CrossEntropyTotals tot;
  for (int64_t r = 0; r < a.rows; ++r) {
    if (int64_t(targets[r]) == a.ignore_index) continue;
    tot.loss_sum += row_loss[r];
    ++tot.count;
  }
  return tot;
}

template <class T, class I>
void cross_entropy_backward(const CrossEntropyArgs& a, const T* logits, const I* targets,
                            const acc_t<T>* lse, double grad_scale, T* glogits) {
  using A = acc_t<T>;
  const int64_t C = a.classes;
  const A scale = A(grad_scale);
  const A off = A(a.label_smoothing / double(C));  // the smoothed target mass of every class
  const A hit = A(1.0 - a.label_smoothing);        // the extra mass of the true class
  cpu::parallel_chunks(a.rows, cpu::rows_per_task(C), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      T* g = glogits + r * C;
      const int64_t t = int64_t(targets[r]);
      if (t == a.ignore_index) {
        for (int64_t c = 0; c < C; ++c) g[c] = T(A(0));
        continue;
      }
      const T* x = logits + r * C;
      const A l = lse[r];
      for (int64_t c = 0; c < C; ++c) g[c] = T((exp_nonpositive(A(x[c]) - l) - off) * scale);
      g[t] = T((exp_nonpositive(A(x[t]) - l) - off - hit) * scale);
    }
  });
}

#define HONE_INSTANTIATE(T, I)                                                                  \
  template CrossEntropyTotals cross_entropy_forward<T, I>(const CrossEntropyArgs&, const T*,    \
                                                          const I*, acc_t<T>*);                 \
  template void cross_entropy_backward<T, I>(const CrossEntropyArgs&, const T*, const I*,       \
                                             const acc_t<T>*, double, T*);
#define HONE_INSTANTIATE_T(T) HONE_INSTANTIATE(T, int32_t) HONE_INSTANTIATE(T, int64_t)
HONE_INSTANTIATE_T(float)
HONE_INSTANTIATE_T(double)
HONE_INSTANTIATE_T(bf16)
HONE_INSTANTIATE_T(f16)
#undef HONE_INSTANTIATE_T
#undef HONE_INSTANTIATE
template int64_t cross_entropy_first_bad_target<int32_t>(const CrossEntropyArgs&, const int32_t*);
template int64_t cross_entropy_first_bad_target<int64_t>(const CrossEntropyArgs&, const int64_t*);

}  // namespace hone::kernels
