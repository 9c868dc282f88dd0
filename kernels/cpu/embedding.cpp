// CPU embedding kernels: index_select along dim 0 of the weight (kernels/cpu/indexing.cpp holds
// the loops, including the deterministic bucketed scatter-add of the backward).
#include "kernels/embedding.h"
#include "kernels/indexing.h"

namespace hone::kernels {

template <class T, class I>
void embedding_forward(int64_t n, int64_t C, const I* ids, const T* weight, T* out) {
  // With a single outer slice the table size never enters the address arithmetic (the ids were
  // range-checked by the caller), so the lookup does not need V.
  index_select_forward<T, I>(/*outer=*/1, /*N=*/0, C, weight, n, ids, out);
}

template <class T, class I>
void embedding_backward(int64_t n, int64_t V, int64_t C, const I* ids, const T* gout, T* gweight, bool accumulate) {
  index_add<T, I>(1, V, C, n, ids, gout, gweight, accumulate);
}

#define HONE_INSTANTIATE(T, I)                                                     \
  template void embedding_forward<T, I>(int64_t, int64_t, const I*, const T*, T*); \
  template void embedding_backward<T, I>(int64_t, int64_t, int64_t, const I*, const T*, T*, bool);
HONE_INSTANTIATE(float, int32_t) HONE_INSTANTIATE(float, int64_t)
HONE_INSTANTIATE(double, int32_t) HONE_INSTANTIATE(double, int64_t)
HONE_INSTANTIATE(bf16, int32_t) HONE_INSTANTIATE(bf16, int64_t)
HONE_INSTANTIATE(f16, int32_t) HONE_INSTANTIATE(f16, int64_t)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels
