// Helpers for kernels that work on whole rows (softmax, layer norm, cross-entropy).
//
// Row sums use kLanes independent partial sums combined in a fixed order: gcc vectorises the
// lane loop without -ffast-math, and the result depends only on the row length, never on the
// thread count or on the row's address (as a compiler-chosen alignment peel would).
#pragma once
#include <cstdint>
#include <limits>

namespace hone::kernels::cpu {

constexpr int kLanes = 8;

// sum over i in [0, n) of term(i), accumulated in A.
template <class A, class Term>
inline A lane_sum(int64_t n, Term&& term) {
  A acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += term(i + l);
  A tail = A(0);
  for (; i < n; ++i) tail += term(i);
  // Pairwise, in a fixed order.
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0] + tail;
}

// Maximum of x[0..n) widened to A (-inf for n == 0). A NaN need not survive here: it reaches
// the result anyway through the exp-sum that always follows.
template <class A, class T>
inline A row_max(const T* x, int64_t n) {
  A m = -std::numeric_limits<A>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    const A v = A(x[i]);
    m = v > m ? v : m;
  }
  return m;
}

// Rows per parallel task so that each task holds about `work` elements. Only the split of
// rows over tasks depends on it, never a result: every row is computed by one task.
inline int64_t rows_per_task(int64_t cols, int64_t work = 1 << 14) {
  return cols >= work ? 1 : work / (cols > 0 ? cols : 1);
}

}  // namespace hone::kernels::cpu
