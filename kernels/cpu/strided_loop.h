// Iteration over an N-d index space with several strided operands, split into rows along the
// last dimension. Rows are distributed over OpenMP threads in fixed-size chunks, so results never
// depend on the thread count. Adjacent dims that are contiguous in every operand are merged
// first, so a contiguous tensor becomes one long row.
#pragma once
#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>
#include <cstdint>

#include "kernels/elementwise.h"

namespace hone::kernels::cpu {

template <int K>
struct StridedSpace {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[K][kMaxDims];

  StridedSpace(int nd, const int64_t* sh, const std::array<const int64_t*, K>& st) {
    // Merge dim d into d+1 when, for every operand, stride[d] == stride[d+1] * shape[d+1];
    // drop size-1 dims.
    for (int d = 0; d < nd; ++d) {
      if (sh[d] == 1) continue;
      if (ndim > 0) {
        bool mergeable = true;
        for (int k = 0; k < K; ++k)
          if (strides[k][ndim - 1] != st[k][d] * sh[d]) mergeable = false;
        if (mergeable) {
          shape[ndim - 1] *= sh[d];
          for (int k = 0; k < K; ++k) strides[k][ndim - 1] = st[k][d];
          continue;
        }
      }
      shape[ndim] = sh[d];
      for (int k = 0; k < K; ++k) strides[k][ndim] = st[k][d];
      ++ndim;
    }
    if (ndim == 0) {  // a single element
      ndim = 1;
      shape[0] = 1;
      for (int k = 0; k < K; ++k) strides[k][0] = 0;
    }
  }

  int64_t row_len() const { return shape[ndim - 1]; }
  int64_t rows() const {
    int64_t r = 1;
    for (int d = 0; d < ndim - 1; ++d) r *= shape[d];
    return r;
  }
  int64_t inner_stride(int k) const { return strides[k][ndim - 1]; }
  // Element offsets of row `row` for every operand.
  void row_offsets(int64_t row, int64_t* off) const {
    for (int k = 0; k < K; ++k) off[k] = 0;
    for (int d = ndim - 2; d >= 0; --d) {
      const int64_t i = row % shape[d];
      row /= shape[d];
      for (int k = 0; k < K; ++k) off[k] += i * strides[k][d];
    }
  }
};

// Calls body(offsets[K], len, inner_strides[K]) for every row, in parallel. Long rows are cut
// into pieces so that a contiguous tensor (one merged row) still spreads over the threads.
template <int K, class Body>
void for_each_row(const StridedSpace<K>& sp, Body&& body) {
  constexpr int64_t kPiece = 1 << 14;
  const int64_t rows = sp.rows(), len = sp.row_len();
  const int64_t pieces = (len + kPiece - 1) / kPiece;
  int64_t inner[K];
  for (int k = 0; k < K; ++k) inner[k] = sp.inner_stride(k);
  const int64_t tasks = rows * pieces;
  // Parallel only when there is enough work to pay for waking threads.
  const bool parallel = rows * len >= (1 << 15) && tasks > 1;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t r = t / pieces, p = t % pieces;
    int64_t off[K];
    sp.row_offsets(r, off);
    const int64_t begin = p * kPiece;
    for (int k = 0; k < K; ++k) off[k] += begin * inner[k];
    body(off, (begin + kPiece < len ? kPiece : len - begin), inner);
  }
}

// Parallel loop over [0, n) in fixed chunks: f(begin, end).
template <class F>
void parallel_chunks(int64_t n, int64_t chunk, F&& f) {
  const int64_t nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t b = c * chunk;
    const int64_t e = b + chunk < n ? b + chunk : n;
    f(b, e);
  }
}

// Runs f(A* plane) on a zeroed accumulation plane of n values for a gradient gx: gx itself, or for
// 16-bit T a float buffer rounded into gx once at the end (scatter-adds into bf16/f16 directly
// would round after every addition).
template <class T, class F>
void with_acc_plane(T* gx, int64_t n, F&& f) {
  using A = acc_t<T>;
  if constexpr (std::is_same_v<T, A>) {
    std::fill(gx, gx + n, T(0));
    f(gx);
  } else {
    std::vector<A> buf(n, A(0));
    f(buf.data());
    for (int64_t i = 0; i < n; ++i) gx[i] = T(buf[i]);
  }
}

}  // namespace hone::kernels::cpu
