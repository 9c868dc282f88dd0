// Dropout with a counter-based mask: element i of a tensor is kept when the uniform number i of
// the Philox stream (seed, offset) is >= p. The mask is a pure function of (seed, offset, i, p),
// so a CUDA kernel reproduces it bit for bit and the backward regenerates it instead of storing
// it (kernels/philox.h explains the stream).
#pragma once
#include <cstdint>

#include "kernels/half.h"
#include "kernels/philox.h"

namespace hone::kernels {

// The keep decision of element i. The uniform number is a multiple of 2^-24, so comparing it with
// p in double is exact: a device kernel may instead compare its 24 random bits with the integer
// ceil(p * 2^24) and get the same answer.
HONE_HD bool dropout_keep(uint64_t seed, uint64_t offset, uint64_t i, double p) {
  return static_cast<double>(philox::uniform(seed, offset, i)) >= p;
}

// y[i] = keep(i) ? x[i] / (1 - p) : 0 over n contiguous elements, with 0 <= p <= 1 (p == 1 gives
// zeros). The backward is the same map applied to the output gradient.
template <class T>
void dropout_apply(int64_t n, double p, uint64_t seed, uint64_t offset, const T* x, T* y);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// The same in double, one philox::uniform call per element.
void dropout(int64_t n, double p, uint64_t seed, uint64_t offset, const double* x, double* y);
}  // namespace hone::kernels::ref
