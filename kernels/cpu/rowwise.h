// Helpers for kernels that work on whole rows (softmax, layer norm, cross-entropy).
//
// Row sums use kLanes independent partial sums combined in a fixed order: gcc vectorises the
// lane loop without -ffast-math, and the result depends only on the row length, never on the
// thread count or on the row's address (as a compiler-chosen alignment peel would).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
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

// Maximum of x[0..n) widened to A (-inf for n == 0), lane-split like lane_sum so that it
// vectorises. A NaN need not survive here: it reaches the result anyway through the exp-sum
// that always follows.
template <class A, class T>
inline A row_max(const T* x, int64_t n) {
  A acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = -std::numeric_limits<A>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const A v = A(x[i + l]);
      acc[l] = v > acc[l] ? v : acc[l];
    }
  for (; i < n; ++i) {
    const A v = A(x[i]);
    acc[0] = v > acc[0] ? v : acc[0];
  }
  A m = acc[0];
  for (int l = 1; l < kLanes; ++l) m = acc[l] > m ? acc[l] : m;
  return m;
}

// exp(x) for x <= 0 (or NaN), the only arguments a stable softmax or log-sum-exp produces
// (x - max, x - lse, a log-probability). The float version is branch-free so that gcc
// vectorises loops calling it (std::exp does not vectorise without -ffast-math): x = n ln2 + r
// with |r| <= ln2/2, exp(r) by its Taylor polynomial to degree 7 (truncation < 1e-8
// relative), times 2^n built from the exponent bits. About 1 ulp; results below 2^-126 flush
// to 0. The double version is std::exp.
inline double exp_nonpositive(double x) { return std::exp(x); }
inline float exp_nonpositive(float x) {
  const float xc = x < -87.0f ? -87.0f : x;  // keeps 2^n normal; NaN passes through
  // Round to nearest by adding and removing 1.5 * 2^23 (|xc log2 e| < 2^22); std::floor or
  // std::nearbyint here would stop gcc from vectorising the loops.
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // Cody-Waite: ln2 split in a part exact in float times n, and the small remainder.
  const float r = (xc - n * 0.693145751953125f) - n * 1.428606765330187e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < -87.0f ? 0.0f : p * scale;
}

// Rows per parallel task so that each task holds about `work` elements. Only the split of
// rows over tasks depends on it, never a result: every row is computed by one task.
inline int64_t rows_per_task(int64_t cols, int64_t work = 1 << 14) {
  return cols >= work ? 1 : work / (cols > 0 ? cols : 1);
}

}  // namespace hone::kernels::cpu
