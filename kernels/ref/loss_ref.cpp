// Reference cross-entropy: the textbook formulas in double, one row at a time.
#include <cmath>
#include <vector>

#include "kernels/loss.h"

namespace hone::kernels::ref {

namespace {

template <class T> double d(T v) { return double(acc_t<T>(v)); }

// log sum_c exp(x_c), stable.
template <class T> double logsumexp(const T* x, int64_t n) {
  double m = -INFINITY;
  for (int64_t c = 0; c < n; ++c) m = std::max(m, d(x[c]));
  double s = 0;
  for (int64_t c = 0; c < n; ++c) s += std::exp(d(x[c]) - m);
  return m + std::log(s);
}

}  // namespace

template <class T, class I>
CrossEntropyTotals cross_entropy_forward(const CrossEntropyArgs& a, const T* logits,
                                         const I* targets, acc_t<T>* lse) {
  const int64_t C = a.classes;
  const double eps = a.label_smoothing;
  CrossEntropyTotals tot;
  for (int64_t r = 0; r < a.rows; ++r) {
    lse[r] = acc_t<T>(0);
    const int64_t t = int64_t(targets[r]);
    if (t == a.ignore_index) continue;
    const T* x = logits + r * C;
    const double l = logsumexp(x, C);
    // The smoothed target distribution q_c = (1 - eps) [c == t] + eps / C; loss = -sum q_c log p_c.
    double loss = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double q = (c == t ? 1.0 - eps : 0.0) + eps / double(C);
      loss -= q * (d(x[c]) - l);
    }
    lse[r] = acc_t<T>(l);
    tot.loss_sum += loss;
    ++tot.count;
  }
  return tot;
}

template <class T, class I>
void cross_entropy_backward(const CrossEntropyArgs& a, const T* logits, const I* targets,
                            const acc_t<T>* /*lse: recomputed*/, double grad_scale, T* glogits) {
  const int64_t C = a.classes;
  const double eps = a.label_smoothing;
  for (int64_t r = 0; r < a.rows; ++r) {
    const int64_t t = int64_t(targets[r]);
    const T* x = logits + r * C;
    const double l = t == a.ignore_index ? 0.0 : logsumexp(x, C);
    for (int64_t c = 0; c < C; ++c) {
      double g = 0;
      if (t != a.ignore_index) {
        const double q = (c == t ? 1.0 - eps : 0.0) + eps / double(C);
        g = (std::exp(d(x[c]) - l) - q) * grad_scale;
      }
      glogits[r * C + c] = T(acc_t<T>(g));
    }
  }
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

}  // namespace hone::kernels::ref
