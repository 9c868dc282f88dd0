// Reductions over the middle axis of a contiguous [outer, r, inner] array: every other layout is
// first brought to this one by the op (a permute plus copy when the reduced axes are scattered).
// Summation order is fixed (sequential in r per output element), so results do not depend on
// the thread count.
#pragma once
#include <cstdint>

#include "kernels/half.h"

namespace hone::kernels {

enum class ReduceOp : uint8_t { Sum, Max };

// out[o, i] = reduce_j x[o, j, i]; accumulation in acc_t<T> (double for float sums: a long sum
// in float loses digits that the gradient checks and the losses need).
template <class T> void reduce_middle(ReduceOp op, int64_t outer, int64_t r, int64_t inner, const T* x, T* out);
// Index of the (first) maximum along the middle axis.
template <class T> void argmax_middle(int64_t outer, int64_t r, int64_t inner, const T* x, int64_t* out);

}  // namespace hone::kernels
