// Embedding lookup: weight [V, C], ids [n] -> out [n, C], and its backward, the scatter-add of
// the output gradient into a [V, C] weight gradient. An embedding is index_select along dim 0 of
// the weight, and the CPU kernels share that implementation (kernels/indexing.h), so the two
// cannot drift apart. Ids must have been range-checked (kernels::first_out_of_range).
#pragma once
#include <cstdint>

#include "kernels/half.h"

namespace hone::kernels {

template <class T, class I>
void embedding_forward(int64_t n, int64_t C, const I* ids, const T* weight, T* out);

// gweight [V, C] is fully written: gweight[v] = sum of gout[t] over the tokens t with ids[t] == v,
// in ascending t (deterministic for any thread count), rows no token uses are zero. accumulate:
// gweight already holds a gradient (a tied LM head's), and the used rows get their sums added.
template <class T, class I>
void embedding_backward(int64_t n, int64_t V, int64_t C, const I* ids, const T* gout, T* gweight,
                        bool accumulate = false);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// out[t, c] = weight[ids[t], c], in double.
void embedding(int64_t n, int64_t C, const int64_t* ids, const double* weight, double* out);
}  // namespace hone::kernels::ref
