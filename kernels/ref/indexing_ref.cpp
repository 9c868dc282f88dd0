// Reference indexing, in double, written as directly as the definitions.
#include <vector>

#include "kernels/indexing.h"

namespace hone::kernels::ref {

void index_select(int64_t outer, int64_t N, int64_t inner, const double* x, int64_t n, const int64_t* idx,
                  double* out) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < inner; ++i) out[(o * n + j) * inner + i] = x[(o * N + idx[j]) * inner + i];
}

void gather(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim, const double* x,
            const int64_t* idx, double* out) {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= idx_shape[d];
  std::vector<int64_t> coord(ndim);
  for (int64_t p = 0; p < n; ++p) {
    // Coordinates of output position p, then the same coordinates in x with coord[dim] replaced.
    int64_t rem = p;
    for (int d = ndim - 1; d >= 0; --d) {
      coord[d] = rem % idx_shape[d];
      rem /= idx_shape[d];
    }
    coord[dim] = idx[p];
    int64_t xi = 0;
    for (int d = 0; d < ndim; ++d) xi = xi * x_shape[d] + coord[d];
    out[p] = x[xi];
  }
}

}  // namespace hone::kernels::ref
