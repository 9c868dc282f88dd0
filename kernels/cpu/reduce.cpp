#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/strided_loop.h"
#include "kernels/reduce.h"

namespace hone::kernels {

template <class T> void reduce_middle(ReduceOp op, int64_t outer, int64_t r, int64_t inner, const T* x, T* out) {
  // Sums accumulate in double: exact enough for any length we meet, and cheap next to memory.
  using A = double;
  if (inner == 1) {
    cpu::parallel_chunks(outer, 64, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* row = x + o * r;
        if (op == ReduceOp::Sum) {
          A s = 0;
          for (int64_t j = 0; j < r; ++j) s += A(acc_t<T>(row[j]));
          out[o] = T(acc_t<T>(s));
        } else {
          A m = -std::numeric_limits<A>::infinity();
          for (int64_t j = 0; j < r; ++j) {
            const A v = A(acc_t<T>(row[j]));
            if (v > m || std::isnan(v)) m = v;
          }
          out[o] = T(acc_t<T>(m));
        }
      }
    });
    return;
  }
  // inner > 1: walk rows j in order, vectorised over the contiguous inner axis.
  const int64_t tile = 256;
  const int64_t tiles_per_outer = (inner + tile - 1) / tile;
  cpu::parallel_chunks(outer * tiles_per_outer, 1, [&](int64_t b, int64_t e) {
    std::vector<A> acc(tile);
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / tiles_per_outer;
      const int64_t i0 = (t % tiles_per_outer) * tile;
      const int64_t n = std::min(tile, inner - i0);
      for (int64_t i = 0; i < n; ++i)
        acc[i] = op == ReduceOp::Sum ? 0.0 : -std::numeric_limits<A>::infinity();
      for (int64_t j = 0; j < r; ++j) {
        const T* row = x + (o * r + j) * inner + i0;
        if (op == ReduceOp::Sum) {
          for (int64_t i = 0; i < n; ++i) acc[i] += A(acc_t<T>(row[i]));
        } else {
          for (int64_t i = 0; i < n; ++i) {
            const A v = A(acc_t<T>(row[i]));
            if (v > acc[i] || std::isnan(v)) acc[i] = v;
          }
        }
      }
      for (int64_t i = 0; i < n; ++i) out[o * inner + i0 + i] = T(acc_t<T>(acc[i]));
    }
  });
}

template <class T> void argmax_middle(int64_t outer, int64_t r, int64_t inner, const T* x, int64_t* out) {
  cpu::parallel_chunks(outer * inner, 256, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t o = k / inner, i = k % inner;
      int64_t best = 0;
      acc_t<T> bv = acc_t<T>(x[(o * r) * inner + i]);
      for (int64_t j = 1; j < r; ++j) {
        const acc_t<T> v = acc_t<T>(x[(o * r + j) * inner + i]);
        if (v > bv) {
          bv = v;
          best = j;
        }
      }
      out[k] = best;
    }
  });
}

#define HONE_INSTANTIATE(T)                                                                  \
  template void reduce_middle<T>(ReduceOp, int64_t, int64_t, int64_t, const T*, T*);         \
  template void argmax_middle<T>(int64_t, int64_t, int64_t, const T*, int64_t*);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels
