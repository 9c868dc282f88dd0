// Reference embedding lookup, in double.
#include "kernels/embedding.h"

namespace hone::kernels::ref {

void embedding(int64_t n, int64_t C, const int64_t* ids, const double* weight, double* out) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < C; ++c) out[t * C + c] = weight[ids[t] * C + c];
}

}  // namespace hone::kernels::ref
