// Indexing kernels: selecting rows by index, gather, and their deterministic scatter-add
// backwards. All arrays are contiguous and row-major; indices are int32 or int64 and must have
// been range-checked by the caller (first_out_of_range), since a kernel cannot report an error
// from inside a parallel loop.
//
// Determinism: every backward here sums colliding contributions in ascending order of the
// contributing position, and parallelises only over outputs that never collide, so results are
// bit-identical for any thread count.
#pragma once
#include <cstdint>

#include "kernels/half.h"

namespace hone::kernels {

// Flat position of the first id outside [0, limit), or -1 when all are in range.
template <class I> int64_t first_out_of_range(int64_t n, const I* ids, int64_t limit);

// x viewed as [outer, N, inner], idx [n]: out[o, j, :] = x[o, idx[j], :] (out is [outer, n, inner]).
template <class T, class I>
void index_select_forward(int64_t outer, int64_t N, int64_t inner, const T* x, int64_t n, const I* idx, T* out);

// The backward of index_select: gx[o, v, :] = sum over j with idx[j] == v of g[o, j, :], in
// ascending j; gx ([outer, N, inner]) is fully written (rows no index points at get zeros).
// Sums run in acc_t<T>, so bf16/f16 gradients are rounded once, not once per token.
// accumulate: gx already holds a gradient; each row an index points at gets its sum (rounded to
// T) added, the others are left alone (the values of writing gx fresh and adding it after).
template <class T, class I>
void index_add(int64_t outer, int64_t N, int64_t inner, int64_t n, const I* idx, const T* g, T* gx,
               bool accumulate = false);

// torch.gather along `dim`: x has shape x_shape, idx and out have shape idx_shape (same ndim,
// idx_shape[d] <= x_shape[d] for d != dim). out[p] = x[p with p[dim] replaced by idx[p]].
template <class T, class I>
void gather_forward(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim, const T* x,
                    const I* idx, T* out);

// The backward of gather: gx (shape x_shape, fully written) = scatter-add of g (shape idx_shape)
// to the positions gather read from.
template <class T, class I>
void gather_backward(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim, const T* g,
                     const I* idx, T* gx);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// Plain double versions (the yardsticks of the op harness).
void index_select(int64_t outer, int64_t N, int64_t inner, const double* x, int64_t n, const int64_t* idx,
                  double* out);
void gather(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim, const double* x,
            const int64_t* idx, double* out);
}  // namespace hone::kernels::ref
